"""`stackfleet sla report`: each workload's availability against its target, its
incidents and the error budget left (docs/health.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console

from stackfleet.cli.context import state
from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_rows

out = Console(highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `sla` to the root app."""
    sla = typer.Typer(help="Workload SLAs: availability from recorded health changes.")
    sla.command("report")(sla_report_command)
    app.add_typer(sla, name="sla")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    sign = "-" if seconds < 0 else ""
    return sign + str(timedelta(seconds=round(abs(seconds))))


def sla_report_command(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", help="Window start: a duration back (30d) or a time.")
    ] = "30d",
    workload: Annotated[
        str | None, typer.Option("--workload", help="Only this workload (health.workloads).")
    ] = None,
    target: Annotated[
        float | None,
        typer.Option("--target", help="Availability target in % (default: each workload's)."),
    ] = None,
    services: Annotated[
        bool,
        typer.Option(
            "--services",
            help="Per OpenStack service (nova-compute, cinder-volume...) instead of workloads.",
        ),
    ] = False,
    service: Annotated[
        str | None,
        typer.Option("--service", help="With --services: only this service (its binary)."),
    ] = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Each workload: its target, the availability achieved over the window (from the
    state changes the health job recorded: down while fewer than k of n members are
    healthy), its incidents with start, end and cause, and the error budget left. With
    --services, the same per OpenStack service (its hosts' time summed; target
    health.service_target)."""
    from stackfleet.engine.settings import load_settings
    from stackfleet.engine.sla import (
        check_target,
        service_sla_report,
        sla_report,
        window_start,
    )

    check_target(target)
    now = datetime.now(UTC)
    settings = load_settings(config)
    if services:
        reports = service_sla_report(
            state(ctx).store(),
            window_start(since, now),
            now,
            settings.health.service_target if target is None else target,
            service,
        )
    else:
        reports = sla_report(
            state(ctx).store(),
            settings.health.workloads,
            window_start(since, now),
            now,
            workload,
            target,
        )
    subject = "Service" if services else "Workload"
    rows = [r.to_dict() for r in reports]
    if fmt is not Format.table:
        emit_rows(
            rows,
            [
                "name",
                "target",
                "achieved",
                "met",
                "measured_seconds",
                "down_seconds",
                "error_budget_left_seconds",
                "error_budget_left_percent",
                "incidents",
                "since",
                "until",
            ],
            fmt,
        )
        return
    for row, report in zip(rows, reports, strict=True):
        achieved = report.achieved
        row["achieved"] = "no data" if achieved is None else f"{achieved:.3f} %"
        row["target"] = "" if report.target is None else f"{report.target:g} %"
        row["met"] = {True: "yes", False: "NO", None: ""}[report.met]
        row["measured"] = _duration(report.measured_seconds)
        row["down"] = _duration(report.down_seconds)
        left = report.budget_left_percent
        row["budget_left"] = (
            ""
            if left is None
            else f"{_duration(report.budget_left_seconds)} ({left:.0f} % of the budget)"
        )
        row["incident_count"] = len(report.incidents)
    emit_rows(
        rows,
        ["name", "target", "achieved", "met", "measured", "down", "budget_left", "incident_count"],
        fmt,
        headers=[
            subject,
            "Target",
            "Achieved",
            "Met",
            "Measured",
            "Down",
            "Error budget left",
            "Incidents",
        ],
        title=f"availability since {window_start(since, now):%Y-%m-%d %H:%M} UTC",
    )
    incidents = [
        {
            "subject": r.name,
            "start": i.start.isoformat(timespec="seconds"),
            "end": i.end.isoformat(timespec="seconds") if i.end else "ongoing",
            "duration": _duration(i.seconds),
            "cause": i.cause,
        }
        for r in reports
        for i in r.incidents
    ]
    if incidents:
        emit_rows(
            incidents,
            ["subject", "start", "end", "duration", "cause"],
            fmt,
            headers=[subject, "Start", "End", "Duration", "Cause"],
            title="incidents",
        )
