"""Lease state in the store: where each resource is in a reclamation lease, and
owners' extensions of it.

Every read-modify-write of a lease row (an owner's extension checking the cap, a
run recording a step) is one transaction holding the row: SELECT ... FOR UPDATE on
PostgreSQL and MariaDB, and on SQLite (which has no row locks) BEGIN IMMEDIATE, which
takes the database's write lock before the read. Two extensions at once therefore
cannot both pass the cap check on the same old total, and a run recording a step
cannot overwrite an extension made while it ran."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, text, update
from sqlalchemy import delete as sa_delete
from sqlalchemy.orm import Session

from stackfleet.core.errors import ConflictError, InvalidQueryError, NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import Lease

ACTIVE = ("marked", "stopped")
# a mark step under way: its start (hence its deadline and its actions' idempotency
# keys) is kept, so a run cut short and the next one carry out the same step, once
PENDING = "pending"
# (cloud, region, kind, resource_id)
Key = tuple[str, str, str, str]


@contextmanager
def locked(store: Store) -> Iterator[Session]:
    """A transaction for a read-modify-write of lease rows: select them with
    `.with_for_update()` inside it. On SQLite it begins IMMEDIATE (the write lock is
    taken before the read; other writers wait, up to the busy timeout)."""
    with store.sessions.begin() as session:
        if store.engine.dialect.name == "sqlite":
            # pysqlite begins a transaction lazily, at the first write: begin it now,
            # as a writer (SQLAlchemy leaves FOR UPDATE out on SQLite)
            session.execute(text("BEGIN IMMEDIATE"))
        yield session


def active(store: Store, policy: str) -> dict[Key, dict[str, Any]]:
    """The active leases of one policy, by resource."""
    with store.session() as session:
        return {
            (r.cloud, r.region, r.kind, r.resource_id): lease_dict(r)
            for r in session.scalars(
                select(Lease).where(Lease.policy == policy, Lease.stage.in_(ACTIVE))
            )
        }


def pending(store: Store, policy: str) -> dict[Key, dict[str, Any]]:
    """The leases of one policy whose mark step began and did not complete."""
    with store.session() as session:
        return {
            (r.cloud, r.region, r.kind, r.resource_id): lease_dict(r)
            for r in session.scalars(
                select(Lease).where(Lease.policy == policy, Lease.stage == PENDING)
            )
        }


def get(store: Store, lease_id: int) -> dict[str, Any] | None:
    with store.session() as session:
        row = session.get(Lease, lease_id)
        return lease_dict(row) if row is not None else None


def create(store: Store, **values: Any) -> int:
    with store.sessions.begin() as session:
        row = Lease(**values)
        session.add(row)
        session.flush()
        return row.id


def delete(store: Store, lease_id: int) -> None:
    with store.sessions.begin() as session:
        session.execute(sa_delete(Lease).where(Lease.id == lease_id))


def change(store: Store, lease_id: int, **values: Any) -> None:
    with store.sessions.begin() as session:
        session.execute(update(Lease).where(Lease.id == lease_id).values(**values))


def next_at_of(store: Store, lease_id: int) -> str | None:
    """The lease's current next deadline (ISO), None when it has none or is gone."""
    with store.session() as session:
        value = session.scalar(select(Lease.next_at).where(Lease.id == lease_id))
        value = aware(value)
        return value.isoformat() if value else None


def record_step(
    store: Store,
    lease_id: int,
    now: datetime,
    history_entry: dict[str, Any] | None = None,
    reminder: str | None = None,
    stage: str | None = None,
    next_at: datetime | None = None,
) -> None:
    """Record a step on the lease's current row (locked): append to its history
    and reminders as they are now (an extension made while the run acted is kept), and
    with `stage` move it to that stage and deadline."""
    with locked(store) as session:
        row = session.scalar(select(Lease).where(Lease.id == lease_id).with_for_update())
        if row is None:
            return
        row.updated_at = now
        if reminder:
            row.reminded = [*(row.reminded or []), reminder]
        if stage is not None:
            row.stage = stage
            row.next_at = next_at
            row.reminded = []
        if history_entry is not None:
            row.history = [*(row.history or []), history_entry]


def list_leases(
    store: Store,
    stage: str | None = None,
    policy: str | None = None,
    resource: str | None = None,
    limit: int | None = 200,
) -> list[dict[str, Any]]:
    conditions: list[ColumnElement[bool]] = []
    if stage == "active":
        conditions.append(Lease.stage.in_(ACTIVE))
    elif stage:
        conditions.append(Lease.stage == stage)
    if policy:
        conditions.append(Lease.policy == policy)
    if resource:
        conditions.append(or_(Lease.resource_id == resource, Lease.resource_name == resource))
    with store.session() as session:
        return [
            lease_dict(r)
            for r in session.scalars(
                select(Lease).where(*conditions).order_by(Lease.id.desc()).limit(limit)
            )
        ]


def extend(store: Store, resource: str, days: float, now: datetime) -> list[dict[str, Any]]:
    """Push back the next step of every active lease of `resource` (id or name) by
    `days`, within each lease's extension cap. Raises when there is none, or when the
    cap would be exceeded (saying how much is left)."""
    delta = timedelta(days=days)
    if delta <= timedelta(0):
        raise InvalidQueryError("--days must be positive")
    # the cap check and the extension in one transaction, holding the rows: a second
    # extension at the same time waits, then checks the cap against this one's total
    with locked(store) as session:
        rows = list(
            session.scalars(
                select(Lease)
                .where(
                    Lease.stage.in_(ACTIVE),
                    or_(Lease.resource_id == resource, Lease.resource_name == resource),
                )
                .order_by(Lease.id)
                .with_for_update()
            )
        )
        if not rows:
            raise NotFoundError(f"{resource!r} has no active lease (nothing to extend)")
        for row in rows:
            check_cap(row, delta, resource)
        changed = []
        for row in rows:
            row.next_at = (aware(row.next_at) or now) + delta
            row.extended_seconds += delta.total_seconds()
            row.updated_at = now
            row.reminded = []
            row.history = [*row.history, {"step": "extended", "at": now.isoformat(), "days": days}]
            changed.append(lease_dict(row))
        return changed


def check_cap(row: Lease, delta: timedelta, resource: str) -> None:
    """Raise when extending `row` by `delta` would exceed its cap (saying what is left)."""
    left = row.max_extension_seconds - row.extended_seconds
    if delta.total_seconds() > left + 1e-6:
        raise ConflictError(
            f"policy {row.policy} allows at most {row.max_extension_seconds / 86400:g} "
            f"days of extension for {resource}; {max(left, 0) / 86400:g} days are left"
        )


def lease_dict(row: Lease) -> dict[str, Any]:
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
