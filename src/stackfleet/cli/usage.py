"""`stackfleet usage ...`: real server and hypervisor usage (CPU %, memory, disk and
network rates) from Nova server diagnostics or a Prometheus server."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from stackfleet.cli.context import state
from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_columns, emit_object, emit_rows
from stackfleet.core.errors import ConfigError

if TYPE_CHECKING:
    from stackfleet.engine.usage import UsageSettings

err = Console(stderr=True)

app = typer.Typer(
    help="Real usage of servers and hypervisors (diagnostics or Prometheus).",
    no_args_is_help=True,
)


SWEEP_COLUMNS = (
    ("kind", "Kind"),
    ("id", "ID"),
    ("name", "Name"),
    ("region", "Region"),
    ("outcome", "Outcome"),
    ("cpu_util", "CPU %"),
    ("memory_used_mb", "Mem MiB"),
    ("disk_read_bps", "Disk rd B/s"),
    ("disk_write_bps", "Disk wr B/s"),
    ("net_rx_bps", "Net rx B/s"),
    ("net_tx_bps", "Net tx B/s"),
    ("reason", "Reason"),
)


def register(root: typer.Typer) -> None:
    """Add the `usage` group to the root app."""
    root.add_typer(app, name="usage")


def _settings(
    config: str | None,
    source: str | None,
    prometheus_url: str | None,
    budget: int | None,
    concurrency: int | None,
    gap: float | None,
) -> UsageSettings:
    from stackfleet.engine.settings import load_settings
    from stackfleet.engine.usage import UsageSettings
    from stackfleet.sources.prometheus import PrometheusSettings

    usage = load_settings(config).usage
    changes: dict[str, Any] = {}
    if source:
        changes["source"] = source
    if budget is not None:
        changes["budget"] = budget
    if concurrency is not None:
        changes["concurrency"] = concurrency
    if gap is not None:
        changes["first_reading_gap"] = timedelta(seconds=gap)
    if prometheus_url:
        base = usage.prometheus.model_dump() if usage.prometheus else {}
        changes["prometheus"] = PrometheusSettings.model_validate({**base, "url": prometheus_url})
    try:
        return UsageSettings.model_validate({**usage.model_dump(), **changes})
    except ValueError as exc:
        raise ConfigError(f"usage settings: {exc}") from exc


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}


@app.command("sweep")
def sweep_command(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="diagnostics or prometheus (default: usage.source in settings)."
        ),
    ] = None,
    os_cloud: Annotated[
        str | None,
        typer.Option("--os-cloud", envvar="OS_CLOUD", help="Cloud (diagnostics source)."),
    ] = None,
    os_region_name: Annotated[
        str | None, typer.Option("--os-region-name", help="Only this region.")
    ] = None,
    prometheus_url: Annotated[
        str | None, typer.Option("--prometheus-url", help="Prometheus base URL (override).")
    ] = None,
    budget: Annotated[
        int | None, typer.Option("--budget", min=1, help="Most servers to read.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, max=64, help="Calls in flight.")
    ] = None,
    gap: Annotated[
        float | None,
        typer.Option(
            "--first-reading-gap",
            min=0,
            help="Seconds between two readings of a never-read server (0: rate next sweep).",
        ),
    ] = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Read usage once now, store it, and print each server (and hypervisor) read or
    skipped, with the reason. Diagnostics read the ACTIVE servers of the inventory
    (run `stackfleet collect` first); a rate needs a previous reading."""
    from stackfleet.engine.usage import sweep_diagnostics, sweep_prometheus
    from stackfleet.sources.openstack.connection import connected

    settings = _settings(config, source, prometheus_url, budget, concurrency, gap)
    store = state(ctx).store()
    if settings.source == "none":
        raise ConfigError(
            "no usage source: pass --source diagnostics|prometheus or set usage.source "
            "in the settings file"
        )
    if settings.source == "diagnostics":
        cloud = os_cloud or ("envvars" if os.environ.get("OS_AUTH_URL") else None)
        if not cloud:
            raise ConfigError("no cloud given: pass --os-cloud NAME or set OS_CLOUD")
        with connected(cloud, os_region_name) as targets:
            sweep = sweep_diagnostics(store, targets, settings)
        if sweep.active_servers == 0:
            err.print(
                f"no ACTIVE servers of {cloud} in the store: run `stackfleet collect` first",
                highlight=False,
            )
    else:
        assert settings.prometheus is not None
        sweep = sweep_prometheus(store, settings.prometheus)
    rows = [_rounded(r.as_dict()) for r in sweep.rows]
    emit_columns(rows, SWEEP_COLUMNS, fmt)
    summary = sweep.summary()
    err.print(
        f"usage sweep ({summary['source']}): {summary['sampled']} sampled, "
        f"{summary['first_reading']} first readings, {summary['skipped']} skipped"
        + (
            f" of {summary['active_servers']} ACTIVE servers"
            if settings.source == "diagnostics"
            else ""
        )
        + f"; {summary['samples']} samples, {summary['requests']} requests in "
        f"{summary['seconds']:.1f} s",
        highlight=False,
    )


