"""Lifecycle state in the store: where each resource is in a reclamation lifecycle, and
owners' extensions of it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update

from stackfleet.core.errors import InvalidQueryError, NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.inventory import aware
from stackfleet.store.schema import Lifecycle

ACTIVE = ("marked", "stopped")
# (cloud, region, kind, resource_id)
Key = tuple[str, str, str, str]


def active(store: Store, policy: str) -> dict[Key, dict[str, Any]]:
    """The active lifecycles of one policy, by resource."""
    with store.session() as session:
        return {
            (r.cloud, r.region, r.kind, r.resource_id): lifecycle_dict(r)
            for r in session.scalars(
                select(Lifecycle).where(Lifecycle.policy == policy, Lifecycle.stage.in_(ACTIVE))
            )
        }


def create(store: Store, **values: Any) -> int:
    with store.sessions.begin() as session:
        row = Lifecycle(**values)
        session.add(row)
        session.flush()
        return row.id


def change(store: Store, lifecycle_id: int, **values: Any) -> None:
    with store.sessions.begin() as session:
        session.execute(update(Lifecycle).where(Lifecycle.id == lifecycle_id).values(**values))


def list_lifecycles(
    store: Store,
    stage: str | None = None,
    policy: str | None = None,
    resource: str | None = None,
    limit: int | None = 200,
) -> list[dict[str, Any]]:
    conditions: list[ColumnElement[bool]] = []
    if stage == "active":
        conditions.append(Lifecycle.stage.in_(ACTIVE))
    elif stage:
        conditions.append(Lifecycle.stage == stage)
    if policy:
        conditions.append(Lifecycle.policy == policy)
    if resource:
        conditions.append(
            or_(Lifecycle.resource_id == resource, Lifecycle.resource_name == resource)
        )
    with store.session() as session:
        return [
            lifecycle_dict(r)
            for r in session.scalars(
                select(Lifecycle).where(*conditions).order_by(Lifecycle.id.desc()).limit(limit)
            )
        ]


def extend(store: Store, resource: str, days: float, now: datetime) -> list[dict[str, Any]]:
    """Push back the next step of every active lifecycle of `resource` (id or name) by
    `days`, within each lifecycle's extension cap. Raises when there is none, or when the
    cap would be exceeded (saying how much is left)."""
    delta = timedelta(days=days)
    if delta <= timedelta(0):
        raise InvalidQueryError("--days must be positive")
    with store.sessions.begin() as session:
        rows = list(
            session.scalars(
                select(Lifecycle).where(
                    Lifecycle.stage.in_(ACTIVE),
                    or_(Lifecycle.resource_id == resource, Lifecycle.resource_name == resource),
                )
            )
        )
        if not rows:
            raise NotFoundError(f"{resource!r} has no active lifecycle (nothing to extend)")
        for row in rows:
            left = row.max_extension_seconds - row.extended_seconds
            if delta.total_seconds() > left + 1e-6:
                raise InvalidQueryError(
                    f"policy {row.policy} allows at most {row.max_extension_seconds / 86400:g} "
                    f"days of extension for {resource}; {max(left, 0) / 86400:g} days are left"
                )
        changed = []
        for row in rows:
            row.next_at = (aware(row.next_at) or now) + delta
            row.extended_seconds += delta.total_seconds()
            row.updated_at = now
            row.reminded = []
            row.history = [*row.history, {"step": "extended", "at": now.isoformat(), "days": days}]
            changed.append(lifecycle_dict(row))
        return changed


def lifecycle_dict(row: Lifecycle) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        value = aware(value)
        return value.isoformat() if value else None

    return {
        "id": row.id,
        "policy": row.policy,
        "cloud": row.cloud,
        "region": row.region,
        "kind": row.kind,
        "resource_id": row.resource_id,
        "resource_name": row.resource_name,
        "project_id": row.project_id,
        "stage": row.stage,
        "started_at": iso(row.started_at),
        "next_at": iso(row.next_at),
        "updated_at": iso(row.updated_at),
        "extended_days": round(row.extended_seconds / 86400, 3),
        "max_extension_days": round(row.max_extension_seconds / 86400, 3),
        "reminded": list(row.reminded or []),
        "history": list(row.history or []),
    }
