"""Glance: images of every project."""

from __future__ import annotations

from typing import Any

from stackfleet.sources.openstack.context import ListContext, list_kind


def images(ctx: ListContext) -> list[dict[str, Any]]:
    # Without a visibility filter Glance leaves out community images of other projects
    # (a quarter of a cloud's snapshots, say); `all` lists every visibility.
    return list_kind(
        ctx, "image", ctx.target.conn.image, "/images", "images", {"visibility": "all"}
    )