@app.command("show")
def show_command(
    ctx: typer.Context,
    resource: Annotated[str, typer.Argument(help="Server (or hypervisor) id or name.")],
    kind: Annotated[
        str, typer.Option("--kind", help="server or hypervisor.", case_sensitive=False)
    ] = "server",
    fmt: FormatOption = Format.table,
) -> None:
    """Latest values and 1 h / 1 d / 14 d means of one server's (or hypervisor's) usage."""
    from stackfleet.engine.nodes import find_hypervisor
    from stackfleet.engine.usage import HOST_METRICS, SERVER_METRICS, usage_of

    if kind not in ("server", "hypervisor"):
        raise ConfigError(f"--kind must be server or hypervisor, not {kind!r}")
    store = state(ctx).store()
    record = (
        find_hypervisor(store, resource)
        if kind == "hypervisor"
        else store.get_resource(kind, resource)
    )
    usage = usage_of(store, kind, record["id"])
    usage["name"] = record.get("name")
    if fmt in (Format.json, Format.yaml):
        emit_object(usage, fmt)
        return
    metrics = SERVER_METRICS if kind == "server" else HOST_METRICS
    rows = [
        _rounded({"metric": m, **usage["metrics"][m]})
        for m in metrics
        if usage["metrics"][m]["latest"] is not None or usage["metrics"][m]["samples_14d"]
    ]
    emit_rows(
        rows,
        ["metric", "latest", "at", "mean_1h", "mean_1d", "mean_14d", "samples_14d"],
        fmt,
        headers=["Metric", "Latest", "At", "Mean 1h", "Mean 1d", "Mean 14d", "Samples 14d"],
        title=f"{kind} {record.get('name') or ''} ({record['id']})",
    )
    if not rows:
        err.print(f"no usage samples for {kind} {resource} yet", highlight=False)


@app.command("backfill")
def backfill_command(
    ctx: typer.Context,
    window: Annotated[str, typer.Option("--window", help="How far back, e.g. 14d.")] = "14d",
    prometheus_url: Annotated[
        str | None, typer.Option("--prometheus-url", help="Prometheus base URL (override).")
    ] = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Read hourly means of past usage from Prometheus into the store (hours before the
    store's own data; hours already held are kept)."""
    from stackfleet.core.times import parse_duration
    from stackfleet.engine.usage import backfill_prometheus

    settings = _settings(config, "prometheus", prometheus_url, None, None, None)
    assert settings.prometheus is not None
    try:
        span = parse_duration(window)
    except ValueError as exc:
        raise ConfigError(f"--window: {exc}") from exc
    result = backfill_prometheus(state(ctx).store(), settings.prometheus, span, time.time())
    emit_object(
        {
            "buckets": result.buckets,
            "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.start)),
            "until": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.end)),
        },
        fmt,
    )
