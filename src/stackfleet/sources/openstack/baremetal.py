"""Ironic: bare-metal nodes. Ironic wants a system-scoped token for fleet-wide
listings; the target's system connection is used when one is configured."""

from __future__ import annotations

from typing import Any

from stackfleet.sources.openstack.context import ListContext, list_kind

MICROVERSION = "1.80"


def nodes(ctx: ListContext) -> list[dict[str, Any]]:
    conn = ctx.target.system or ctx.target.conn
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
