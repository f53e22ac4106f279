"""Neutron: networks, subnets, ports, floating IPs, routers, agents, security groups
and their rules. An admin sees every project's objects without a filter."""

from __future__ import annotations

from functools import partial
from typing import Any

from stackfleet.sources.openstack.context import ListContext, list_kind

# kind -> (path under /v2.0, collection key)
COLLECTIONS: dict[str, tuple[str, str]] = {
    "network": ("/networks", "networks"),
    "subnet": ("/subnets", "subnets"),
    "port": ("/ports", "ports"),
    "floating_ip": ("/floatingips", "floatingips"),
    "router": ("/routers", "routers"),
    "network_agent": ("/agents", "agents"),
    "security_group": ("/security-groups", "security_groups"),
    "security_group_rule": ("/security-group-rules", "security_group_rules"),
}


def _list(kind_name: str, ctx: ListContext) -> list[dict[str, Any]]:
    path, collection = COLLECTIONS[kind_name]
    return list_kind(ctx, kind_name, ctx.target.conn.network, path, collection)


LISTERS = {kind_name: partial(_list, kind_name) for kind_name in COLLECTIONS}
