"""Health and recovery commands: `stackfleet health [hosts|services|instances|workloads]`
and `stackfleet recoveries list|show|run` (docs/health.md).

The listings read the verdicts the daemon's `health` job saved (`--assess` judges the
fleet once first); `recoveries run` is one assessment and one reconciler turn, planned
only unless `--execute`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from stackfleet.cli.context import state
from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Columns, Format, FormatOption, emit_columns, emit_object
from stackfleet.core.errors import InvalidQueryError

if TYPE_CHECKING:
    from stackfleet.engine.health import Assessment, HealthMonitor
    from stackfleet.store import Store

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATE_NAMES = ("healthy", "degraded", "down", "unknown")

StateOption = Annotated[
    str | None,
    typer.Option("--state", help="Only this state: healthy, degraded, down or unknown."),
]
CloudOption = Annotated[
    list[str] | None,
    typer.Option(
        "--os-cloud", help="Cloud to assess (repeatable); default: every cloud collected."
    ),
]
BmcMapOption = Annotated[
    str | None,
    typer.Option("--bmc-map", help="BMC map (default: health.bmc_map of the settings)."),
]
AssessOption = Annotated[
    bool,
    typer.Option(
        "--assess",
        help="Judge the fleet now (read Nova, probes, BMCs) and save the verdicts before "
        "listing; default: the verdicts the daemon's health job saved.",
    ),
]


def register(app: typer.Typer) -> None:
    """Add `health` and `recoveries` to the root app."""
    health = typer.Typer(
        help="Health of hosts, services, instances and workloads, with the evidence.",
        invoke_without_command=True,
    )
    health.callback()(health_default)
    health.command("hosts")(health_hosts)
    health.command("services")(health_services)
    health.command("instances")(health_instances)
    health.command("workloads")(health_workloads)
    app.add_typer(health, name="health")
    recoveries = typer.Typer(help="Automatic recoveries: list, show each step, run once.")
    recoveries.command("list")(recoveries_list)
    recoveries.command("show")(recoveries_show)
    recoveries.command("run")(recoveries_run)
    app.add_typer(recoveries, name="recoveries")


# -- assessing ----------------------------------------------------------------------------


def _monitor(
    store: Store, config: str | None, clouds: list[str] | None, bmc_map: str | None
) -> tuple[Any, HealthMonitor]:
    from stackfleet.engine.execute import Connections
    from stackfleet.engine.health import HealthMonitor
    from stackfleet.engine.settings import load_settings

    settings = load_settings(config)
    settings.apply_api_timeout()
    monitor = HealthMonitor(store, settings.health, Connections(), bmc_map=bmc_map, clouds=clouds)
    return settings, monitor


def assess_until_settled(monitor: HealthMonitor) -> Assessment:
    """Assess, and again while a host's probe has missed but not yet enough times in a
    row to call it unreachable (one run alone cannot tell a lost packet from a dead
    host); at most `probe.misses` runs, `health.interval` apart."""
    settings = monitor.settings
    assessment = monitor.run_once()
    for _ in range(settings.probe.misses - 1):
        if not any(h.failure != "none" and _probe_missing(h) for h in assessment.hosts):
            break
        time.sleep(settings.interval.total_seconds())
        assessment = monitor.run_once()
    return assessment


def _probe_missing(host: Any) -> bool:
    return any(
        e.signal == "management address" and "not yet enough" in e.value for e in host.evidence
    )


def _check_state(value: str | None) -> None:
    if value is not None and value not in STATE_NAMES:
        raise InvalidQueryError(f"--state must be one of {', '.join(STATE_NAMES)}, not {value!r}")


def _load(
    ctx: typer.Context,
    kind: str,
    wanted: str | None,
    assess: bool,
    config: str | None,
    clouds: list[str] | None,
    bmc_map: str | None,
) -> list[dict[str, Any]]:
    _check_state(wanted)
    from stackfleet.store import health_states

    store = state(ctx).store()
    if assess:
        _settings, monitor = _monitor(store, config, clouds, bmc_map)
        assess_until_settled(monitor)
    rows = health_states.load(store, kind)
    return [r for r in rows if wanted is None or r["state"] == wanted]


def _frozen_line(ctx: typer.Context, fmt: Format) -> None:
    from stackfleet.store import health_states

    if fmt is not Format.table:
        return
    for fleet in health_states.load(state(ctx).store(), "fleet"):
        if fleet["failure"] == "frozen":
            err.print(f"[bold red]automatic recovery frozen:[/] {fleet['reason']}")


# -- health -------------------------------------------------------------------------------


def health_default(ctx: typer.Context) -> None:
    """Without a subcommand: the compute hosts (`stackfleet health hosts`)."""
    if ctx.invoked_subcommand is None:
        health_hosts(ctx)


# What each listing shows: (field, header), and how a saved verdict's details fill them.
HOST_COLUMNS = (
    ("cloud", "Cloud"),
    ("region", "Region"),
    ("host", "Host"),
    ("state", "State"),
    ("failure", "Failure"),
    ("reason", "Reason"),
    ("evidence", "Evidence"),
    ("changed_at", "Since"),
)
SERVICE_COLUMNS = (
    ("cloud", "Cloud"),
    ("region", "Region"),
    ("service", "Service"),
    ("state", "State"),
    ("up", "Up"),
    ("disabled", "Disabled"),
    ("forced_down", "Forced down"),
    ("heartbeat_age", "Heartbeat age (s)"),
    ("disabled_reason", "Disabled reason"),
)
INSTANCE_COLUMNS = (
    ("cloud", "Cloud"),
    ("region", "Region"),
    ("name", "Name"),
    ("id", "ID"),
    ("host", "Host"),
    ("project_id", "Project"),
    ("state", "State"),
    ("problem", "Problem"),
    ("evidence", "Evidence"),
)
WORKLOAD_COLUMNS = (
    ("workload", "Workload"),
    ("selector", "Selector"),
    ("state", "State"),
    ("healthy", "Healthy"),
    ("members", "Members"),
    ("min_healthy", "Min healthy"),
    ("target", "Target %"),
    ("reason", "Why"),
)


def _details(row: dict[str, Any], *names: str) -> None:
    """Copy these fields of the verdict's details onto the row (None when absent)."""
    row.update({name: row["details"].get(name) for name in names})


