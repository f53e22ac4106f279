"""`stackfleet provision plan|apply|status|destroy SPEC`: workloads from one spec."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from stackfleet.cli.context import state
from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_rows

if TYPE_CHECKING:
    from stackfleet.provision.apply import ApplyReport, MemberOutcome, Provisioner, Scope
    from stackfleet.provision.plan import WorkloadPlan

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SpecArgument = Annotated[Path, typer.Argument(help="The workload spec (YAML).")]
CloudOption = Annotated[
    str | None,
    typer.Option("--os-cloud", envvar="OS_CLOUD", help="Cloud name in clouds.yaml (default)."),
]
RegionOption = Annotated[
    str | None, typer.Option("--os-region-name", help="Region (default: the cloud's first).")
]
ExecuteOption = Annotated[
    bool, typer.Option("--execute", help="Change the cloud (default: dry-run, nothing changes).")
]

PLAN_COLUMNS = ["workload", "change", "member", "reason", "flavor", "image"]
OUTCOME_COLUMNS = ["workload", "action", "member", "status", "server_id", "message"]
STATUS_COLUMNS = ["workload", "member", "status", "host", "server_id", "fault"]


def register(app: typer.Typer) -> None:
    """Add `provision plan|apply|status|destroy` to the root app."""
    group = typer.Typer(
        help="Provision workloads (VMs, bare metal, containers) from one declarative spec."
    )
    group.command("plan")(plan_command)
    group.command("apply")(apply_command)
    group.command("status")(status_command)
    group.command("destroy")(destroy_command)
    app.add_typer(group, name="provision")


def outcome_rows(outcomes: list[MemberOutcome]) -> list[dict[str, Any]]:
    """What became of each member, as rows under OUTCOME_COLUMNS."""
    return [
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


def provisioner_for(
    ctx: typer.Context, cloud: str | None, region: str | None, config: str | None
) -> Provisioner:
    """The provisioner of a command: the store, the settings file, and the cloud of
    --os-cloud (or the OS_* variables)."""
    from stackfleet.engine.settings import load_settings
    from stackfleet.provision.apply import Provisioner

    default_cloud = cloud or ("envvars" if os.environ.get("OS_AUTH_URL") else None)
    return Provisioner(
        state(ctx).store(),
        load_settings(config),
        default_cloud=default_cloud,
        default_region=region,
    )


def _prepare(
    ctx: typer.Context,
    spec: Path,
    cloud: str | None,
    region: str | None,
    config: str | None,
    destroy: bool = False,
) -> tuple[Provisioner, list[tuple[WorkloadPlan, Scope]]]:
    from stackfleet.provision.spec import load_spec

    workloads = load_spec(spec)
    provisioner = provisioner_for(ctx, cloud, region, config)
    try:
        prepared = provisioner.prepare(workloads)
        return provisioner, provisioner.plan(prepared, destroy=destroy)
    except BaseException:
        provisioner.close()
        raise


def _plan_rows(plans: list[WorkloadPlan]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for plan in plans:
        flavor = (plan.resolved.flavor or {}).get("name")
        if plan.resolved.flavor_chosen and flavor:
            flavor = f"{flavor} (best fit)"
        if plan.group_needed:
            rows.append(
                {
                    "workload": plan.name,
                    "change": "create",
                    "member": f"server group stackfleet-{plan.name}",
                    "reason": plan.resolved.workload.placement.server_group,
                }
            )
        for step in plan.steps:
            rows.append(
                {
                    "workload": plan.name,
                    "change": step.kind,
                    "member": step.name,
                    "reason": step.reason,
                    "flavor": flavor,
                    "image": plan.resolved.image_name,
                }
            )
    return rows


_SIGN = {"create": "[green]+[/]", "replace": "[yellow]~[/]", "delete": "[red]-[/]", "keep": " "}


def _print_plan(plans: list[WorkloadPlan]) -> None:
    for plan in plans:
        w = plan.resolved.workload
        flavor = (plan.resolved.flavor or {}).get("name") or "-"
        chosen = " (best fit for the size)" if plan.resolved.flavor_chosen else ""
        out.print(
            f"[bold]workload {escape(w.name)}[/] ({w.kind} via {plan.resolved.backend}, "
            f"count {w.count}, flavor {escape(str(flavor))}{chosen}, "
            f"image {escape(str(plan.resolved.image_name or '-'))})"
        )
        if plan.group_needed:
            policy = w.placement.server_group
            out.print(f"  [green]+[/] server group stackfleet-{escape(w.name)} ({policy})")
        for step in plan.steps:
            if step.kind == "keep":
                continue
            out.print(f"  {_SIGN[step.kind]} {escape(step.name)}  [dim]{escape(step.reason)}[/]")
        counts = plan.counts()
        out.print(
            f"  {counts['create']} to create, {counts['replace']} to replace, "
            f"{counts['delete']} to delete, {counts['keep']} unchanged"
        )


def plan_command(
    ctx: typer.Context,
    spec: SpecArgument,
    cloud: CloudOption = None,
    region: RegionOption = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """What apply would create, replace or delete, against what exists (nothing changes).

    Members are the servers carrying the workload's labels; servers made elsewhere are
    never part of a plan."""
    provisioner, plans = _prepare(ctx, spec, cloud, region, config)
    provisioner.close()
    only = [p for p, _ in plans]
    if fmt is Format.table:
        _print_plan(only)
    else:
        emit_rows(_plan_rows(only), PLAN_COLUMNS, fmt)


def _converging_command(destroy: bool, doc: str) -> Callable[..., None]:
    """`apply` or `destroy`: the plan (of the spec, or of its teardown), then the
    convergence. One body for both."""

    def command(
        ctx: typer.Context,
        spec: SpecArgument,
        cloud: CloudOption = None,
        region: RegionOption = None,
        config: SettingsOption = None,
        execute: ExecuteOption = False,
        fmt: FormatOption = Format.table,
    ) -> None:
        provisioner, plans = _prepare(ctx, spec, cloud, region, config, destroy=destroy)
        try:
            _converge(provisioner, plans, execute, fmt)
        finally:
            provisioner.close()

    command.__doc__ = doc
    command.__name__ = "destroy_command" if destroy else "apply_command"
    return command


apply_command = _converging_command(
    False,
    """Converge: create missing members, replace failed ones, scale down to count.

    Quota and capacity are checked first; every create and delete goes through the
    safety gate and the audit log. Without --execute this is a dry run.""",
)
destroy_command = _converging_command(
    True,
    """Delete every member of the spec's workloads (and their server groups), in the
    teardown order `project purge` follows: containers, servers, bare-metal nodes, then
    server groups.

    Only members carrying the workload's labels; without --execute a dry run.""",
)


