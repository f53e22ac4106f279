"""Placement: inventory and usage of every resource provider.

Placement has no bulk call for inventories and usages, so they are read per provider,
concurrently — and only for providers whose generation changed since the store last
saw them (a provider's generation moves whenever its inventory or allocations change).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stackfleet.sources.openstack.context import ListContext
from stackfleet.sources.openstack.listing import ListingError, request_json

MICROVERSION = "1.26"
RESOURCE_CLASSES = {"VCPU": "vcpu", "PCPU": "pcpu", "MEMORY_MB": "memory_mb", "DISK_GB": "disk_gb"}
PLACEMENT_FIELDS = tuple(
    f"{rc}_{part}"
    for rc in RESOURCE_CLASSES.values()
    for part in ("total", "reserved", "allocation_ratio", "used", "capacity")
)


def provider_fields(inventories: dict[str, Any], usages: dict[str, Any]) -> dict[str, Any]:
    """Our hypervisor fields from one provider's inventories and usages."""
    fields: dict[str, Any] = dict.fromkeys(PLACEMENT_FIELDS)
    for rc, prefix in RESOURCE_CLASSES.items():
        inv = inventories.get(rc)
        if not inv:
            continue
        total = int(inv.get("total", 0))
        reserved = int(inv.get("reserved", 0))
        ratio = float(inv.get("allocation_ratio", 1.0))
        fields[f"{prefix}_total"] = total
        fields[f"{prefix}_reserved"] = reserved
        fields[f"{prefix}_allocation_ratio"] = ratio
        fields[f"{prefix}_used"] = int(usages.get(rc, 0))
        fields[f"{prefix}_capacity"] = int((total - reserved) * ratio)
    return fields


def provider_usage(
    ctx: ListContext,
    previous: dict[str, dict[str, Any]],
    cancelled: threading.Event | None = None,
) -> dict[str, dict[str, Any]]:
    """Placement fields by provider uuid (and by "name:<provider name>"). Once
    `cancelled` is set, no further provider is read (ListingError)."""
    proxy = ctx.target.conn.placement
    body = request_json(
        proxy,
        "/resource_providers",
        ctx.log,
        ctx.label("placement", "/resource_providers"),
        microversion=MICROVERSION,
    )
    providers = body.get("resource_providers", [])

    def read(provider: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        uuid, generation = provider["uuid"], provider.get("generation")
        known = previous.get(uuid)
        if known and known.get("resource_provider_generation") == generation:
            return provider, {f: known.get(f) for f in PLACEMENT_FIELDS}
        if cancelled is not None and cancelled.is_set():
            raise ListingError("placement: reads cancelled")
        inventories = request_json(
            proxy,
            f"/resource_providers/{uuid}/inventories",
            ctx.log,
            ctx.label("placement", "/resource_providers/{uuid}/inventories"),
            microversion=MICROVERSION,
        ).get("inventories", {})
        usages = request_json(
            proxy,
            f"/resource_providers/{uuid}/usages",
            ctx.log,
            ctx.label("placement", "/resource_providers/{uuid}/usages"),
            microversion=MICROVERSION,
        ).get("usages", {})
        return provider, provider_fields(inventories, usages)

    result: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=ctx.concurrency) as pool:
        for provider, fields in pool.map(read, providers):
            fields["resource_provider_generation"] = provider.get("generation")
            result[provider["uuid"]] = fields
            result[f"name:{provider.get('name')}"] = fields
    return result
