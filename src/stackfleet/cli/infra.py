"""`stackfleet db ...` and `stackfleet mq ...`: infrastructure database and message
queue monitoring from the command line.

Each status command probes its targets now (from --dsn/--url, else the monitoring file),
records the readings in the store and prints them with the findings. Exit status 3 when
a target could not be probed (the others are still shown).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from stackfleet.cli.context import state
from stackfleet.cli.options import RABBITMQ_DEFAULT_URL, InfraConfigOption, SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_object, emit_rows
from stackfleet.core.errors import CloudError

if TYPE_CHECKING:
    from stackfleet.engine.infra_monitor import BrokerStatus, DatabaseStatus
    from stackfleet.sources.database import DatabaseTarget

err = Console(stderr=True)
out = Console()

RecordOption = Annotated[
    bool,
    typer.Option(
        "--record",
        help="Also record the findings and fire or resolve their alerts, routed to the "
        "settings file's receivers (what `stackfleet serve --infra-config` does).",
    ),
]

# `db rules` and `mq rules` read no settings file: there `--config` is only the old name of
# `--infra-config`, hidden, and warns.
DeprecatedInfraConfigOption = Annotated[
    Path | None,
    typer.Option("--config", hidden=True, help="Deprecated: use --infra-config."),
]
# Sections only a monitoring file has: a file with one of them given as `--config` to
# `db status` / `mq status` is the monitoring file under its old option.
MONITORING_SECTIONS = ("databases", "message_queues")


def _deprecated_config_warning(command: str) -> None:
    err.print(
        f"[yellow]warning:[/] `{command} --config` for the monitoring file is deprecated: "
        "use --infra-config (--config names the settings file, as in every other command)",
        highlight=False,
        soft_wrap=True,
    )


def _rules_file(command: str, infra_config: Path | None, old: Path | None) -> Path | None:
    """The monitoring file of `db rules` / `mq rules`: --infra-config, else the deprecated
    --config (with a warning)."""
    if old is None:
        return infra_config
    _deprecated_config_warning(command)
    return infra_config if infra_config is not None else old


def _status_files(
    ctx: typer.Context, command: str, infra_config: Path | None, settings_file: str | None
) -> tuple[Path | None, str | None]:
    """(monitoring file, settings file) of `db status` / `mq status`. These took the
    monitoring file as `--config` before `--config` meant the settings file everywhere;
    a monitoring file still given there is read as one, with a warning, rather than
    ignored (the probe would silently fall back to 127.0.0.1)."""
    # by name: Typer's click may not be the `click` package
    source = ctx.get_parameter_source("settings_file")
    given = getattr(source, "name", None) == "COMMANDLINE"
    if infra_config is not None or settings_file is None or not given:
        return infra_config, settings_file
    if not _is_monitoring_file(Path(settings_file)):
        return infra_config, settings_file
    _deprecated_config_warning(command)
    return Path(settings_file), None


def _is_monitoring_file(path: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False  # the settings loader reports it, naming the file
    return isinstance(data, dict) and any(key in data for key in MONITORING_SECTIONS)


db_app = typer.Typer(
    help="Infrastructure databases (MariaDB, MySQL, Galera).", no_args_is_help=True
)
mq_app = typer.Typer(help="The message queue (RabbitMQ management API).", no_args_is_help=True)

# (metric, column header, unit) of the one-row-per-server summary
DB_SUMMARY = (
    ("connections", "Conns", ""),
    ("max_connections", "Max", ""),
    ("threads_running", "Running", ""),
    ("queries_per_second", "Queries/s", "per_second"),
    ("slow_queries_per_second", "Slow/s", "per_second"),
    ("innodb_row_lock_waits_per_second", "Lock waits/s", "per_second"),
    ("innodb_deadlocks_per_second", "Deadlocks/s", "per_second"),
    ("buffer_pool_hit_ratio", "BP hit", "ratio"),
    ("tmp_disk_tables_ratio", "Tmp on disk", "ratio"),
)
QUEUE_COLUMNS = (
    ("vhost", "VHost"),
    ("name", "Queue"),
    ("role", "Role"),
    ("service", "Service"),
    ("messages", "Messages"),
    ("messages_unacknowledged", "Unacked"),
    ("consumers", "Consumers"),
    ("publish_per_second", "Publish/s"),
    ("deliver_per_second", "Deliver/s"),
)


def register(app: typer.Typer) -> None:
    """Add the `db` and `mq` groups to the root app."""
    app.add_typer(db_app, name="db")
    app.add_typer(mq_app, name="mq")


def format_value(value: float, unit: str) -> str:
    """A reading in the operator's units: ratios as percent, rates per second."""
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if unit == "per_second":
        return f"{value:.3g}/s"
    if unit == "seconds":
        return f"{value:.3g} s"
    if unit == "ms":
        return f"{value:.3g} ms"
    if unit == "bool":
        return "yes" if value else "no"
    if value == int(value):
        return str(int(value))
    return f"{value:.3g}"


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float):
        return format_value(float(value), unit)
    return str(value)


