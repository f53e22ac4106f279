"""Health verdicts in the store: the newest per subject (`health_states`) and every
change (`health_changes`, what availability is computed from)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import HealthChange, HealthStateRecord


@dataclass(frozen=True)
class Verdict:
    """One subject's verdict as the engine hands it to the store."""

    cloud: str
    region: str
    kind: str
    subject: str
    name: str | None
    state: str
    failure: str | None
    reason: str
    details: dict[str, Any]


def save(store: Store, kind: str, verdicts: Iterable[Verdict], now: datetime) -> list[Verdict]:
    """Replace the verdicts of `kind`; record a change for each subject whose state
    changed (a new subject counts as a change from nothing). Subjects of `kind` no longer
    given are removed. Returns the verdicts whose state changed."""
    wanted = {(v.cloud, v.region, v.subject): v for v in verdicts}
    changed: list[Verdict] = []
    with store.sessions.begin() as session:
        rows = {
            (r.cloud, r.region, r.subject): r
            for r in session.scalars(
                select(HealthStateRecord).where(HealthStateRecord.kind == kind)
            )
        }
        for key, row in rows.items():
            if key not in wanted:
                session.delete(row)
        for key, verdict in wanted.items():
            found = rows.get(key)
            if found is None:
                row = HealthStateRecord(
                    cloud=verdict.cloud,
                    region=verdict.region,
                    kind=kind,
                    subject=verdict.subject,
                    changed_at=now,
                )
                session.add(row)
                before = None
            else:
                row, before = found, found.state
            if before != verdict.state:
                row.changed_at = now
                changed.append(verdict)
                session.add(
                    HealthChange(
                        cloud=verdict.cloud,
                        region=verdict.region,
                        kind=kind,
                        subject=verdict.subject,
                        before=before,
                        after=verdict.state,
                        reason=verdict.reason,
                        at=now,
                    )
                )
            row.name = verdict.name
            row.state = verdict.state
            row.failure = verdict.failure
            row.reason = verdict.reason
            row.details = verdict.details
            row.checked_at = now
    return changed


def load(store: Store, kind: str | None = None) -> list[dict[str, Any]]:
    """The newest verdicts (of `kind`), by kind, cloud, region and subject."""
    query = select(HealthStateRecord)
    if kind:
        query = query.where(HealthStateRecord.kind == kind)
    query = query.order_by(
        HealthStateRecord.kind,
        HealthStateRecord.cloud,
        HealthStateRecord.region,
        HealthStateRecord.name,
        HealthStateRecord.subject,
    )
    with store.session() as session:
        return [
            {
                "kind": r.kind,
                "cloud": r.cloud,
                "region": r.region,
                "subject": r.subject,
                "name": r.name,
                "state": r.state,
                "failure": r.failure,
                "reason": r.reason,
                "details": r.details or {},
                "checked_at": aware(r.checked_at).isoformat(),  # type: ignore[union-attr]
                "changed_at": aware(r.changed_at).isoformat(),  # type: ignore[union-attr]
            }
            for r in session.scalars(query)
        ]


def changes(
    store: Store, kind: str, subject: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    """State changes of `kind` (one subject), oldest first."""
    query = select(HealthChange).where(HealthChange.kind == kind)
    if subject is not None:
        query = query.where(HealthChange.subject == subject)
    if since is not None:
        query = query.where(HealthChange.at >= since)
    query = query.order_by(HealthChange.at, HealthChange.id)
    with store.session() as session:
        return [
            {
                "cloud": c.cloud,
                "region": c.region,
                "subject": c.subject,
                "before": c.before,
                "after": c.after,
                "reason": c.reason,
                "at": aware(c.at),
            }
            for c in session.scalars(query)
        ]


def last_before(store: Store, kind: str, subject: str, moment: datetime) -> str | None:
    """The state a subject was in at `moment` (the newest change before it)."""
    with store.session() as session:
        row = session.scalars(
            select(HealthChange)
            .where(
                HealthChange.kind == kind,
                HealthChange.subject == subject,
                HealthChange.at < moment,
            )
            .order_by(HealthChange.at.desc(), HealthChange.id.desc())
            .limit(1)
        ).first()
        return row.after if row else None


def change_before(store: Store, kind: str, subject: str, moment: datetime) -> dict[str, Any] | None:
    """The subject's newest change before `moment` (the state it was in then), or None."""
    with store.session() as session:
        row = session.scalars(
            select(HealthChange)
            .where(
                HealthChange.kind == kind,
                HealthChange.subject == subject,
                HealthChange.at < moment,
            )
            .order_by(HealthChange.at.desc(), HealthChange.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return {"after": row.after, "reason": row.reason, "at": aware(row.at)}
