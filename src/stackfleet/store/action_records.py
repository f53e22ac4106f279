"""Action records in the store: one row per idempotency key, from planned or waiting
for approval through executed and verified (or failed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError

from stackfleet.core.errors import ConflictError, NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import ActionRecord, Resource

# Statuses of an action that was carried out (they count against rate limits).
EXECUTED = ("succeeded", "failed", "unverified", "running")


class DuplicateAction(Exception):
    """Another run already recorded an action with this idempotency key."""


def by_key(store: Store, key: str) -> dict[str, Any] | None:
    with store.session() as session:
        row = session.scalar(select(ActionRecord).where(ActionRecord.idempotency_key == key))
        return action_dict(row) if row else None


def create(store: Store, **values: Any) -> int:
    """Insert a new action record; DuplicateAction when the key exists already."""
    try:
        with store.sessions.begin() as session:
            row = ActionRecord(**values)
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError as exc:
        raise DuplicateAction(values.get("idempotency_key")) from exc


def set_status(store: Store, action_id: int, now: datetime, **values: Any) -> None:
    with store.sessions.begin() as session:
        session.execute(
            update(ActionRecord)
            .where(ActionRecord.id == action_id)
            .values(updated_at=now, **values)
        )


def claim(store: Store, action_id: int, expected: str, now: datetime) -> bool:
    """Move an action from `expected` status to running; False if someone else did."""
    with store.sessions.begin() as session:
        result = session.execute(
            update(ActionRecord)
            .where(ActionRecord.id == action_id, ActionRecord.status == expected)
            .values(status="running", updated_at=now, executed_at=now)
        )
        return bool(getattr(result, "rowcount", 0))


def get(store: Store, action_id: int) -> dict[str, Any]:
    with store.session() as session:
        row = session.get(ActionRecord, action_id)
        if row is None:
            raise NotFoundError(f"no action {action_id}")
        return action_dict(row)


def list_actions(
    store: Store,
    status: str | None = None,
    policy: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
    project: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Action records, newest first, and how many match (`project`: only actions on
    that project's resources)."""
    conditions: list[ColumnElement[bool]] = []
    if project is not None:
        conditions.append(
            select(Resource.pk)
            .where(
                Resource.cloud == ActionRecord.cloud,
                Resource.region == ActionRecord.region,
                Resource.kind == ActionRecord.kind,
                Resource.resource_id == ActionRecord.resource_id,
                Resource.project_id == project,
            )
            .exists()
        )
    if status:
        conditions.append(ActionRecord.status == status)
    if policy:
        conditions.append(ActionRecord.policy == policy)
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(ActionRecord).where(*conditions))
        rows = session.scalars(
            select(ActionRecord)
            .where(*conditions)
            .order_by(ActionRecord.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [action_dict(r) for r in rows], int(total or 0)


def executed_since(store: Store, since: datetime, policy: str | None = None) -> int:
    """How many actions were carried out since `since` (all policies, or one)."""
    conditions = [ActionRecord.status.in_(EXECUTED), ActionRecord.executed_at >= since]
    if policy:
        conditions.append(ActionRecord.policy == policy)
    with store.session() as session:
        return int(
            session.scalar(select(func.count()).select_from(ActionRecord).where(*conditions)) or 0
        )


def decide(
    store: Store, action_id: int, approve: bool, actor: str, now: datetime
) -> dict[str, Any]:
    """Approve or reject an action waiting for approval."""
    with store.sessions.begin() as session:
        row = session.get(ActionRecord, action_id)
        if row is None:
            raise NotFoundError(f"no action {action_id}; see `stackfleet approvals list`")
        if row.status != "awaiting-approval":
            raise ConflictError(f"action {action_id} is {row.status}, not awaiting approval")
        row.status = "approved" if approve else "rejected"
        row.approved_by = actor
        row.approved_at = now
        row.updated_at = now
        session.flush()
        return action_dict(row)


def action_dict(row: ActionRecord) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        value = aware(value)
        return value.isoformat() if value else None

    return {
        "id": row.id,
        "idempotency_key": row.idempotency_key,
        "policy": row.policy,
        "action": row.action,
        "status": row.status,
        "destructive": row.destructive,
        "cloud": row.cloud,
        "region": row.region,
        "kind": row.kind,
        "resource_id": row.resource_id,
        "resource_name": row.resource_name,
        "finding_id": row.finding_id,
        "plan": row.plan,
        "result": row.result,
        "error": row.error,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "executed_at": iso(row.executed_at),
        "approved_by": row.approved_by,
        "approved_at": iso(row.approved_at),
    }