def _print_findings(findings: list[dict[str, Any]]) -> None:
    if not findings:
        out.print("[green]No findings.[/]")
        return
    colour = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
    for finding in findings:
        style = colour.get(finding["severity"], "")
        state_word = "" if finding["state"] == "firing" else f" ({finding['state']})"
        out.print(
            f"[{style}]{finding['severity'].upper()}{state_word}[/] {finding['message']}",
            highlight=False,
            soft_wrap=True,
        )
        out.print(f"    what helps: {finding['advice']}", highlight=False, soft_wrap=True)


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        out.print(f"[dim]note:[/] {note}", highlight=False, soft_wrap=True)


def _db_targets(dsn: list[str] | None, config: Path | None) -> tuple[list[DatabaseTarget], Any]:
    from stackfleet.sources.database import DEFAULT_PORT, DatabaseTarget
    from stackfleet.sources.infra_config import load_infra_config

    loaded = load_infra_config(config)
    if dsn:
        return [DatabaseTarget.from_dsn(d) for d in dsn], loaded
    if loaded.databases:
        return loaded.databases, loaded
    return [DatabaseTarget(host="127.0.0.1", port=DEFAULT_PORT)], loaded


@db_app.command("status")
def db_status(
    ctx: typer.Context,
    dsn: Annotated[
        list[str] | None,
        typer.Option(
            "--dsn",
            help="Server to probe, mysql://user:password@host:port (repeatable); default: "
            "the monitoring file's databases, else mysql://root@127.0.0.1:3306.",
        ),
    ] = None,
    infra_config: InfraConfigOption = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Top statements to show.")] = 10,
    schema: Annotated[
        str | None, typer.Option("--schema", help="Top statements of this schema only.")
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            min=0,
            help="Without a recent stored reading, probe twice this many seconds apart to "
            "compute rates (0: no rates on a first probe).",
        ),
    ] = 2.0,
    measure_cost: Annotated[
        bool,
        typer.Option("--measure-cost", help="Ask the server how long the probe took it."),
    ] = False,
    fmt: FormatOption = Format.table,
    record: RecordOption = False,
    settings_file: SettingsOption = None,
) -> None:
    """Probe database servers: load, locks, slow statements, Galera, findings.

    Findings and alerts are recorded only with --record."""
    from stackfleet.engine import infra_packs
    from stackfleet.engine.infra_monitor import pack_policies, sweep_databases
    from stackfleet.engine.settings import load_settings

    infra_config, settings_file = _status_files(ctx, "db status", infra_config, settings_file)
    targets, loaded = _db_targets(dsn, infra_config)
    _quiet_probe_log(ctx)
    policies = pack_policies("database", loaded.policies)
    statuses = sweep_databases(
        state(ctx).store(),
        targets,
        policies,
        rate_wait=interval,
        top=top,
        schema=schema,
        measure_server_time=measure_cost,
    )
    data = [s.as_dict() for s in statuses]
    if fmt in (Format.json, Format.yaml):
        _emit_list(data, fmt)
    elif fmt in (Format.csv, Format.value):
        emit_rows(
            _db_rows(statuses), ["server", "up", *[m for m, _, _ in DB_SUMMARY], "findings"], fmt
        )
    else:
        for status, item in zip(statuses, data, strict=True):
            _print_database(status, item)
    if record:
        hooks = infra_packs.from_settings(
            state(ctx).store(), load_settings(settings_file), {infra_packs.DATABASE: policies}
        )
        err.print(infra_packs.describe(hooks.after_infra_sweep(statuses, [])), highlight=False)
    _exit_on_errors([s.error for s in statuses])


