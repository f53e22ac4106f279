"""Neutron capacity data joined onto the network and network agent listings.

- Networks get `ip_total`, `ip_used` and per-subnet `ip_subnets` from
  ``GET /v2.0/network-ip-availabilities`` (admin only; one page of 1,000 networks per
  request).
- L3 and DHCP agents get the routers they host (``GET /v2.0/agents/{id}/l3-routers``) and
  the networks they serve (``GET /v2.0/agents/{id}/dhcp-networks``): one call per agent,
  and a cloud has few of those agents.

Both joins are best effort: when a call fails (a non-admin token gets 403, a Neutron
without the extension 404) the fields stay None, which reads as "unknown", and the
network or agent listing itself stays complete — the networks and agents were listed.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stackfleet.sources.openstack.context import ListContext
from stackfleet.sources.openstack.listing import (
    ListingError,
    ServiceMissing,
    iter_pages,
    request_json,
)
from stackfleet.sources.openstack.network import LISTERS as NETWORK_LISTERS

log = logging.getLogger(__name__)

# agent_type -> (path suffix, collection key, record field)
HOSTING_CALLS: dict[str, tuple[str, str, str]] = {
    "L3 agent": ("l3-routers", "routers", "hosted_router_ids"),
    "DHCP agent": ("dhcp-networks", "networks", "hosted_network_ids"),
}


def ip_availability(ctx: ListContext) -> dict[str, dict[str, Any]] | None:
    """`ip_total`, `ip_used`, `ip_subnets` by network id; None when Neutron would not say."""
    proxy = ctx.target.conn.network
    path = "/network-ip-availabilities"
    try:
        items = [
            item
            for page in iter_pages(
                proxy,
                path,
                "network_ip_availabilities",
                ctx.log,
                ctx.label("network", path),
                marker_key="network_id",
            )
            for item in page
        ]
    except (ListingError, ServiceMissing) as exc:
        log.warning("%s/%s: no IP availability: %s", ctx.target.cloud, ctx.target.region, exc)
        return None
    result: dict[str, dict[str, Any]] = {}
    for item in items:
        subnets = [
            {
                "subnet_id": s.get("subnet_id"),
                "name": s.get("subnet_name"),
                "cidr": s.get("cidr"),
                "ip_version": s.get("ip_version"),
                "total": _count(s.get("total_ips")),
                "used": _count(s.get("used_ips")),
            }
            for s in item.get("subnet_ip_availability") or []
        ]
        result[str(item.get("network_id"))] = {
            "ip_total": _count(item.get("total_ips")),
            "ip_used": _count(item.get("used_ips")),
            "ip_subnets": subnets,
        }
    return result


def _count(value: Any) -> int | None:
    # IPv6 subnets can hold more addresses than JSON numbers carry exactly; keep ints
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def networks(ctx: ListContext) -> list[dict[str, Any]]:
    """Networks, each with its IP availability (None fields when it could not be read)."""
    records = NETWORK_LISTERS["network"](ctx)
    availability = ip_availability(ctx)
    for record in records:
        # Neutron lists a network without subnets too (with 0 addresses); a network it
        # leaves out is one the token may not see the availability of (a non-admin gets
        # an empty list, not 403): unknown, not empty.
        found = (availability or {}).get(record["id"])
        if found is not None:
            record.update(found)
    return records


def _hosted(ctx: ListContext, agent: dict[str, Any]) -> tuple[str, list[str] | None]:
    suffix, collection, field = HOSTING_CALLS[str(agent.get("agent_type"))]
    path = f"/agents/{agent['id']}/{suffix}"
    try:
        body = request_json(
            ctx.target.conn.network,
            path,
            ctx.log,
            ctx.label("network", f"/agents/{{uuid}}/{suffix}"),
        )
    except (ListingError, ServiceMissing) as exc:
        log.warning("%s/%s: %s", ctx.target.cloud, ctx.target.region, exc)
        return field, None
    return field, sorted(str(item.get("id")) for item in body.get(collection) or [])


def network_agents(ctx: ListContext) -> list[dict[str, Any]]:
    """Neutron agents; L3 agents with the routers they host, DHCP agents with the networks
    they serve."""
    records = NETWORK_LISTERS["network_agent"](ctx)
    hosting = [r for r in records if r.get("agent_type") in HOSTING_CALLS]
    if not hosting:
        return records
    with ThreadPoolExecutor(max_workers=max(1, min(ctx.concurrency, len(hosting)))) as pool:
        for record, (field, ids) in zip(
            hosting, pool.map(lambda r: _hosted(ctx, r), hosting), strict=True
        ):
            record[field] = ids
    return records


LISTERS = {"network": networks, "network_agent": network_agents}
