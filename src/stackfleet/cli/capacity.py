"""`stackfleet capacity`: how full the cloud is, what still fits, and whether it survives
losing its largest host — from the inventory of the last pass (and the quota sweep)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console

from stackfleet.cli.context import state
from stackfleet.cli.options import DEFAULT_AGENT_INTERVAL, DEFAULT_QUOTA_INTERVAL
from stackfleet.cli.output import Format, FormatOption, emit_rows
from stackfleet.core.errors import ConfigError

app = typer.Typer(
    help="Capacity planning: allocation, flavor fit, N+1, quotas, IP pools, network and "
    "storage nodes.",
    no_args_is_help=True,
)
err = Console(stderr=True)

CloudOption = Annotated[str | None, typer.Option("--cloud", help="Only this cloud.")]
RegionOption = Annotated[str | None, typer.Option("--region", help="Only this region.")]

RC_LABELS = {"vcpu": "VCPU", "pcpu": "PCPU", "memory_mb": "RAM", "disk_gb": "Disk"}


def register(root: typer.Typer) -> None:
    """Add `stackfleet capacity` to the root app."""
    app.command("report")(report_command)
    app.command("flavors")(flavors_command)
    app.command("quotas")(quotas_command)
    app.command("ips")(ips_command)
    app.command("network")(network_command)
    app.command("storage")(storage_command)
    app.command("sweep")(sweep_command)
    root.add_typer(app, name="capacity")


def flat_report_row(row: dict[str, Any]) -> dict[str, Any]:
    """A region row of the capacity report with its N+1 verdict flattened."""
    flat = {k: v for k, v in row.items() if k != "n_plus_one"}
    for key, value in row["n_plus_one"].items():
        if key not in ("cloud", "region"):
            flat[f"n1_{key}"] = value
    return flat


def _share(used: Any, capacity: Any, rc: str = "") -> str:
    """`used/capacity (pct %)` for a table cell (memory in GiB); empty without capacity."""
    if not capacity:
        return ""
    percent = 100 * (used or 0) / capacity
    if rc == "memory_mb":
        return f"{(used or 0) / 1024:,.0f}/{capacity / 1024:,.0f} GiB ({percent:.0f} %)"
    return f"{used or 0:,.0f}/{capacity:,.0f} ({percent:.0f} %)"


def _headroom(verdict: dict[str, Any]) -> str:
    from stackfleet.engine.capacity import RESOURCE_CLASSES

    parts = [
        f"{RC_LABELS[rc]} {verdict[f'{rc}_headroom_percent']:.0f} %"
        for rc in RESOURCE_CLASSES
        if verdict.get(f"{rc}_headroom_percent") is not None
    ]
    return ", ".join(parts)


def report_command(
    ctx: typer.Context,
    cloud: CloudOption = None,
    region: RegionOption = None,
    hosts: Annotated[
        bool, typer.Option("--hosts", help="One row per hypervisor instead of per region.")
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Per region: hosts, allocation % per resource class (VCPU and PCPU apart, as
    Placement counts them) and whether it survives losing its largest host (N+1)."""
    from stackfleet.engine.capacity import (
        REPORT_KINDS,
        RESOURCE_CLASSES,
        capacity_report,
        hypervisor_rows,
        load_fleet,
    )

    fleet = load_fleet(state(ctx).store(), cloud, region, kinds=REPORT_KINDS)
    if hosts:
        rows = hypervisor_rows(fleet)
        if fmt is Format.table:
            for row in rows:
                for rc in RESOURCE_CLASSES:
                    row[rc] = _share(row[f"{rc}_used"], row[f"{rc}_capacity"], rc)
            columns = ["region", "host", "zone", "usable", *RESOURCE_CLASSES]
            headers = [
                "Region",
                "Host",
                "Zone",
                "Usable",
                *(RC_LABELS[rc] for rc in RESOURCE_CLASSES),
            ]
            emit_rows(rows, columns, fmt, headers=headers, title="Hypervisor allocation")
            return
        columns = ["cloud", "region", "host", "hypervisor_hostname", "zone", "usable"]
        columns += [f"{rc}_{part}" for rc in RESOURCE_CLASSES for part in ("used", "capacity")]
        columns += [f"{rc}_percent" for rc in RESOURCE_CLASSES]
        emit_rows(rows, columns, fmt)
        return
    report = capacity_report(fleet)
    if fmt is not Format.table:
        # machine formats: every number, capacity and used beside the percentages
        rows = [flat_report_row(r) for r in report]
        emit_rows(rows, list(rows[0]) if rows else ["cloud", "region"], fmt)
        return
    table = []
    for row in report:
        verdict = row["n_plus_one"]
        survives = verdict["survives"]
        table.append(
            {
                "cloud": row["cloud"],
                "region": row["region"],
                "hosts": f"{row['usable_hosts']}/{row['hosts']}",
                **{
                    rc: _share(row[f"{rc}_used"], row[f"{rc}_capacity"], rc)
                    for rc in RESOURCE_CLASSES
                },
                "lose": f"{verdict['lost_host']} ({verdict['servers_to_move']} servers)"
                if verdict["lost_host"]
                else "",
                "survives": {True: "yes", False: "NO", None: "?"}[survives],
                "unplaced": verdict["unplaced_servers"] or verdict["reason"],
                "headroom": _headroom(verdict),
            }
        )
    columns = ["cloud", "region", "hosts", *RESOURCE_CLASSES]
    columns += ["lose", "survives", "unplaced", "headroom"]
    headers = [
        "Cloud",
        "Region",
        "Usable hosts",
        *(f"{RC_LABELS[rc]} used" for rc in RESOURCE_CLASSES),
    ]
    headers += ["N+1: lose", "Survives", "Would not fit", "Left after"]
    emit_rows(table, columns, fmt, headers=headers, title="Capacity per region")