def _converge(
    provisioner: Provisioner, plans: list[tuple[WorkloadPlan, Scope]], execute: bool, fmt: Format
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from stackfleet.provision.apply import ProvisionError

    only = [p for p, _ in plans]
    table = fmt is Format.table
    if table:
        _print_plan(only)
    if not any(p.changes for p in only):
        if table:
            out.print("nothing to do")
        else:
            emit_rows([], OUTCOME_COLUMNS, fmt)
        return
    for note in provisioner.check_capacity(plans):
        err.print(f"[yellow]note:[/] {escape(note)}")
    report: ApplyReport
    if table and execute:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
        ) as bar:
            tasks: dict[str, Any] = {}

            def advance(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(what, total=total)
                bar.update(tasks[what], completed=done, total=total)

            report = provisioner.apply(plans, execute=True, progress=advance)
    else:
        report = provisioner.apply(plans, execute=execute)
    emit_rows(outcome_rows(report.outcomes), OUTCOME_COLUMNS, fmt)
    if table and not execute:
        out.print("dry-run: nothing changed; run again with --execute")
    if report.failed:
        names = ", ".join(f"{o.name} ({o.message})" for o in report.failed)
        raise ProvisionError(f"{len(report.failed)} member(s) did not converge: {names}")


def status_command(
    ctx: typer.Context,
    spec: SpecArgument,
    cloud: CloudOption = None,
    region: RegionOption = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Each workload's members: status, host, and Nova's fault for failed ones."""
    provisioner, plans = _prepare(ctx, spec, cloud, region, config)
    provisioner.close()
    rows = []
    for plan, _scope in plans:
        for member in sorted(plan.members, key=lambda m: m.index):
            rows.append(
                {
                    "workload": plan.name,
                    "member": member.name,
                    "status": member.status,
                    "host": member.host,
                    "server_id": member.id,
                    "fault": member.fault,
                }
            )
    emit_rows(rows, STATUS_COLUMNS, fmt)
    if fmt is Format.table:
        for plan, _scope in plans:
            active = sum(1 for m in plan.members if m.status == "ACTIVE")
            out.print(f"{escape(plan.name)}: {active} of {plan.resolved.workload.count} ACTIVE")
