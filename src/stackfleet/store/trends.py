"""What reports draw trends from: when the newest complete passes finished, and when
each finding of a policy was open."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import Finding, Pass

Span = tuple[datetime | None, datetime | None]


def complete_pass_times(store: Store, points: int) -> list[datetime]:
    """When the newest `points` complete passes finished, oldest first."""
    with store.sessions() as session:
        rows = session.execute(
            select(Pass.finished_at)
            .where(Pass.status == "complete", Pass.finished_at.is_not(None))
            .order_by(Pass.id.desc())
            .limit(points)
        )
        return sorted(t for (value,) in rows if (t := aware(value)) is not None)


def finding_spans(store: Store, policy: str) -> list[Span]:
    """(opened, resolved) of every finding of `policy`; resolved is None while open."""
    with store.sessions() as session:
        return [
            (aware(opened), aware(resolved))
            for opened, resolved in session.execute(
                select(Finding.opened_at, Finding.resolved_at).where(Finding.policy == policy)
            )
        ]