def _quiet_probe_log(ctx: typer.Context) -> None:
    # a failed probe is printed once, as an error naming the server, at the end; the
    # monitor's own warning (for `serve`'s log) would say it a second time
    if not state(ctx).debug:
        logging.getLogger("stackfleet.engine.infra_monitor").setLevel(logging.ERROR)


def _emit_list(data: list[dict[str, Any]], fmt: Format) -> None:
    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def _exit_on_errors(errors: list[str | None]) -> None:
    failed = [e for e in errors if e]
    for message in failed:
        err.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(CloudError.exit_code)


def _db_rows(statuses: list[DatabaseStatus]) -> list[dict[str, Any]]:
    return [
        {
            "server": s.label,
            "up": s.up,
            **{metric: s.values.get(metric) for metric, _, _ in DB_SUMMARY},
            "findings": len(s.findings),
        }
        for s in statuses
    ]


def _print_database(status: DatabaseStatus, item: dict[str, Any]) -> None:
    title = f"Database server {status.label}"
    if status.error:
        out.print(f"[bold]{title}[/]: [red]not probed[/] (error below)", highlight=False)
        return
    values = status.values
    fields = {
        "version": item["version"],
        "connections": f"{_fmt(values.get('connections'))} of {_fmt(values.get('max_connections'))}"
        f" ({_fmt(values.get('connections_used_ratio'), 'ratio')})",
        "threads running": _fmt(values.get("threads_running")),
        "queries/s": _fmt(values.get("queries_per_second"), "per_second"),
        "slow queries/s": _fmt(values.get("slow_queries_per_second"), "per_second"),
        "row-lock waits/s": _fmt(values.get("innodb_row_lock_waits_per_second"), "per_second"),
        "row-lock wait avg": _fmt(values.get("innodb_row_lock_time_avg_ms"), "ms"),
        "deadlocks/s": _fmt(values.get("innodb_deadlocks_per_second"), "per_second"),
        "lock-waiting transactions": _fmt(values.get("innodb_lock_waiting_transactions")),
        "oldest transaction": _fmt(values.get("innodb_oldest_transaction_seconds"), "seconds"),
        "buffer pool hit ratio": _fmt(values.get("buffer_pool_hit_ratio"), "ratio"),
        "temporary tables on disk": _fmt(values.get("tmp_disk_tables_ratio"), "ratio"),
        "InnoDB log waits/s": _fmt(values.get("innodb_log_waits_per_second"), "per_second"),
        "performance_schema": "ON" if item["performance_schema"] else "OFF",
    }
    galera = item.get("galera")
    if galera:
        fields.update(
            {
                "Galera cluster size": _fmt(galera["cluster_size"]),
                "Galera state": f"{galera['local_state']}"
                f"{'' if galera['primary'] else ', NOT PRIMARY'}"
                f"{', ready' if galera['ready'] else ', NOT READY'}",
                "Galera flow control paused": _fmt(galera["flow_control_paused_ratio"], "ratio"),
                "Galera recv/send queue": f"{_fmt(galera['recv_queue'])} / "
                f"{_fmt(galera['send_queue'])}",
            }
        )
    probe = item.get("probe") or {}
    cost = f"{probe.get('statements')} statements, {1000 * probe.get('client_seconds', 0):.1f} ms"
    if probe.get("server_seconds") is not None:
        cost += f" ({1000 * probe['server_seconds']:.1f} ms on the server)"
    fields["probe cost"] = cost
    out.print(f"[bold]{title}[/]", highlight=False)
    emit_object(fields, Format.table)
    _print_findings(item["findings"])
    if item["schemas"]:
        emit_rows(
            [
                {
                    **row,
                    "share": _fmt(row.get("statement_latency_share"), "ratio"),
                    "latency": _fmt(row.get("statement_latency_seconds_total"), "seconds"),
                    "rate": _fmt(row.get("statement_latency_seconds_per_second")),
                    "statements": _fmt(row.get("statements_total")),
                }
                for row in item["schemas"]
            ],
            ["schema", "service", "statements", "latency", "share", "rate", "no_index_used_total"],
            Format.table,
            headers=[
                "Schema",
                "Service",
                "Statements",
                "Latency",
                "Share",
                "Latency s/s",
                "No index",
            ],
            title="Statement latency by schema (performance_schema)",
        )
    if item["top_statements"]:
        emit_rows(
            [
                {
                    **row,
                    "schema": row["schema"] or "(none)",
                    "total": _fmt(row["total_latency_seconds"], "seconds"),
                    "share": _fmt(row.get("latency_share"), "ratio"),
                }
                for row in item["top_statements"]
            ],
            [
                "schema",
                "calls",
                "total",
                "avg_latency_ms",
                "rows_examined_per_call",
                "no_index_used",
                "share",
                "text",
            ],
            Format.table,
            headers=[
                "Schema",
                "Calls",
                "Total",
                "Avg ms",
                "Rows exam./call",
                "No index",
                "Share",
                "Statement",
            ],
            title="Top statements by total latency",
        )
    if item["lock_blockers"]:
        emit_rows(
            item["lock_blockers"],
            ["thread_id", "user", "host", "schema", "seconds", "waiting", "query"],
            Format.table,
            headers=["Thread", "User", "Host", "Schema", "Open s", "Waiting", "Query"],
            title="Transactions others wait for",
        )
    _print_notes(item["notes"])


