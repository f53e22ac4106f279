"""Keystone: projects (for ownership, notices and the "empty project" waste check),
users, and role assignments (who holds which role where: the "admin role held outside
an allowed list" compliance rule).

Keystone's list calls have no marker paging: one call returns the whole list, unless
the deployment sets `list_limit`, in which case the body says `"truncated": true` and
the listing is incomplete (we cannot know what is missing).

Users and role assignments are admin-only calls. A cloud whose credentials are not an
admin's gets HTTP 403: that kind is then *skipped* (like Ironic without a
system-scoped cloud), never listed as empty, so no user or grant looks deleted.

Role assignments are read as granted, not `effective`: one call returns every direct
grant (to users and groups, on projects, domains and the system, inherited ones
marked), which is what an operator revokes. Effective mode would expand group
membership and inheritance but also every implied role (admin → manager → member →
reader), multiplying the list, and it leaves out system grants.
"""

from __future__ import annotations

from typing import Any

from stackfleet.model import kind
from stackfleet.sources.openstack.context import ListContext
from stackfleet.sources.openstack.listing import (
    ListingError,
    RequestRefused,
    RoleMissing,
    request_json,
)


def _whole_list(
    ctx: ListContext,
    path: str,
    collection: str,
    params: dict[str, Any] | None = None,
    admin_only: bool = False,
) -> list[dict[str, Any]]:
    """Every object of one unpaged Keystone list call."""
    label = ctx.label("identity", path)
    try:
        body = request_json(ctx.target.conn.identity, path, ctx.log, label, params)
    except RequestRefused as exc:
        if admin_only and exc.status == 403:
            raise RoleMissing(
                f"{label}: Keystone refused the call (HTTP 403): the cloud "
                f"'{ctx.target.cloud}' needs the admin role to list {collection}"
            ) from exc
        raise
    if body.get("truncated"):
        # Keystone's list_limit cut the list: we cannot know what is missing.
        raise ListingError(f"{label}: list truncated by Keystone's list_limit")
    items = body.get(collection)
    if not isinstance(items, list):
        raise ListingError(f"{label}: response has no {collection!r} list")
    return items


def projects(ctx: ListContext) -> list[dict[str, Any]]:
    """Every Keystone project."""
    build = kind("project").record_builder()
    return [build(obj) for obj in _whole_list(ctx, "/projects", "projects")]


def users(ctx: ListContext) -> list[dict[str, Any]]:
    """Every Keystone user (of every domain the token may see)."""
    build = kind("user").record_builder()
    return [build(obj) for obj in _whole_list(ctx, "/users", "users", admin_only=True)]


def role_assignments(ctx: ListContext) -> list[dict[str, Any]]:
    """Every role assignment as granted, with names (one call)."""
    build = kind("role_assignment").record_builder()
    objects = _whole_list(
        ctx,
        "/role_assignments",
        "role_assignments",
        params={"include_names": "true"},
        admin_only=True,
    )
    return [build(obj) for obj in objects]
