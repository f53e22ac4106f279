"""Keystone: projects (for ownership, notices and the "empty project" waste check)."""

from __future__ import annotations

from typing import Any

from stackfleet.model import kind
from stackfleet.sources.openstack.context import ListContext
from stackfleet.sources.openstack.listing import ListingError, request_json


def projects(ctx: ListContext) -> list[dict[str, Any]]:
    body = request_json(
        ctx.target.conn.identity, "/projects", ctx.log, ctx.label("identity", "/projects")
    )
    if body.get("truncated"):
        # Keystone's list_limit cut the list: we cannot know what is missing.
        raise ListingError("identity GET /projects: list truncated by Keystone's list_limit")
    build = kind("project").record_builder()
    return [build(obj) for obj in body.get("projects", [])]