@db_app.command("rules")
def db_rules(
    infra_config: InfraConfigOption = None,
    fmt: FormatOption = Format.table,
    old_config: DeprecatedInfraConfigOption = None,
) -> None:
    """The database policies in force: the database pack, with the monitoring file's
    policy files in place of its policies of the same name."""
    infra_config = _rules_file("db rules", infra_config, old_config)
    emit_rows(_policy_rows("database", infra_config), list(POLICY_COLUMNS), fmt)


POLICY_COLUMNS = ("name", "condition", "severity", "enabled", "source")


def _policy_rows(pack: str, config: Path | None) -> list[dict[str, Any]]:
    from stackfleet.engine.infra_monitor import pack_policies
    from stackfleet.sources.infra_config import load_infra_config

    return [
        {
            "name": policy.name,
            "kind": policy.kind,
            "condition": "; ".join(
                " ".join(f"{k}={v}" for k, v in flt.model_dump(exclude_defaults=True).items())
                for flt in policy.filters
            ),
            "severity": policy.spec.severity,
            "enabled": policy.spec.enabled,
            "source": policy.source,
        }
        for policy in pack_policies(pack, load_infra_config(config).policies)
    ]


@mq_app.command("status")
def mq_status(
    ctx: typer.Context,
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            help=f"Management API, http://user:password@host:15672 (repeatable); default: "
            f"the monitoring file's message_queues, else {RABBITMQ_DEFAULT_URL}.",
        ),
    ] = None,
    infra_config: InfraConfigOption = None,
    vhost: Annotated[str | None, typer.Option("--vhost", help="Only this vhost's queues.")] = None,
    all_queues: Annotated[
        bool,
        typer.Option(
            "--all-queues", help="List every queue, not only those with findings or messages."
        ),
    ] = False,
    fmt: FormatOption = Format.table,
    record: RecordOption = False,
    settings_file: SettingsOption = None,
) -> None:
    """Probe RabbitMQ: nodes (memory, file descriptors, alarms, partitions), queues
    (depth, consumers, unacknowledged, rates) and OpenStack-aware findings.

    Findings and alerts are recorded only with --record."""
    from stackfleet.engine import infra_packs
    from stackfleet.engine.infra_monitor import pack_policies, sweep_brokers
    from stackfleet.engine.settings import load_settings
    from stackfleet.sources.infra_config import load_infra_config
    from stackfleet.sources.rabbitmq import DEFAULT_URL, BrokerTarget

    infra_config, settings_file = _status_files(ctx, "mq status", infra_config, settings_file)
    loaded = load_infra_config(infra_config)
    if url:
        targets = [BrokerTarget.from_url(u) for u in url]
    else:
        targets = loaded.brokers or [BrokerTarget.from_url(DEFAULT_URL)]
    _quiet_probe_log(ctx)
    policies = pack_policies("rabbitmq", loaded.policies)
    statuses = sweep_brokers(state(ctx).store(), targets, policies, vhost=vhost)
    data = [s.as_dict() for s in statuses]
    if fmt in (Format.json, Format.yaml):
        _emit_list(data, fmt)
    elif fmt in (Format.csv, Format.value):
        rows = [{"broker": s.label, **q} for s in statuses for q in s.queues]
        emit_rows(rows, ["broker", *[c for c, _ in QUEUE_COLUMNS]], fmt)
    else:
        for status, item in zip(statuses, data, strict=True):
            _print_broker(status, item, all_queues)
    if record:
        hooks = infra_packs.from_settings(
            state(ctx).store(), load_settings(settings_file), {infra_packs.RABBITMQ: policies}
        )
        recorded = hooks.after_infra_sweep([], statuses, vhost)
        err.print(infra_packs.describe(recorded), highlight=False)
    _exit_on_errors([s.error for s in statuses])


