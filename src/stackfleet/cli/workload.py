"""`stackfleet workload list|show|start|stop|reboot|rebuild|resize|delete|console-url|logs`:
the common management verbs of workloads, mapped to each backend."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from stackfleet.cli.context import state
from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_rows
from stackfleet.cli.provision import CloudOption, ExecuteOption, RegionOption

if TYPE_CHECKING:
    from stackfleet.provision.apply import Provisioner, Scope
    from stackfleet.provision.manage import WorkloadManager

out = Console(highlight=False, soft_wrap=True)

NameArgument = Annotated[str, typer.Argument(help="The workload's name.")]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", help="Project name or id (default: the cloud entry's)."),
]
MemberOption = Annotated[
    str | None,
    typer.Option("--member", help="One member (name, number or server id); default: every one."),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for each member's change.")
]

OUTCOME_COLUMNS = ["workload", "action", "member", "status", "server_id", "message"]


def register(app: typer.Typer) -> None:
    """Add `workload ...` to the root app."""
    group = typer.Typer(
        help="Manage workloads (VMs, bare metal, containers) with the same verbs on every backend."
    )
    group.command("list")(list_command)
    group.command("show")(show_command)
    for verb in ("start", "stop", "delete"):
        group.command(verb, help=VERB_HELP[verb])(_simple_verb(verb))
    group.command("reboot")(reboot_command)
    group.command("rebuild")(rebuild_command)
    group.command("resize")(resize_command)
    group.command("console-url")(console_url_command)
    group.command("logs")(logs_command)
    app.add_typer(group, name="workload")


VERB_HELP = {
    "start": "Start the workload's stopped members. Dry-run unless --execute.",
    "stop": "Stop (shut off) the workload's members. Dry-run unless --execute.",
    "delete": "Delete the workload's members (only servers carrying its labels). "
    "Dry-run unless --execute.",
}


def _manager(
    ctx: typer.Context,
    cloud: str | None,
    region: str | None,
    project: str | None,
    config: str | None,
) -> tuple[Provisioner, WorkloadManager, Scope]:
    from stackfleet.engine.settings import load_settings
    from stackfleet.provision.apply import Provisioner
    from stackfleet.provision.manage import WorkloadManager

    default_cloud = cloud or ("envvars" if os.environ.get("OS_AUTH_URL") else None)
    provisioner = Provisioner(
        state(ctx).store(), load_settings(config), default_cloud=default_cloud,
        default_region=region,
    )  # fmt: skip
    try:
        scope = provisioner.scope_for(default_cloud, region, project)
    except BaseException:
        provisioner.close()
        raise
    return provisioner, WorkloadManager(provisioner), scope


def list_command(
    ctx: typer.Context,
    cloud: CloudOption = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """The project's workloads: backend, members, how many are ACTIVE or failed."""
    provisioner, manager, scope = _manager(ctx, cloud, region, project, config)
    try:
        views = manager.workloads(scope)
    finally:
        provisioner.close()
    rows = [
        {
            "workload": v.name,
            "backend": v.backend,
            "status": v.status,
            "members": len(v.members),
            "active": sum(1 for m in v.members if m.status == "ACTIVE"),
            "failed": sum(1 for m in v.members if m.failed),
            "project_id": v.project_id,
        }
        for v in views
    ]
    emit_rows(
        rows, ["workload", "backend", "status", "members", "active", "failed", "project_id"], fmt
    )