def _host_row(row: dict[str, Any], fmt: Format) -> None:
    row["host"] = row["name"] or row["subject"]
    row["evidence"] = row["details"].get("evidence") or []
    if fmt is Format.table:
        row["evidence"] = "\n".join(row["evidence"])


def _service_row(row: dict[str, Any], _fmt: Format) -> None:
    row["service"] = row["name"]
    _details(row, "up", "disabled", "disabled_reason", "forced_down", "heartbeat_age")


def _workload_row(row: dict[str, Any], _fmt: Format) -> None:
    row["workload"] = row["subject"]
    _details(row, "selector", "healthy", "members", "min_healthy", "target")
    row["unhealthy"] = row["details"].get("unhealthy") or []


def _listing(
    kind: str,
    columns: Columns,
    noun: str,
    shape: Callable[[dict[str, Any], Format], None],
    doc: str,
) -> Callable[..., None]:
    """The `health <kind>` command: the saved verdicts of one kind (judged first with
    --assess), each row shaped from its details into `columns`."""

    def command(
        ctx: typer.Context,
        wanted: StateOption = None,
        assess: AssessOption = False,
        config: SettingsOption = None,
        os_cloud: CloudOption = None,
        bmc_map: BmcMapOption = None,
        fmt: FormatOption = Format.table,
    ) -> None:
        rows = _load(ctx, kind, wanted, assess, config, os_cloud, bmc_map)
        for row in rows:
            shape(row, fmt)
        emit_columns(rows, columns, fmt, title=f"{len(rows)} {noun}")
        if kind == "host":
            _frozen_line(ctx, fmt)

    command.__doc__ = doc
    command.__name__ = f"health_{kind}s"
    return command


health_hosts = _listing(
    "host",
    HOST_COLUMNS,
    "compute hosts",
    _host_row,
    """Compute hosts: healthy / degraded / down / unknown, the kind of failure (host,
    process, undetermined), why, and the evidence signal by signal.""",
)
health_services = _listing(
    "service",
    SERVICE_COLUMNS,
    "services",
    _service_row,
    "Compute services: up or down, disabled and why, forced down, heartbeat age.",
)
health_workloads = _listing(
    "workload",
    WORKLOAD_COLUMNS,
    "workloads",
    _workload_row,
    "Workloads (health.workloads): healthy while at least k of their n members are.",
)