def _print_broker(status: BrokerStatus, item: dict[str, Any], all_queues: bool) -> None:
    title = f"RabbitMQ {status.label}"
    if status.error:
        out.print(f"[bold]{title}[/]: [red]not probed[/] (error below)", highlight=False)
        return
    values = status.values
    out.print(
        f"[bold]{title}[/] (cluster {status.cluster_name}, RabbitMQ {status.version}): "
        f"{_fmt(values.get('queues'))} queues, {_fmt(values.get('messages'))} messages "
        f"({_fmt(values.get('messages_unacknowledged'))} unacked), "
        f"{_fmt(values.get('connections'))} connections, publish "
        f"{_fmt(values.get('publish_per_second'), 'per_second')}, deliver "
        f"{_fmt(values.get('deliver_per_second'), 'per_second')}",
        highlight=False,
        soft_wrap=True,
    )
    emit_rows(
        [
            {
                "name": node["name"],
                "running": node.get("running") == 1.0,
                "memory": f"{_fmt(node.get('mem_used_ratio'), 'ratio')} of watermark",
                "fd": f"{_fmt(node.get('fd_used'))}/{_fmt(node.get('fd_total'))}",
                "sockets": f"{_fmt(node.get('sockets_used'))}/{_fmt(node.get('sockets_total'))}",
                "alarms": ", ".join(
                    a for a in ("mem_alarm", "disk_free_alarm") if node.get(a) == 1.0
                )
                or "none",
                "partitions": node.get("partitions"),
            }
            for node in item["nodes"]
        ],
        ["name", "running", "memory", "fd", "sockets", "alarms", "partitions"],
        Format.table,
        headers=["Node", "Running", "Memory", "File descr.", "Sockets", "Alarms", "Partitions"],
    )
    _print_findings(item["findings"])
    flagged = {f.resource_id for f in status.findings}
    queues = [
        q
        for q in item["queues"]
        if all_queues or q["resource_id"] in flagged or (q.get("messages") or 0) > 0
    ]
    if queues:
        emit_rows(
            queues,
            [c for c, _ in QUEUE_COLUMNS],
            Format.table,
            headers=[h for _, h in QUEUE_COLUMNS],
            title="Queues"
            + ("" if all_queues else " with findings or messages (--all-queues: all)"),
        )
    _print_notes(item["notes"])


@mq_app.command("rules")
def mq_rules(
    infra_config: InfraConfigOption = None,
    fmt: FormatOption = Format.table,
    old_config: DeprecatedInfraConfigOption = None,
) -> None:
    """The RabbitMQ policies in force: the RabbitMQ pack, with the monitoring file's
    policy files in place of its policies of the same name."""
    infra_config = _rules_file("mq rules", infra_config, old_config)
    emit_rows(
        _policy_rows("rabbitmq", infra_config),
        [*POLICY_COLUMNS[:1], "kind", *POLICY_COLUMNS[1:]],
        fmt,
    )
