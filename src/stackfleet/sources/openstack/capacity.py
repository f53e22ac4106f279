"""Neutron capacity data joined onto the network and network agent listings.

- Networks get `ip_total`, `ip_used` and per-subnet `ip_subnets` from
  ``GET /v2.0/network-ip-availabilities`` (admin only; one page of 1,000 networks per
  request).
- L3 and DHCP agents get the routers they host (``GET /v2.0/agents/{id}/l3-routers``) and
  the networks they serve (``GET /v2.0/agents/{id}/dhcp-networks``): one call per agent,
  so not in every pass. A pass carries the values the store holds and reads an agent's
  hosting only when it is due (`hosting_due`): never read, last read failed, older than
  the context's `agent_interval`, the agent came back alive, or the count the agent
  reports in its heartbeat (``configurations``: ``routers`` / ``networks``) differs from
  the carried list. `hosting_read_at` says when it was read.

Both joins are best effort: when a call fails (a non-admin token gets 403, a Neutron
without the extension 404) the fields stay None, which reads as "unknown", and the
network or agent listing itself stays complete — the networks and agents were listed.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
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
# agent_type -> the record field with the count the agent reports (its configurations)
REPORTED_COUNT = {"L3 agent": "reported_routers", "DHCP agent": "reported_networks"}
DEFAULT_AGENT_INTERVAL = 600.0


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


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_at_epoch(value: Any) -> float | None:
    """`hosting_read_at` as epoch seconds; None when missing or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def hosting_due(
    agent: dict[str, Any], known: dict[str, Any] | None, now: float, interval: float
) -> str | None:
    """Why an L3/DHCP agent's hosting must be read in this pass, or None when the
    `known` (stored) values still hold and are carried over.

    Read when the agent is new to the store, its hosting is unknown (never read, or the
    last read failed), it was last read `interval` seconds ago or more (or in the
    future: a clock moved), it came back alive, or the count it reports in its
    heartbeat differs from the length of the known list and from the count it reported
    in the previous pass."""
    field = HOSTING_CALLS[str(agent.get("agent_type"))][2]
    if known is None:
        return "new agent"
    hosted = known.get(field)
    if hosted is None:
        return "hosting unknown"
    read_at = read_at_epoch(known.get("hosting_read_at"))
    if read_at is None:
        return "never read"
    if agent.get("alive") and known.get("alive") is False:
        return "came back alive"
    count_field = REPORTED_COUNT[str(agent.get("agent_type"))]
    reported = agent.get(count_field)
    # only a count that moved since the last pass: an agent whose count never matches
    # the list (a DVR agent counts routers the API does not list for it) is not read in
    # every pass
    if isinstance(reported, int) and reported != len(hosted) and reported != known.get(count_field):
        return f"reports {reported}, {len(hosted)} known"
    if not 0 <= now - read_at < interval:
        return "interval"
    return None


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
    they serve — carried from the store, read again when due (`hosting_due`)."""
    records = NETWORK_LISTERS["network_agent"](ctx)
    previous = ctx.previous.get("network_agent", {})
    now = time.time()
    due: list[dict[str, Any]] = []
    for record in records:
        if record.get("agent_type") not in HOSTING_CALLS:
            continue
        known = previous.get(record["id"])
        why = hosting_due(record, known, now, ctx.agent_interval)
        if why is None and known is not None:
            field = HOSTING_CALLS[str(record["agent_type"])][2]
            record[field] = known.get(field)
            record["hosting_read_at"] = known.get("hosting_read_at")
        else:
            log.debug("agent %s: reading its hosting (%s)", record["id"], why)
            due.append(record)
    if not due:
        return records
    stamp = _stamp(now)
    with ThreadPoolExecutor(max_workers=max(1, min(ctx.concurrency, len(due)))) as pool:
        for record, (field, ids) in zip(due, pool.map(lambda r: _hosted(ctx, r), due), strict=True):
            record[field] = ids
            # a failed read leaves the hosting unknown and is tried again next pass
            record["hosting_read_at"] = stamp if ids is not None else None
    return records


LISTERS = {"network": networks, "network_agent": network_agents}
