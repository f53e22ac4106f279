"""Findings of the infrastructure sweeps (hardware, databases, RabbitMQ) in the findings
table: their rule names carry the pack (``hardware/...``), and they open, refresh and
resolve per resource a sweep judged, not per pass."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from stackfleet.store.db import Store
from stackfleet.store.findings import finding_dict
from stackfleet.store.schema import Finding

CHUNK = 500


def open_findings(store: Store, prefix: str) -> list[dict[str, Any]]:
    """Open findings whose rule (policy) name starts with `prefix`, e.g. "hardware/"."""
    with store.session() as session:
        return [
            finding_dict(r)
            for r in session.scalars(
                select(Finding).where(
                    Finding.policy.startswith(prefix, autoescape=True), Finding.status == "open"
                )
            )
        ]


def apply_changes(
    store: Store,
    new_rows: Iterable[dict[str, Any]],
    refreshed: dict[int, dict[str, Any]],
    resolved: list[int],
    now: datetime,
) -> None:
    """Open `new_rows`, update the still-matching findings (id -> values) and resolve
    the ids in `resolved`, in one transaction."""
    rows = list(new_rows)
    with store.sessions.begin() as session:
        if rows:
            session.execute(insert(Finding), rows)
        for finding_id, values in refreshed.items():
            session.execute(
                update(Finding)
                .where(Finding.id == finding_id)
                .values(last_matched_at=now, **values)
            )
        for start in range(0, len(resolved), CHUNK):
            session.execute(
                update(Finding)
                .where(Finding.id.in_(resolved[start : start + CHUNK]))
                .values(status="resolved", resolved_at=now)
            )
