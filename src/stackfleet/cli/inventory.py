"""Inventory commands: collect, list and show resources, summary, passes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from stackfleet.cli.context import state
from stackfleet.cli.output import (
    Format,
    FormatOption,
    LazyConsole,
    emit_columns,
    emit_object,
    emit_rows,
)
from stackfleet.core.errors import ConfigError, InvalidQueryError

# Collecting needs openstacksdk, imported by `collect`; the listings read only the store.
if TYPE_CHECKING:
    from stackfleet.engine.collect import PassResult
    from stackfleet.sources.openstack.connection import CloudTarget
    from stackfleet.sources.openstack.listing import Listing
    from stackfleet.store import Store
    from stackfleet.store.inventory import ShrinkLimit

err = LazyConsole()
CloudOption = Annotated[str | None, typer.Option("--cloud", help="Only this cloud.")]
RegionOption = Annotated[str | None, typer.Option("--region", help="Only this region.")]
LimitOption = Annotated[int | None, typer.Option("--limit", min=1, help="At most N rows.")]

HYPERVISOR_COLUMNS = (
    ("name", "Hypervisor"),
    ("state", "State"),
    ("enabled", "Status"),
    ("host_ip", "Host IP"),
    ("vcpu_used", "vCPU used"),
    ("vcpu_capacity", "vCPU capacity"),
    ("memory_mb_used", "RAM used (MB)"),
    ("memory_mb_capacity", "RAM capacity (MB)"),
    ("disk_gb_used", "Disk used (GB)"),
    ("disk_gb_capacity", "Disk capacity (GB)"),
    ("region", "Region"),
)
SERVER_COLUMNS = (
    ("id", "ID"),
    ("name", "Name"),
    ("status", "Status"),
    ("power_state", "Power"),
    ("host", "Host"),
    ("flavor_name", "Flavor"),
    ("project_id", "Project"),
    ("addresses", "Networks"),
    ("created", "Created"),
)


def register(app: typer.Typer) -> None:
    """Add the inventory commands to the root app."""
    app.command("collect")(collect_command)
    app.command("summary")(summary_command)
    hypervisors = typer.Typer(help="Compute hosts with their Placement capacity and usage.")
    hypervisors.command("list")(hypervisors_list)
    app.add_typer(hypervisors, name="hypervisors")
    servers = typer.Typer(help="Servers (instances) of every project.")
    servers.command("list")(servers_list)
    app.add_typer(servers, name="servers")
    resources = typer.Typer(help="Any resource kind StackFleet knows.")
    resources.command("list")(resources_list)
    resources.command("show")(resources_show)
    resources.command("kinds")(resources_kinds)
    app.add_typer(resources, name="resources")
    passes = typer.Typer(help="Collection passes and how complete they were.")
    passes.command("list")(passes_list)
    app.add_typer(passes, name="passes")


def run_collection(
    store: Store,
    cloud: str,
    region: str | None = None,
    system_cloud: str | None = None,
    kinds: list[str] | None = None,
    show_progress: bool = True,
    config_files: list[str] | None = None,
    shrink: ShrinkLimit | None | Literal["default"] = "default",
) -> list[PassResult]:
    """Collect one cloud with a progress display on stderr (when it is a terminal)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from stackfleet.engine.collect import collect
    from stackfleet.sources.openstack import LISTERS
    from stackfleet.store.inventory import ShrinkLimit

    if shrink == "default":
        shrink = ShrinkLimit()

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err.get(),
        transient=True,
        disable=not (show_progress and err.is_terminal),
    ) as progress:
        tasks: dict[str, Any] = {}
        total = len(kinds or LISTERS)

        def advance(target: CloudTarget, listing: Listing) -> None:
            key = f"{target.cloud}/{target.region}"
            if key not in tasks:
                tasks[key] = progress.add_task(f"collecting {key}", total=total)
            progress.advance(tasks[key])

        return collect(
            store,
            cloud,
            region,
            system_cloud,
            config_files,
            kinds=kinds,
            progress=advance,
            shrink=shrink,
            keep_records=False,
        )


