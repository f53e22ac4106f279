"""Ironic: bare-metal nodes.

Ironic answers a project-scoped token with only the nodes that project owns or leases
(an empty list, not an error), so a fleet-wide listing needs the target's
system-scoped connection. Without one the listing is skipped: an empty answer under
the wrong scope must never make every node look deleted."""

from __future__ import annotations

from typing import Any

from stackfleet.sources.openstack.context import ListContext, list_kind
from stackfleet.sources.openstack.listing import ScopeMissing

MICROVERSION = "1.80"


def nodes(ctx: ListContext) -> list[dict[str, Any]]:
    conn = ctx.target.system
    if conn is None:
        raise ScopeMissing(
            "baremetal: Ironic lists only project-owned nodes to a project-scoped token; "
            f"add a system-scoped cloud '{ctx.target.cloud}-system' or pass --system-cloud"
        )
    return list_kind(
        ctx,
        "baremetal_node",
        conn.baremetal,
        "/nodes/detail",
        "nodes",
        None,
        MICROVERSION,
        marker_key="uuid",
    )


def allocations(ctx: ListContext) -> list[dict[str, Any]]:
    """Every allocation (standalone bare-metal workload members carry their labels in
    its `extra`), with the system-scoped connection as nodes."""
    conn = ctx.target.system
    if conn is None:
        raise ScopeMissing(
            "baremetal: Ironic lists only project-owned allocations to a project-scoped "
            f"token; add a system-scoped cloud '{ctx.target.cloud}-system' or pass --system-cloud"
        )
    return list_kind(
        ctx, "baremetal_allocation", conn.baremetal, "/allocations", "allocations", None,
        MICROVERSION, marker_key="uuid",
    )  # fmt: skip
