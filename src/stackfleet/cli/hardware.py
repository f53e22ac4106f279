"""`stackfleet hardware ...`: BMC readings over Redfish, their status and findings."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from stackfleet.cli.context import state
from stackfleet.cli.options import (
    REDFISH_DEFAULT_CONCURRENCY,
    InfraConfigOption,
    SettingsOption,
)
from stackfleet.cli.output import Format, FormatOption, emit_columns, emit_object, emit_rows
from stackfleet.core.errors import ConfigError

if TYPE_CHECKING:
    from stackfleet.engine.hardware import SweepReport
    from stackfleet.policy.schema import Policy
    from stackfleet.store import Store

err = Console(stderr=True)

app = typer.Typer(help="Hardware health over Redfish: power, temperatures, fans, power supplies.")


def _policies(infra_config: Path | None) -> list[Policy]:
    """The hardware pack, tuned by the monitoring file's `policies:` (copies of the pack
    with changed thresholds), as `serve` runs it."""
    from stackfleet.engine.hardware import hardware_policies
    from stackfleet.sources.infra_config import load_infra_config

    return hardware_policies(load_infra_config(infra_config).policies)


# (key in the flattened row, table header)
COLUMNS = (
    ("name", "Host"),
    ("kind", "Kind"),
    ("status", "BMC"),
    ("power_state", "Power"),
    ("power_watts", "Watts"),
    ("inlet_celsius", "Inlet °C"),
    ("cpu_celsius", "CPU °C"),
    ("fan_rpm_min", "Fan min RPM"),
    ("psus", "PSUs ok"),
    ("psu_redundancy", "Redundancy"),
    ("health", "Health"),
    ("age", "Checked"),
    ("findings", "Findings"),
)


def register(root: typer.Typer) -> None:
    """Add `stackfleet hardware` to the root app."""
    app.command("list")(list_command)
    app.command("sweep")(sweep_command)
    app.command("show")(show_command)
    root.add_typer(app, name="hardware")


def flat_row(
    item: dict[str, Any], now: float, checked_at: float | None, ok_at: float | None = None
) -> dict[str, Any]:
    """A status dict as one table row: counts instead of lists, findings by rule name.

    When the newest read failed the readings are the last good ones: the age column
    then says how old they are too, so they are not taken for current values."""
    from stackfleet.model.hardware import OK

    fans = [f["rpm"] for f in item["fans"] if f.get("rpm") is not None]
    psus = item["psus"]
    age = _age(now - checked_at) if checked_at is not None else None
    if item.get("status") != OK and age is not None:
        age += f"; readings {_age(now - ok_at)}" if ok_at is not None else "; no readings"
    return {
        **item,
        "fan_rpm_min": min(fans) if fans else None,
        "psus": f"{sum(p['healthy'] for p in psus)}/{len(psus)}" if psus else None,
        "age": age,
        "findings": sorted({f["rule"] for f in item["findings"]}),
    }


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def list_command(
    ctx: typer.Context,
    fmt: FormatOption = Format.table,
    infra_config: InfraConfigOption = None,
    cloud: Annotated[str | None, typer.Option("--cloud", help="Only this cloud.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only this region.")] = None,
    findings_only: Annotated[
        bool, typer.Option("--findings", help="Only hosts with a finding.")
    ] = False,
) -> None:
    """The newest hardware status of every host with a BMC, and what the hardware
    policies find on it (the hardware pack, tuned by the monitoring file's `policies:`).

    Readings are the last good ones: the BMC column says whether they are current."""
    from stackfleet.engine.hardware import hardware_report, status_dict

    store = state(ctx).store()
    now = time.time()
    report = hardware_report(store, _policies(infra_config), cloud, region)
    rows = []
    for status, findings in report:
        if findings_only and not findings:
            continue
        item = status_dict(status, findings)
        rows.append(
            item
            if fmt in (Format.json, Format.yaml)
            else flat_row(item, now, status.checked_at, status.ok_at)
        )
    if fmt in (Format.json, Format.yaml):
        _emit_list(rows, fmt)
        return
    emit_columns(rows, COLUMNS, fmt)
    if fmt is Format.table and not rows:
        err.print("no hardware status yet: run `stackfleet hardware sweep --bmc-map FILE`")


def _emit_list(rows: list[dict[str, Any]], fmt: Format) -> None:
    columns = list(rows[0]) if rows else []
    emit_rows(rows, columns, fmt)


def sweep_command(
    ctx: typer.Context,
    bmc_map: Annotated[
        Path | None,
        typer.Option("--bmc-map", help="YAML map of host -> BMC (see docs/hardware.md)."),
    ] = None,
    ironic: Annotated[
        bool,
        typer.Option(
            "--ironic/--no-ironic",
            help="Also read Ironic nodes with a Redfish address (from the last pass).",
        ),
    ] = True,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=512, help="BMCs read at once.")
    ] = REDFISH_DEFAULT_CONCURRENCY,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds each BMC gets.")
    ] = 10.0,
    infra_config: InfraConfigOption = None,
    fmt: FormatOption = Format.table,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Also record the findings and fire or resolve their alerts, routed to the "
            "settings file's receivers (what `stackfleet serve --bmc-map` does).",
        ),
    ] = False,
    settings_file: SettingsOption = None,
) -> None:
    """Read every BMC once, record the readings, and print what each one said.

    Findings and alerts are recorded only with --record."""
    from stackfleet.engine import infra_packs
    from stackfleet.engine.hardware import targets_for
    from stackfleet.engine.settings import load_settings

    root = state(ctx)
    quiet_sushy(root.debug)
    store = root.store()
    policies = _policies(infra_config)
    targets = targets_for(store, bmc_map, include_ironic=ironic)
    if not targets:
        raise ConfigError(
            "no BMCs to read: give --bmc-map FILE, or collect a cloud whose Ironic nodes "
            "have a Redfish address (and set their credentials in the map's `ironic:`)"
        )
    report = sweep_and_print(store, targets, concurrency, timeout, fmt, policies)
    if record:
        hooks = infra_packs.from_settings(
            store, load_settings(settings_file), {infra_packs.HARDWARE: policies}
        )
        err.print(infra_packs.describe(hooks.after_hardware_sweep(report)), highlight=False)
    failed = len(report.statuses) - report.counts.get("ok", 0)
    if failed == len(report.statuses):
        raise typer.Exit(1)


def sweep_and_print(
    store: Store,
    targets: list[Any],
    concurrency: int,
    timeout: float,
    fmt: Format,
    policies: list[Policy] | None = None,
) -> SweepReport:
    """Run one sweep and print its rows (with what the hardware policies find now,
    nothing recorded) and a one-line summary (on stderr)."""
    from stackfleet.engine.hardware import hardware_report, run_sweep, status_dict

    report = run_sweep(store, targets, concurrency=concurrency, timeout=timeout)
    now = time.time()
    swept = {(s.cloud, s.region, s.name) for s in report.statuses}
    rows = []
    for status, findings in hardware_report(store, policies):
        if (status.cloud, status.region, status.name) not in swept:
            continue
        item = status_dict(status, findings)
        rows.append(
            item
            if fmt in (Format.json, Format.yaml)
            else flat_row(item, now, status.checked_at, status.ok_at)
        )
    if fmt in (Format.json, Format.yaml):
        _emit_list(rows, fmt)
    else:
        emit_columns(rows, COLUMNS, fmt)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(report.counts.items()))
    err.print(
        f"swept {len(report.statuses)} BMCs in {report.seconds:.1f} s ({summary}); "
        f"{report.samples} samples recorded",
        highlight=False,
    )
    return report


def show_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Host name, node name or resource id.")],
    fmt: FormatOption = Format.table,
    infra_config: InfraConfigOption = None,
) -> None:
    """Everything the newest sweep knows about one host's hardware, and what the
    hardware policies find on it."""
    from stackfleet.engine.hardware import host_findings, status_dict
    from stackfleet.store.hardware import get_status

    store = state(ctx).store()
    status = get_status(store, host)
    item = status_dict(status, host_findings(store, status, _policies(infra_config)))
    if fmt in (Format.json, Format.yaml):
        emit_object(item, fmt)
        return
    flat = dict(item)
    flat["temperatures"] = [f"{t['name']}={t['celsius']:g}" for t in item["temperatures"]]
    flat["fans"] = [
        f"{f['name']}={f['rpm']:g} RPM"
        if f.get("rpm") is not None
        else f"{f['name']}={f['percent']:g}%"
        for f in item["fans"]
    ]
    flat["psus"] = [f"{p['name']}={p['health'] or p['state']}" for p in item["psus"]]
    flat["findings"] = [f"{f['severity']}: {f['rule']}: {f['message']}" for f in item["findings"]]
    emit_object(flat, fmt)


def quiet_sushy(debug: bool) -> None:
    """sushy logs every failed request itself; StackFleet reports each BMC's failure as
    one status line, so its logs only show with --debug."""
    if not debug:
        logging.getLogger("sushy").setLevel(logging.CRITICAL)
