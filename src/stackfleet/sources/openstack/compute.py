"""Nova: servers, flavors, hypervisors (joined with Placement), services, server groups."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stackfleet.model import kind
from stackfleet.sources.openstack.context import ListContext, list_kind
from stackfleet.sources.openstack.listing import ListingError, request_json
from stackfleet.sources.openstack.placement import provider_usage

# 2.90: servers carry tags, server_groups, the embedded flavor; hypervisors have uuid
# ids and no deprecated statistics (Placement is the source of truth for capacity).
MICROVERSION = "2.90"
# Hypervisors one below 2.88: from 2.88 Nova asks every nova-compute for its uptime (an
# RPC call) while listing them in detail, so until a dead compute counts as down the
# listing waits rpc_response_timeout and fails -- exactly during an outage (seen on the
# testbed). 2.87 lists from the database; its extra statistics fields are ignored.
HYPERVISOR_MICROVERSION = "2.87"


def servers(ctx: ListContext) -> list[dict[str, Any]]:
    return list_kind(
        ctx,
        "server",
        ctx.target.conn.compute,
        "/servers/detail",
        "servers",
        {"all_tenants": "True"},
        MICROVERSION,
    )


def flavors(ctx: ListContext) -> list[dict[str, Any]]:
    return list_kind(
        ctx,
        "flavor",
        ctx.target.conn.compute,
        "/flavors/detail",
        "flavors",
        {"is_public": "None"},
        MICROVERSION,
    )


def compute_services(ctx: ListContext) -> list[dict[str, Any]]:
    body = request_json(
        ctx.target.conn.compute,
        "/os-services",
        ctx.log,
        ctx.label("compute", "/os-services"),
        microversion=MICROVERSION,
    )
    build = kind("compute_service").record_builder()
    return [build(obj) for obj in body.get("services", [])]


def server_groups(ctx: ListContext) -> list[dict[str, Any]]:
    # os-server-groups pages by offset, not marker
    build = kind("server_group").record_builder()
    records: list[dict[str, Any]] = []
    page_size = 1000
    for offset in range(0, 10_000_000, page_size):
        body = request_json(
            ctx.target.conn.compute,
            "/os-server-groups",
            ctx.log,
            ctx.label("compute", "/os-server-groups"),
            {"all_projects": "True", "limit": page_size, "offset": offset},
            MICROVERSION,
        )
        groups = body.get("server_groups")
        if not isinstance(groups, list):
            raise ListingError("compute GET /os-server-groups: no 'server_groups' list")
        records.extend(build(g) for g in groups)
        if len(groups) < page_size:
            break
    return records


def hypervisors(ctx: ListContext) -> list[dict[str, Any]]:
    """Hypervisors from Nova, each joined with its Placement resource provider (same
    uuid, or same name on clouds whose hypervisor ids are not uuids). Placement is read
    while Nova lists: its per-provider reads are the longest part of a first pass."""
    previous = ctx.previous.get("hypervisor", {})
    nova_failed = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="placement") as pool:
        placement = pool.submit(provider_usage, ctx, previous, nova_failed)
        try:
            records = list_kind(
                ctx,
                "hypervisor",
                ctx.target.conn.compute,
                "/os-hypervisors/detail",
                "hypervisors",
                None,
                HYPERVISOR_MICROVERSION,
            )
        except BaseException:
            nova_failed.set()  # the listing is incomplete anyway: stop reading Placement
            raise
        usage = placement.result()
    for record in records:
        provider = usage.get(record["id"]) or usage.get(f"name:{record['name']}")
        if provider:
            record.update(provider)
    return records
