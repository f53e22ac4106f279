"""Alert commands: list, acknowledge, resolve, silence."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from stackfleet.cli.context import state
from stackfleet.cli.output import Format, FormatOption, emit_rows
from stackfleet.core.errors import InvalidQueryError

out = Console(highlight=False, soft_wrap=True)

ActorOption = Annotated[str | None, typer.Option("--as", help="Who does it (default: you).")]


def register(app: typer.Typer) -> None:
    """Add `alerts` to the root app."""
    alerts = typer.Typer(help="Alerts: list, acknowledge, silence, resolve.")
    alerts.command("list")(alerts_list)
    alerts.command("incidents")(alerts_incidents)
    alerts.command("ack")(alerts_ack)
    alerts.command("resolve")(alerts_resolve)
    alerts.command("silence")(alerts_silence)
    alerts.command("silences")(alerts_silences)
    alerts.command("expire")(alerts_expire)
    app.add_typer(alerts, name="alerts")


def alerts_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Resolved alerts too.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    fmt: FormatOption = Format.table,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            envvar="STACKFLEET_CONFIG",
            help="Settings file: its inhibition rules mark alerts inhibited.",
        ),
    ] = None,
) -> None:
    """Firing alerts (with --all, resolved ones too), newest first."""
    from stackfleet.alerts import operations
    from stackfleet.engine.settings import load_settings
    from stackfleet.store import alerts as alert_store

    store = state(ctx).store()
    rows = operations.with_state(
        store,
        alert_store.list_alerts(store, None if all_ else "firing", limit),
        datetime.now(UTC),
        load_settings(config).alerts.inhibit_rules,
    )
    for row in rows:
        row["target"] = "/".join(
            row["labels"].get(k, "")
            for k in ("cloud", "region", "kind", "resource_id")
            if row["labels"].get(k)
        )
    emit_rows(
        rows,
        ["id", "state", "severity", "alertname", "target", "source", "starts_at", "fingerprint"],
        fmt,
        headers=["ID", "State", "Severity", "Alert", "Target", "Source", "Since", "Fingerprint"],
        title=f"{len(rows)} alerts",
    )


def alerts_incidents(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """Firing alerts grouped by cause (a dead host, L3/DHCP agent or Cinder back end):
    one row per incident with the alerts it explains, which are not notified on their
    own."""
    from stackfleet.alerts import operations

    rows = operations.incidents(state(ctx).store())
    for row in rows:
        cause = row["cause"]
        row["cause_id"] = cause["id"]
        row["alert"] = cause["alertname"]
        row["count"] = len(row["consequences"])
        row["explains"] = ", ".join(
            f"#{c['id']} {c['alertname']}" for c in row["consequences"][:10]
        ) + (" …" if len(row["consequences"]) > 10 else "")
    emit_rows(
        rows,
        ["cause_id", "alert", "reason", "count", "explains"],
        fmt,
        headers=["Cause", "Alert", "Reason", "Explains", "Alerts"],
        title=f"{len(rows)} incidents",
    )


def alerts_ack(
    ctx: typer.Context,
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    actor: ActorOption = None,
) -> None:
    """Acknowledge a firing alert: people know; receivers are not told again."""
    from stackfleet.alerts import operations

    row = operations.acknowledge(
        state(ctx).store(), alert_id, actor or getpass.getuser(), datetime.now(UTC)
    )
    out.print(f"alert {alert_id} ({row['alertname']}) acknowledged by {row['acked_by']}")


def alerts_resolve(
    ctx: typer.Context,
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    actor: ActorOption = None,
) -> None:
    """Resolve a firing alert by hand.

    A policy's alert fires again if its finding is still open at the next run."""
    from stackfleet.alerts import operations

    row = operations.resolve(
        state(ctx).store(), alert_id, actor or getpass.getuser(), datetime.now(UTC)
    )
    out.print(f"alert {alert_id} ({row['alertname']}) resolved")


def alerts_silence(
    ctx: typer.Context,
    matcher: Annotated[
        list[str],
        typer.Option(
            "--matcher",
            "-m",
            help="Label matcher: name=value, name!=value, name=~regex, name!~regex (repeatable).",
        ),
    ],
    duration: Annotated[
        str, typer.Option("--duration", "-d", help="How long, e.g. 2h, 7d.")
    ] = "2h",
    comment: Annotated[str, typer.Option("--comment", "-c", help="Why.")] = "",
    actor: ActorOption = None,
) -> None:
    """Silence alerts matching every matcher until the silence expires."""
    from stackfleet.alerts import operations
    from stackfleet.core.times import parse_duration

    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise InvalidQueryError(f"--duration: {exc}") from None
    row = operations.silence(
        state(ctx).store(), matcher, length, actor or getpass.getuser(), comment, datetime.now(UTC)
    )
    out.print(f"silence {row['id']} until {row['ends_at']}: {', '.join(matcher)}")


def alerts_silences(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Expired silences too.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Active silences (with --all, expired ones too)."""
    from stackfleet.store import alerts as alert_store

    rows = alert_store.list_silences(state(ctx).store(), datetime.now(UTC), active_only=not all_)
    for row in rows:
        row["matchers"] = ", ".join(f"{m['name']}{m['op']}{m['value']}" for m in row["matchers"])
    emit_rows(
        rows,
        ["id", "state", "matchers", "ends_at", "created_by", "comment"],
        fmt,
        headers=["ID", "State", "Matchers", "Until", "By", "Comment"],
    )


def alerts_expire(
    ctx: typer.Context,
    silence_id: Annotated[int, typer.Argument(help="Silence id.")],
    actor: ActorOption = None,
) -> None:
    """End a silence now."""
    from stackfleet.alerts import operations

    operations.expire(state(ctx).store(), silence_id, actor or getpass.getuser(), datetime.now(UTC))
    out.print(f"silence {silence_id} expired")