def show_command(
    ctx: typer.Context,
    name: NameArgument,
    cloud: CloudOption = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """One workload's members: status, host, flavor, image and fault."""
    provisioner, manager, scope = _manager(ctx, cloud, region, project, config)
    try:
        view = manager.find(scope, name)
    finally:
        provisioner.close()
    rows = [
        {
            "member": m.name,
            "index": m.index,
            "status": m.status,
            "host": m.host,
            "flavor": (m.raw.get("flavor") or {}).get("original_name"),
            "server_id": m.id,
            "fault": m.fault,
        }
        for m in view.members
    ]
    emit_rows(rows, ["member", "index", "status", "host", "flavor", "server_id", "fault"], fmt)
    if fmt is Format.table:
        out.print(f"workload {escape(view.name)} ({view.backend}): {view.status}")


def _run(
    ctx: typer.Context,
    verb: str,
    name: str,
    cloud: str | None,
    region: str | None,
    project: str | None,
    config: str | None,
    member: str | None,
    execute: bool,
    timeout: float,
    fmt: Format,
    **options: object,
) -> None:
    from stackfleet.provision.apply import ProvisionError

    provisioner, manager, scope = _manager(ctx, cloud, region, project, config)
    try:
        view = manager.find(scope, name)
        outcomes = manager.run_verb(
            scope, view, verb, member, dict(options), execute=execute, timeout=timeout
        )
    finally:
        provisioner.close()
    rows = [
        {
            "workload": o.workload,
            "action": o.action,
            "member": o.name,
            "status": o.status,
            "server_id": o.server_id,
            "message": o.message,
        }
        for o in outcomes
    ]
    emit_rows(rows, OUTCOME_COLUMNS, fmt)
    if fmt is Format.table and not execute:
        out.print("dry-run: nothing changed; run again with --execute")
    failed = [o for o in outcomes if o.status in ("failed", "unverified", "blocked")]
    if failed:
        raise ProvisionError(
            f"{verb} did not take on {len(failed)} member(s): "
            + ", ".join(f"{o.name} ({o.message})" for o in failed)
        )


def _simple_verb(verb: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        name: NameArgument,
        member: MemberOption = None,
        cloud: CloudOption = None,
        region: RegionOption = None,
        project: ProjectOption = None,
        config: SettingsOption = None,
        execute: ExecuteOption = False,
        timeout: TimeoutOption = 600.0,
        fmt: FormatOption = Format.table,
    ) -> None:
        _run(ctx, verb, name, cloud, region, project, config, member, execute, timeout, fmt)

    command.__doc__ = VERB_HELP[verb]
    command.__name__ = f"{verb}_command"
    return command


def reboot_command(
    ctx: typer.Context,
    name: NameArgument,
    member: MemberOption = None,
    hard: Annotated[bool, typer.Option("--hard", help="A hard reboot (power cycle).")] = False,
    cloud: CloudOption = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    config: SettingsOption = None,
    execute: ExecuteOption = False,
    timeout: TimeoutOption = 600.0,
    fmt: FormatOption = Format.table,
) -> None:
    """Reboot the workload's members (soft, or --hard). Dry-run unless --execute."""
    _run(
        ctx, "reboot", name, cloud, region, project, config, member, execute, timeout, fmt,
        hard=hard,
    )  # fmt: skip


def rebuild_command(
    ctx: typer.Context,
    name: NameArgument,
    image: Annotated[str, typer.Option("--image", help="Glance image name or id.")],
    member: MemberOption = None,
    cloud: CloudOption = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    config: SettingsOption = None,
    execute: ExecuteOption = False,
    timeout: TimeoutOption = 600.0,
    fmt: FormatOption = Format.table,
) -> None:
    """Rebuild the workload's members from an image. Dry-run unless --execute."""
    _run(
        ctx, "rebuild", name, cloud, region, project, config, member, execute, timeout, fmt,
        image=image,
    )  # fmt: skip


def resize_command(
    ctx: typer.Context,
    name: NameArgument,
    size: Annotated[str, typer.Option("--size", help="The new flavor (name or id).")],
    member: MemberOption = None,
    cloud: CloudOption = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    config: SettingsOption = None,
    execute: ExecuteOption = False,
    timeout: TimeoutOption = 600.0,
    fmt: FormatOption = Format.table,
) -> None:
    """Resize the workload's members to another flavor (and confirm the resize).
    Dry-run unless --execute."""
    _run(
        ctx, "resize", name, cloud, region, project, config, member, execute, timeout, fmt,
        size=size,
    )  # fmt: skip


def console_url_command(
    ctx: typer.Context,
    name: NameArgument,
    member: MemberOption = None,
    protocol: Annotated[str, typer.Option("--protocol", help="vnc, spice or serial.")] = "vnc",
    cloud: CloudOption = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """A remote console URL for each member (or one)."""
    from stackfleet.provision.manage import VerbOptionError

    if protocol not in ("vnc", "spice", "serial"):
        raise VerbOptionError(f"--protocol {protocol!r}: use vnc, spice or serial")
    provisioner, manager, scope = _manager(ctx, cloud, region, project, config)
    try:
        view = manager.find(scope, name)
        urls = manager.console_urls(scope, view, member, protocol)
    finally:
        provisioner.close()
    emit_rows([{"member": m.name, "url": url} for m, url in urls], ["member", "url"], fmt)


def logs_command(
    ctx: typer.Context,
    name: NameArgument,
    member: MemberOption = None,
    lines: Annotated[int | None, typer.Option("--lines", min=1, help="Only the last N.")] = None,
    cloud: CloudOption = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    config: SettingsOption = None,
) -> None:
    """Each member's console log (or one member's)."""
    provisioner, manager, scope = _manager(ctx, cloud, region, project, config)
    try:
        view = manager.find(scope, name)
        logs = manager.logs(scope, view, member, lines)
    finally:
        provisioner.close()
    for m, text in logs:
        if len(logs) > 1:
            out.print(f"[bold]==> {escape(m.name)} <==[/]")
        out.print(escape(text.rstrip("\n")))