def flavors_command(
    ctx: typer.Context,
    cloud: CloudOption = None,
    region: RegionOption = None,
    zones: Annotated[
        bool, typer.Option("--zones", help="Also one row per availability zone.")
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """How many more servers of each flavor fit on the enabled, up hosts."""
    from stackfleet.engine.capacity import FLAVOR_FIT_KINDS, flavor_fit, load_fleet

    rows = flavor_fit(load_fleet(state(ctx).store(), cloud, region, kinds=FLAVOR_FIT_KINDS))
    if not zones:
        rows = [r for r in rows if r["zone"] is None]
    columns = ["cloud", "region", "zone", "flavor", "vcpus", "ram_mb", "disk_gb", "cpu"]
    columns += ["fits", "hosts"]
    emit_rows(rows, columns, fmt, title="Flavor fit")


def quotas_command(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Option("--project", help="Only this project (id or name).")
    ] = None,
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Project usage (counted from the inventory) against quota limits (from the last
    quota sweep): -1 is unlimited, an unread limit is unknown."""
    from stackfleet.engine.capacity import QUOTA_KINDS, load_fleet, quota_rows

    rows = quota_rows(load_fleet(state(ctx).store(), cloud, region, kinds=QUOTA_KINDS), project)
    columns = ["cloud", "region", "project", "project_id", "resource", "used", "limit"]
    columns += ["percent", "state", "error"]
    if fmt is Format.table:
        columns = ["region", "project", "resource", "used", "limit", "percent", "state", "error"]
    emit_rows(rows, columns, fmt, title="Quota usage")


def ips_command(
    ctx: typer.Context,
    cloud: CloudOption = None,
    region: RegionOption = None,
    all_networks: Annotated[
        bool, typer.Option("--all-networks", help="Every network, not only external ones.")
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """External networks with used / total addresses of their allocation pools."""
    from stackfleet.engine.capacity import ip_pool_rows, load_fleet

    fleet = load_fleet(state(ctx).store(), cloud, region, kinds=("network",))
    rows = ip_pool_rows(fleet, external_only=not all_networks)
    columns = ["cloud", "region", "network", "network_id", "used", "total", "free", "percent"]
    columns += ["state"]
    if fmt in (Format.json, Format.yaml):
        columns.append("subnets")  # per subnet: id, name, cidr, total, used
    emit_rows(rows, columns, fmt, title="IP pools")


def network_command(
    ctx: typer.Context,
    cloud: CloudOption = None,
    region: RegionOption = None,
    single: Annotated[
        bool,
        typer.Option(
            "--single", help="Routers and networks hosted by one agent (or only dead ones)."
        ),
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Neutron agents per host: liveness and the routers / networks each hosts."""
    from stackfleet.engine.capacity import load_fleet, network_node_rows, single_agent_rows

    fleet = load_fleet(
        state(ctx).store(), cloud, region, kinds=("network_agent", "router", "network")
    )
    if single:
        rows = single_agent_rows(fleet)
        columns = ["cloud", "region", "kind", "name", "id", "agents", "alive_agents", "hosts"]
        emit_rows(rows, columns, fmt, title="Hosted by a single agent")
        return
    rows = network_node_rows(fleet)
    for row in rows:
        for key in ("routers", "networks"):
            row[f"{key}_count"] = None if row[key] is None else len(row[key])
    columns = ["cloud", "region", "host", "agent_type", "alive", "admin_state_up"]
    columns += ["routers_count", "networks_count", "single_agent_items", "hosting_age_s"]
    emit_rows(rows, columns, fmt, title="Network agents")


def storage_command(
    ctx: typer.Context,
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Cinder pools: capacity, free, provisioned ratio and volume count."""
    from stackfleet.engine.capacity import load_fleet, storage_pool_rows

    fleet = load_fleet(state(ctx).store(), cloud, region, kinds=("storage_pool", "volume"))
    columns = ["cloud", "region", "pool", "backend", "total_gb", "free_gb", "free_percent"]
    columns += ["provisioned_gb", "provisioned_ratio", "max_over_subscription_ratio", "volumes"]
    emit_rows(storage_pool_rows(fleet), columns, fmt, title="Cinder pools")


def sweep_command(
    ctx: typer.Context,
    os_cloud: Annotated[
        str | None, typer.Option("--os-cloud", help="Cloud in clouds.yaml; default $OS_CLOUD.")
    ] = None,
    region: RegionOption = None,
    system_cloud: Annotated[
        str | None, typer.Option("--system-cloud", help="System-scoped entry.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Read every project and every L3/DHCP agent, not only those due."
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--quota-interval", help="Seconds before a project's quotas are read again."),
    ] = DEFAULT_QUOTA_INTERVAL,
    agent_interval: Annotated[
        float,
        typer.Option(
            "--agent-interval",
            min=0,
            help="Seconds before an L3/DHCP agent's routers / networks are read again.",
        ),
    ] = DEFAULT_AGENT_INTERVAL,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=32, help="Requests in flight.")
    ] = 4,
    fmt: FormatOption = Format.table,
) -> None:
    """Read the quota limits of projects that own resources (Nova, Cinder, Neutron) and
    keep them for `capacity quotas`; read the routers / networks of the L3 / DHCP agents
    whose hosting is due (a pass of the network_agent kind) for `capacity network`."""
    from stackfleet.engine.loop import CloudSpec
    from stackfleet.engine.quota_sweep import check_interval, sweep_agent_hosting, sweep_cloud

    cloud = os_cloud or os.environ.get("OS_CLOUD")
    if not cloud:
        raise ConfigError("no cloud to sweep: pass --os-cloud NAME or set OS_CLOUD")
    check_interval(interval)
    store = state(ctx).store()
    spec = CloudSpec(cloud, system_cloud)
    results = sweep_cloud(
        store,
        spec,
        interval,
        concurrency,
        force,
        region,
    )
    agents = sweep_agent_hosting(store, spec, agent_interval, force, region)
    rows = [
        {
            "cloud": r.cloud,
            "region": r.region,
            "projects": r.projects,
            "skipped": r.skipped,
            "failed": len(r.failed),
            "requests": r.requests,
            "agents_read": agents.get((r.cloud, r.region)),
            "first_failure": r.failed[0] if r.failed else None,
        }
        for r in results
    ]
    columns = ["cloud", "region", "projects", "skipped", "failed", "requests", "agents_read"]
    columns.append("first_failure")
    emit_rows(rows, columns, fmt, title="Quota sweep")
