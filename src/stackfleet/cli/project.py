"""`stackfleet project purge PROJECT`: delete what a project (or a deleted one) owns, as
a plan first, in dependency order, through the safety gate and the audit log."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from stackfleet.cli.context import state
from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_rows
from stackfleet.cli.provision import CloudOption, ExecuteOption, RegionOption

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

COLUMNS = ["phase", "kind", "name", "id", "status", "message"]


def register(app: typer.Typer) -> None:
    """Add `project purge` to the root app."""
    group = typer.Typer(help="Projects: purge what a project (or a deleted one) left behind.")
    group.command("purge")(purge_command)
    app.add_typer(group, name="project")


def purge_command(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="Project id or name (a deleted one: its id).")],
    cloud: CloudOption = None,
    region: RegionOption = None,
    config: SettingsOption = None,
    backup: Annotated[
        bool,
        typer.Option("--backup", help="Back each volume up (Cinder backup) before deleting it."),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each deletion.")
    ] = 300.0,
    delete_project: Annotated[
        bool,
        typer.Option(
            "--delete-project",
            help="Last, delete the project itself from Keystone (once all it owned is gone).",
        ),
    ] = False,
    execute: ExecuteOption = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Delete everything the project owns: containers, servers, server groups, floating
    IPs, router interfaces, routers, ports, networks, security groups, volume snapshots,
    volumes, images, the key pairs of users who belong to it alone — in that order (the
    order `provision destroy` follows) — and, with --delete-project, the project itself.
    Without --execute: the plan. Run again to resume after a failure."""
    from stackfleet.core.errors import StackFleetError
    from stackfleet.engine.settings import load_settings
    from stackfleet.provision.purge import PurgeError, Purger

    name = cloud or ("envvars" if os.environ.get("OS_AUTH_URL") else None)
    if not name:
        raise StackFleetError("no cloud: pass --os-cloud or set OS_CLOUD")
    purger = Purger(state(ctx).store(), name, region, load_settings(config))
    try:
        project_id, exists = purger.project(project)
        if not exists and fmt is Format.table:
            err.print(
                f"[yellow]note:[/] Keystone has no project {escape(project)}: purging what "
                "resources still name it as their project (orphans)"
            )
        if execute and fmt is Format.table:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
            ) as bar:
                tasks: dict[str, Any] = {}

                def advance(phase: str, done: int, total: int) -> None:
                    if phase not in tasks:
                        tasks[phase] = bar.add_task(phase, total=total)
                    bar.update(tasks[phase], completed=done, total=total)

                report = purger.run(
                    project_id, exists, True, backup, timeout, advance, delete_project
                )
        else:
            report = purger.run(
                project_id, exists, execute, backup, timeout, delete_project=delete_project
            )
    finally:
        purger.close()
    rows = [
        {"phase": i.phase, "kind": i.kind, "name": i.name, "id": i.id, "status": i.status,
         "message": i.message}
        for i in report.items
    ]  # fmt: skip
    emit_rows(rows, COLUMNS, fmt)
    if fmt is Format.table:
        if not execute:
            out.print(
                f"{len(rows)} to delete from project {escape(project_id)}; "
                "dry-run: nothing changed; run again with --execute"
            )
        elif not rows:
            out.print(f"project {escape(project_id)} owns nothing: nothing to do")
    if report.failed:
        raise PurgeError(
            f"the purge stopped after {report.stopped_at}: {len(report.failed)} deletion(s) "
            "failed or were deferred; fix what they say and run it again to resume"
        )
