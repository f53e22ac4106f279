"""`stackfleet workload list|show|start|stop|reboot|rebuild|resize|delete|console-url|logs`:
the common management verbs of workloads, mapped to each backend."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_rows
from stackfleet.cli.provision import (
    OUTCOME_COLUMNS,
    CloudOption,
    ExecuteOption,
    RegionOption,
    outcome_rows,
    provisioner_for,
)

if TYPE_CHECKING:
    from stackfleet.provision.apply import Provisioner, Scope
    from stackfleet.provision.manage import WorkloadManager, WorkloadView
    from stackfleet.provision.plan import Member

out = Console(highlight=False, soft_wrap=True)

NameArgument = Annotated[str, typer.Argument(help="The workload's name.")]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", help="Project name or id (default: the cloud entry's)."),
]
MemberOption = Annotated[
    str | None,
    typer.Option("--member", help="One member (name, number or id); default: every one."),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for each member's change.")
]

SHOW_COLUMNS = ["member", "index", "status", "host", "size", "id", "fault"]


@dataclass(frozen=True)
class Verb:
    """A changing verb as a command: its help and the one option of its own."""

    help: str
    option: inspect.Parameter | None = None


def _option(
    name: str, annotation: Any, default: Any = inspect.Parameter.empty
) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)  # fmt: skip


VERBS: dict[str, Verb] = {
    "start": Verb("Start (power on) the workload's stopped members. Dry-run unless --execute."),
    "stop": Verb("Stop (shut off, power off) the workload's members. Dry-run unless --execute."),
    "reboot": Verb(
        "Reboot (restart) the workload's members (soft, or --hard). Dry-run unless --execute.",
        _option("hard", Annotated[bool, typer.Option("--hard", help="A hard reboot.")], False),
    ),
    "rebuild": Verb(
        "Rebuild the workload's members from an image. Dry-run unless --execute.",
        _option(
            "image",
            Annotated[
                str,
                typer.Option(
                    "--image", help="Glance image name or id (containers: a container image)."
                ),
            ],
        ),
    ),  # fmt: skip
    "resize": Verb(
        "Resize the workload's members to another flavor (and confirm the resize). "
        "Dry-run unless --execute.",
        _option("size", Annotated[str, typer.Option("--size", help="The new flavor.")]),
    ),
    "delete": Verb(
        "Delete (undeploy) the workload's members: only those carrying its labels. "
        "Dry-run unless --execute."
    ),
}


def register(app: typer.Typer) -> None:
    """Add `workload ...` to the root app."""
    group = typer.Typer(
        help="Manage workloads (VMs, bare metal, containers) with the same verbs on every backend."
    )
    group.command("list")(list_command)
    group.command("show")(show_command)
    for verb, spec in VERBS.items():
        group.command(verb, help=spec.help)(_verb_command(verb, spec))
    group.command("console-url")(console_url_command)
    group.command("logs")(logs_command)
    app.add_typer(group, name="workload")


def _manager(
    ctx: typer.Context,
    cloud: str | None,
    region: str | None,
    project: str | None,
    config: str | None,
) -> tuple[Provisioner, WorkloadManager, Scope]:
    from stackfleet.provision.manage import WorkloadManager

    provisioner = provisioner_for(ctx, cloud, region, config)
    try:
        scope = provisioner.scope_for(provisioner.default_cloud, region, project)
    except BaseException:
        provisioner.close()
        raise
    return provisioner, WorkloadManager(provisioner), scope


def _with_workload(
    ctx: typer.Context,
    name: str,
    cloud: str | None,
    region: str | None,
    project: str | None,
    config: str | None,
    then: Callable[[WorkloadManager, Scope, WorkloadView], Any],
) -> Any:
    """Find the workload by its labels and do `then` with it; the connections close."""
    provisioner, manager, scope = _manager(ctx, cloud, region, project, config)
    try:
        return then(manager, scope, manager.find(scope, name))
    finally:
        provisioner.close()


def list_command(
    ctx: typer.Context,
    cloud: CloudOption = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """The project's workloads (VMs, bare metal, containers): backend, members, how many
    are ACTIVE or failed."""
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


def member_size(backend: str, member: Member) -> str | None:
    """What a member is made of, in its backend's words: a flavor, a bare-metal
    resource class, or a container's cpu and memory."""
    raw = member.raw
    if backend == "ironic":
        return raw.get("resource_class") or (raw.get("allocation") or {}).get("resource_class")
    if backend == "zun":
        return f"{float(raw.get('cpu') or 0):g} cpu, {raw.get('memory')} MiB"
    return (raw.get("flavor") or {}).get("original_name")


def show_command(
    ctx: typer.Context,
    name: NameArgument,
    cloud: CloudOption = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """One workload's members: status, host, size (flavor, resource class or cpu and
    memory), id and fault."""
    view = _with_workload(ctx, name, cloud, region, project, config, lambda m, s, v: v)
    rows = [
        {
            "member": m.name,
            "index": m.index,
            "status": m.status,
            "host": m.host,
            "size": member_size(view.backend, m),
            "id": m.id,
            "fault": m.fault,
        }
        for m in view.members
    ]
    emit_rows(rows, SHOW_COLUMNS, fmt)
    if fmt is Format.table:
        out.print(f"workload {escape(view.name)} ({view.backend}): {view.status}")


def _verb_command(verb: str, spec: Verb) -> Callable[..., None]:
    """The command of one changing verb: the same body for every verb, its own option
    (if any) passed on to the manager."""

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
        **options: Any,
    ) -> None:
        from stackfleet.provision.apply import ProvisionError

        outcomes = _with_workload(
            ctx, name, cloud, region, project, config,
            lambda manager, scope, view: manager.run_verb(
                scope, view, verb, member, options, execute=execute, timeout=timeout
            ),
        )  # fmt: skip
        emit_rows(outcome_rows(outcomes), OUTCOME_COLUMNS, fmt)
        if fmt is Format.table and not execute:
            out.print("dry-run: nothing changed; run again with --execute")
        failed = [o for o in outcomes if o.status in ("failed", "unverified", "blocked")]
        if failed:
            raise ProvisionError(
                f"{verb} did not take on {len(failed)} member(s): "
                + ", ".join(f"{o.name} ({o.message})" for o in failed)
            )

    signature = inspect.signature(command, eval_str=True)
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    if spec.option is not None:
        params.append(spec.option)
    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    command.__doc__ = spec.help
    command.__name__ = f"{verb}_command"
    return command


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
    urls = _with_workload(
        ctx, name, cloud, region, project, config,
        lambda manager, scope, view: manager.console_urls(scope, view, member, protocol),
    )  # fmt: skip
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
    """Each member's console log, or a container's logs (or one member's)."""
    logs = _with_workload(
        ctx, name, cloud, region, project, config,
        lambda manager, scope, view: manager.logs(scope, view, member, lines),
    )  # fmt: skip
    for m, text in logs:
        if len(logs) > 1:
            out.print(f"[bold]==> {escape(m.name)} <==[/]")
        out.print(escape(text.rstrip("\n")))
