"""Recovery records and their steps: what the recovery reconciler (engine/recovery.py)
did, step by step, so that a restarted StackFleet resumes instead of repeating."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from stackfleet.core.errors import NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import RecoveryRecord, RecoveryStep

OPEN = ("planned", "running")


def create(store: Store, now: datetime, **values: Any) -> int:
    with store.sessions.begin() as session:
        row = RecoveryRecord(created_at=now, updated_at=now, **values)
        session.add(row)
        session.flush()
        return row.id


def update_recovery(store: Store, recovery_id: int, now: datetime, **values: Any) -> None:
    with store.sessions.begin() as session:
        session.execute(
            update(RecoveryRecord)
            .where(RecoveryRecord.id == recovery_id)
            .values(updated_at=now, **values)
        )


def take_over(
    store: Store, recovery_id: int, owner: str, now: datetime, stale_before: datetime
) -> bool:
    """Make `owner` the recovery's driver: when it is already, or when its driver has
    not written since `stale_before` (it died). False when another live driver has it."""
    with store.sessions.begin() as session:
        result = session.execute(
            update(RecoveryRecord)
            .where(
                RecoveryRecord.id == recovery_id,
                (RecoveryRecord.owner == owner)
                | RecoveryRecord.owner.is_(None)
                | (RecoveryRecord.updated_at < stale_before),
            )
            .values(owner=owner, updated_at=now)
        )
        return bool(getattr(result, "rowcount", 0))


def open_recoveries(store: Store, kind: str | None = None) -> list[dict[str, Any]]:
    query = select(RecoveryRecord).where(RecoveryRecord.status.in_(OPEN))
    if kind:
        query = query.where(RecoveryRecord.kind == kind)
    with store.session() as session:
        return [_recovery(r) for r in session.scalars(query.order_by(RecoveryRecord.id))]


def find_open(
    store: Store, cloud: str, region: str, kind: str, subject: str
) -> dict[str, Any] | None:
    with store.session() as session:
        row = session.scalars(
            select(RecoveryRecord).where(
                RecoveryRecord.cloud == cloud,
                RecoveryRecord.region == region,
                RecoveryRecord.kind == kind,
                RecoveryRecord.subject == subject,
                RecoveryRecord.status.in_(OPEN),
            )
        ).first()
        return _recovery(row) if row else None


def latest(store: Store, cloud: str, region: str, kind: str, subject: str) -> dict[str, Any] | None:
    with store.session() as session:
        row = session.scalars(
            select(RecoveryRecord)
            .where(
                RecoveryRecord.cloud == cloud,
                RecoveryRecord.region == region,
                RecoveryRecord.kind == kind,
                RecoveryRecord.subject == subject,
            )
            .order_by(RecoveryRecord.id.desc())
            .limit(1)
        ).first()
        return _recovery(row) if row else None


def count_since(store: Store, kind: str, since: datetime, subject: str | None = None) -> int:
    """Recoveries of `kind` created since `since` (one subject's, when given)."""
    query = select(func.count(RecoveryRecord.id)).where(
        RecoveryRecord.kind == kind, RecoveryRecord.created_at >= since
    )
    if subject is not None:
        query = query.where(RecoveryRecord.subject == subject)
    with store.session() as session:
        return int(session.scalar(query) or 0)


def steps_named_since(store: Store, name: str, since: datetime) -> int:
    """Steps called `name` started since `since` (the per-hour limits)."""
    with store.session() as session:
        return int(
            session.scalar(
                select(func.count(RecoveryStep.id)).where(
                    RecoveryStep.name == name,
                    RecoveryStep.started_at >= since,
                )
            )
            or 0
        )


def count_by_status(store: Store) -> dict[tuple[str, str], int]:
    """(kind, status) -> how many recoveries (the /metrics gauge)."""
    with store.session() as session:
        rows = session.execute(
            select(
                RecoveryRecord.kind, RecoveryRecord.status, func.count(RecoveryRecord.id)
            ).group_by(RecoveryRecord.kind, RecoveryRecord.status)
        ).all()
    return {(str(k), str(s)): int(n) for k, s, n in rows}


def executed_steps_since(
    store: Store, kind: str, since: datetime, subject: str | None = None
) -> int:
    """Steps of executing (not dry-run) recoveries of `kind` (one subject's, when
    given) started since `since`: the per-instance and per-hour limits."""
    query = (
        select(func.count(RecoveryStep.id))
        .join(RecoveryRecord, RecoveryRecord.id == RecoveryStep.recovery_id)
        .where(
            RecoveryRecord.kind == kind,
            RecoveryRecord.execute.is_(True),
            RecoveryStep.started_at >= since,
        )
    )
    if subject is not None:
        query = query.where(RecoveryRecord.subject == subject)
    with store.session() as session:
        return int(session.scalar(query) or 0)


def list_recoveries(
    store: Store, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = select(RecoveryRecord)
    if status:
        query = query.where(RecoveryRecord.status == status)
    query = query.order_by(RecoveryRecord.id.desc()).limit(limit)
    with store.session() as session:
        return [_recovery(r) for r in session.scalars(query)]


def get(store: Store, recovery_id: int) -> dict[str, Any]:
    """A recovery with its steps; NotFoundError when there is none."""
    with store.session() as session:
        row = session.get(RecoveryRecord, recovery_id)
        if row is None:
            raise NotFoundError(f"no recovery {recovery_id}: see `stackfleet recoveries list`")
        out = _recovery(row)
        out["steps"] = steps(store, recovery_id)
        return out


def steps(store: Store, recovery_id: int) -> list[dict[str, Any]]:
    with store.session() as session:
        return [
            _step(s)
            for s in session.scalars(
                select(RecoveryStep)
                .where(RecoveryStep.recovery_id == recovery_id)
                .order_by(RecoveryStep.seq, RecoveryStep.id)
            )
        ]


def step(store: Store, recovery_id: int, name: str, target: str) -> dict[str, Any] | None:
    with store.session() as session:
        row = session.scalars(
            select(RecoveryStep).where(
                RecoveryStep.recovery_id == recovery_id,
                RecoveryStep.name == name,
                RecoveryStep.target == target,
            )
        ).first()
        return _step(row) if row else None


def start_step(
    store: Store, recovery_id: int, seq: int, name: str, target: str, now: datetime
) -> dict[str, Any]:
    """The step (recovery, name, target), created as running when new. An existing
    step is returned as it is: the caller decides from its status and OpenStack's
    state whether anything is left to do."""
    existing = step(store, recovery_id, name, target)
    if existing is not None:
        return existing
    try:
        with store.sessions.begin() as session:
            session.add(
                RecoveryStep(
                    recovery_id=recovery_id,
                    seq=seq,
                    name=name,
                    target=target,
                    status="running",
                    started_at=now,
                )
            )
    except IntegrityError:
        pass
    found = step(store, recovery_id, name, target)
    assert found is not None
    return found


def finish_step(
    store: Store,
    step_id: int,
    now: datetime,
    status: str,
    details: dict[str, Any] | None = None,
    error: str | None = None,
    action_id: int | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "error": error}
    if status not in ("running", "pending"):
        values["finished_at"] = now
    if details is not None:
        values["details"] = details
    if action_id is not None:
        values["action_id"] = action_id
    with store.sessions.begin() as session:
        session.execute(update(RecoveryStep).where(RecoveryStep.id == step_id).values(**values))


def _time(value: datetime | None) -> str | None:
    return aware(value).isoformat() if value is not None else None  # type: ignore[union-attr]


def _recovery(row: RecoveryRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "cloud": row.cloud,
        "region": row.region,
        "kind": row.kind,
        "subject": row.subject,
        "trigger": row.trigger,
        "status": row.status,
        "execute": row.execute,
        "owner": row.owner,
        "evidence": row.evidence or [],
        "details": row.details or {},
        "error": row.error,
        "created_at": _time(row.created_at),
        "updated_at": _time(row.updated_at),
        "finished_at": _time(row.finished_at),
    }


def _step(row: RecoveryStep) -> dict[str, Any]:
    return {
        "id": row.id,
        "recovery_id": row.recovery_id,
        "seq": row.seq,
        "name": row.name,
        "target": row.target,
        "status": row.status,
        "action_id": row.action_id,
        "details": row.details or {},
        "error": row.error,
        "started_at": _time(row.started_at),
        "finished_at": _time(row.finished_at),
    }