def health_instances(
    ctx: typer.Context,
    wanted: StateOption = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Healthy instances too (default: the others).")
    ] = False,
    assess: AssessOption = False,
    config: SettingsOption = None,
    os_cloud: CloudOption = None,
    bmc_map: BmcMapOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Instances that are not healthy (with --all, every one): ERROR, a task state stuck
    past health.instances.stuck_after, power state not matching status, on a down host."""
    rows = _load(ctx, "instance", wanted, assess, config, os_cloud, bmc_map)
    if not all_ and wanted is None:
        rows = [r for r in rows if r["state"] != "healthy"]
    for row in rows:
        row.update(id=row["subject"], problem=row["failure"], evidence=row["reason"])
        _details(row, "host", "project_id")
    emit_columns(rows, INSTANCE_COLUMNS, fmt, title=f"{len(rows)} instances")


# -- recoveries ---------------------------------------------------------------------------

RECOVERY_COLUMNS = (
    ("id", "ID"),
    ("kind", "Kind"),
    ("subject", "Subject"),
    ("trigger", "Trigger"),
    ("status", "Status"),
    ("execute", "Execute"),
    ("created_at", "Started"),
    ("finished_at", "Finished"),
    ("error", "Error"),
)
STEP_COLUMNS = (
    ("seq", "#"),
    ("name", "Step"),
    ("target", "Target"),
    ("status", "Status"),
    ("started_at", "Started"),
    ("finished_at", "Finished"),
    ("detail", "Evidence"),
    ("error", "Error"),
)


def recoveries_list(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only this status: planned, running, succeeded, failed, ..."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    fmt: FormatOption = Format.table,
) -> None:
    """Recoveries, newest first."""
    from stackfleet.store import recoveries

    rows = recoveries.list_recoveries(state(ctx).store(), status, limit)
    emit_columns(rows, RECOVERY_COLUMNS, fmt, title=f"{len(rows)} recoveries")


def _step_detail(step: dict[str, Any]) -> str:
    details = dict(step["details"])
    parts = [f"{k}={v}" for k, v in details.items() if k not in ("diff",)]
    if step.get("action_id"):
        parts.append(f"action {step['action_id']}")
    return "; ".join(str(p) for p in parts)


def recoveries_show(
    ctx: typer.Context,
    recovery_id: Annotated[int, typer.Argument(help="Recovery id.")],
    fmt: FormatOption = Format.table,
) -> None:
    """One recovery: its trigger and evidence, then each step with its timestamps,
    what it found or did (the evidence), and any error."""
    from stackfleet.store import recoveries

    recovery = recoveries.get(state(ctx).store(), recovery_id)
    if fmt is not Format.table:
        emit_object(recovery, fmt)
        return
    head = {k: v for k, v in recovery.items() if k not in ("steps", "details", "evidence")}
    head["evidence"] = "\n".join(recovery["evidence"])
    head["reason"] = recovery["details"].get("reason")
    servers = recovery["details"].get("servers") or []
    if servers:
        head["instances"] = "\n".join(
            f"{s.get('name')} ({s.get('id')}): {s.get('status')}, "
            f"{'evacuate' if s.get('eligible') else 'left'}: {s.get('why')}"
            for s in servers
        )
    emit_object(head, fmt)
    rows = [{**s, "detail": _step_detail(s)} for s in recovery["steps"]]
    emit_columns(rows, STEP_COLUMNS, fmt, title=f"recovery {recovery_id}: {len(rows)} steps")


def recoveries_run(
    ctx: typer.Context,
    execute: Annotated[
        bool,
        typer.Option(
            "--execute",
            help="Carry the recovery steps out (default: plan them only, a dry-run).",
        ),
    ] = False,
    config: SettingsOption = None,
    os_cloud: CloudOption = None,
    bmc_map: BmcMapOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """One assessment and one recovery turn: start recoveries for failed hosts, and
    advance (or take over, after its driver died) every open one. Dry-run unless
    --execute; the opt-in, limits and approvals of the `health:` settings apply."""
    from stackfleet.engine.recovery import RecoveryReconciler

    store = state(ctx).store()
    settings, monitor = _monitor(store, config, os_cloud, bmc_map)
    assessment = assess_until_settled(monitor)
    reconciler = RecoveryReconciler(store, settings, monitor.connections, monitor, execute=execute)
    touched = reconciler.run_once(assessment)
    if fmt is Format.table:
        failed = [h for h in assessment.hosts if h.failure != "none"]
        out.print(
            f"{len(assessment.hosts)} compute hosts assessed, "
            f"{len(failed)} with a failure"
            + "".join(f"\n  {h.host}: {h.state} ({h.failure}): {h.reason}" for h in failed)
        )
        if assessment.fleet.frozen:
            err.print(f"[bold red]automatic recovery frozen:[/] {assessment.fleet.frozen}")
    emit_columns(touched, RECOVERY_COLUMNS, fmt, title=f"{len(touched)} recoveries")