def collect_command(
    ctx: typer.Context,
    os_cloud: Annotated[
        str | None,
        typer.Option("--os-cloud", envvar="OS_CLOUD", help="Cloud name in clouds.yaml."),
    ] = None,
    os_region_name: Annotated[
        str | None,
        typer.Option("--os-region-name", help="Only this region (default: all of the cloud's)."),
    ] = None,
    system_cloud: Annotated[
        str | None,
        typer.Option(
            "--system-cloud",
            help="A system-scoped cloud entry for the same cloud (Ironic needs one).",
        ),
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only these kinds (repeatable).")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Run one collection pass over a cloud (every region) and record what it saw."""
    from stackfleet.sources.openstack import LISTERS

    cloud = os_cloud or ("envvars" if os.environ.get("OS_AUTH_URL") else None)
    if not cloud:
        raise ConfigError("no cloud given: pass --os-cloud NAME or set OS_CLOUD")
    for name in kind or []:
        if name not in LISTERS:
            raise InvalidQueryError(f"unknown kind {name!r}; known: {', '.join(LISTERS)}")
    from stackfleet.engine.settings import load_settings

    # the shrink limit of the settings file ($STACKFLEET_CONFIG or the default place)
    shrink = load_settings().collect.shrink
    results = run_collection(
        state(ctx).store(), cloud, os_region_name, system_cloud, kind, shrink=shrink
    )
    rows = [
        {
            "pass": r.pass_id,
            "cloud": r.cloud,
            "region": r.region,
            "kind": listing.kind,
            "count": listing.count,
            "complete": listing.complete,
            "requests": listing.requests,
            "seconds": round(listing.seconds, 2),
            "error": listing.error,
        }
        for r in results
        for listing in sorted(r.listings.values(), key=lambda lst: lst.kind)
    ]
    emit_rows(rows, ["region", "kind", "count", "complete", "requests", "seconds", "error"], fmt)
    for r in results:
        err.print(
            f"pass {r.pass_id} {r.cloud}/{r.region}: [bold]{r.status}[/] in {r.seconds:.1f} s, "
            f"{sum(r.requests.values())} requests",
            highlight=False,
        )
    if any(r.status != "complete" for r in results):
        raise typer.Exit(1)


def _listing(
    ctx: typer.Context, kind_name: str, filters: dict[str, str], **options: Any
) -> tuple[list[dict[str, Any]], int]:
    """store/listing.py over the store's engine: no ORM to import and map."""
    from stackfleet.store.listing import list_resources

    with state(ctx).engine().connect() as connection:
        return list_resources(connection, kind_name, filters, **options)


def _list(
    ctx: typer.Context,
    kind_name: str,
    columns: tuple[tuple[str, str], ...],
    filters: dict[str, str | None],
    fmt: Format,
    cloud: str | None,
    region: str | None,
    limit: int | None,
    title: str,
) -> None:
    rows, total = _listing(
        ctx,
        kind_name,
        {k: v for k, v in filters.items() if v is not None},
        cloud=cloud,
        region=region,
        limit=limit,
    )
    emit_columns(rows, columns, fmt, title=title)
    if fmt is Format.table and limit and total > len(rows):
        err.print(f"{len(rows)} of {total} shown (--limit)")


def hypervisors_list(
    ctx: typer.Context,
    state_: Annotated[str | None, typer.Option("--state", help="up or down")] = None,
    cloud: CloudOption = None,
    region: RegionOption = None,
    limit: LimitOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List hypervisors with Placement capacity (after allocation ratios) and usage."""
    _list(
        ctx,
        "hypervisor",
        HYPERVISOR_COLUMNS,
        {"state": state_},
        fmt,
        cloud,
        region,
        limit,
        "Hypervisors",
    )


def servers_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="e.g. ACTIVE, SHUTOFF")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Compute host.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project id or name.")] = None,
    cloud: CloudOption = None,
    region: RegionOption = None,
    limit: LimitOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List servers of every project."""
    if project:
        project = _project_id(ctx, project, cloud, region)
    filters = {"status": status.upper() if status else None, "host": host, "project_id": project}
    _list(ctx, "server", SERVER_COLUMNS, filters, fmt, cloud, region, limit, "Servers")


def _project_id(ctx: typer.Context, project: str, cloud: str | None, region: str | None) -> str:
    """`project` if it is a collected project's id, else the id of the one project of
    that name (as `openstack server list --project` takes either)."""
    if _listing(ctx, "project", {"id": project}, cloud=cloud, region=region)[0]:
        return project
    named, _ = _listing(ctx, "project", {"name": project}, cloud=cloud, region=region)
    ids = sorted({str(p["id"]) for p in named})
    if len(ids) > 1:
        raise InvalidQueryError(
            f"project name {project!r} is ambiguous: ids {', '.join(ids)}; pass one of them"
        )
    return ids[0] if ids else project


def _parse_filters(values: list[str]) -> dict[str, str]:
    filters = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidQueryError(f"filter {item!r} is not FIELD=VALUE")
        filters[key] = value
    return filters


def resources_list(
    ctx: typer.Context,
    kind_name: Annotated[str, typer.Argument(metavar="KIND", help="Resource kind, e.g. port.")],
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", help="FIELD=VALUE (repeatable).")
    ] = None,
    column: Annotated[
        list[str] | None, typer.Option("-c", "--column", help="Columns to show (repeatable).")
    ] = None,
    include_deleted: Annotated[bool, typer.Option("--include-deleted")] = False,
    cloud: CloudOption = None,
    region: RegionOption = None,
    limit: LimitOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List resources of any kind, filtered by any of its fields."""
    from stackfleet.model import KINDS

    if kind_name not in KINDS:
        raise InvalidQueryError(f"unknown kind {kind_name!r}; known: {', '.join(KINDS)}")
    rows, total = _listing(
        ctx,
        kind_name,
        _parse_filters(filter_ or []),
        cloud=cloud,
        region=region,
        include_deleted=include_deleted,
        limit=limit,
    )
    columns = column or ["id", "name", "status", "project_id", "region"]
    emit_rows(rows, columns, fmt, title=KINDS[kind_name].collection)


def resources_show(
    ctx: typer.Context,
    kind_name: Annotated[str, typer.Argument(metavar="KIND")],
    ident: Annotated[str, typer.Argument(metavar="ID_OR_NAME")],
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Show one resource with its relations and recent changes."""
    emit_object(state(ctx).store().get_resource(kind_name, ident, cloud, region), fmt)


def resources_kinds(fmt: FormatOption = Format.table) -> None:
    """List the resource kinds and their fields."""
    from stackfleet.model import KINDS

    rows = [
        {"kind": k.name, "service": k.service, "fields": list(k.field_names()), "doc": k.doc}
        for k in KINDS.values()
    ]
    emit_rows(rows, ["kind", "service", "doc", "fields"], fmt)


def summary_command(
    ctx: typer.Context,
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Hosts up/down, capacity and utilisation, servers by status."""
    summary = state(ctx).store().summary(cloud, region)
    if fmt is not Format.table:
        emit_object(summary, fmt)
        return
    print_summary(summary)


def print_summary(summary: dict[str, Any]) -> None:
    """The fleet summary as tables (also used by `stackfleet demo`)."""
    hyp = summary["hypervisors"]
    rows: list[dict[str, Any]] = [
        {"what": "clouds", "value": ", ".join(summary["clouds"]) or "-"},
        {
            "what": "hypervisors up / down",
            "value": f"{hyp['up']} / {hyp['down']} (of {hyp['total']})",
        },
    ]
    for rc, label in (
        ("vcpu", "vCPU"),
        ("pcpu", "pCPU"),
        ("memory_mb", "RAM MB"),
        ("disk_gb", "disk GB"),
    ):
        cap = summary["capacity"][rc]
        if cap["capacity"]:
            rows.append(
                {
                    "what": f"{label} used / capacity",
                    "value": f"{cap['used']} / {cap['capacity']} ({cap['percent']} %)",
                }
            )
    for kind_name, states in summary["services"].items():
        if states:
            rows.append(
                {
                    "what": f"{kind_name} by state",
                    "value": ", ".join(f"{k} {v}" for k, v in sorted(states.items())),
                }
            )
    rows.append(
        {
            "what": "servers by status",
            "value": ", ".join(f"{k} {v}" for k, v in sorted(summary["servers_by_status"].items())),
        }
    )
    rows.append(
        {
            "what": "resources",
            "value": ", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items())),
        }
    )
    emit_rows(rows, ["what", "value"], Format.table, ["", "Fleet"], title="Fleet summary")


def passes_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 10,
    cloud: CloudOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Recent collection passes, newest first."""
    passes = state(ctx).store().list_passes(limit, cloud)
    for p in passes:
        p["incomplete"] = [k for k, v in p["kinds"].items() if not v["complete"]]
    emit_rows(
        passes,
        [
            "id",
            "cloud",
            "region",
            "status",
            "started_at",
            "finished_at",
            "requests",
            "incomplete",
            "error",
        ],
        fmt,
    )
