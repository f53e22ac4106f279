"""Alerts and silences in the store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update

from stackfleet.errors import InvalidQueryError, NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.inventory import aware
from stackfleet.store.schema import Alert, Silence


def firing_by_fingerprint(store: Store, source: str | None = None) -> dict[str, dict[str, Any]]:
    conditions: list[ColumnElement[bool]] = [Alert.status == "firing"]
    if source:
        conditions.append(Alert.source == source)
    with store.session() as session:
        return {
            r.fingerprint: alert_dict(r) for r in session.scalars(select(Alert).where(*conditions))
        }


def fire(store: Store, rows: Iterable[dict[str, Any]]) -> None:
    """Insert new firing alerts."""
    with store.sessions.begin() as session:
        for row in rows:
            session.add(Alert(**row))


def touch(store: Store, ids: list[int], now: datetime, **values: Any) -> None:
    if not ids:
        return
    with store.sessions.begin() as session:
        for start in range(0, len(ids), 500):
            session.execute(
                update(Alert)
                .where(Alert.id.in_(ids[start : start + 500]))
                .values(updated_at=now, **values)
            )


def resolve_ids(
    store: Store, ids: list[int], now: datetime, ends_at: datetime | None = None
) -> None:
    touch(store, ids, now, status="resolved", ends_at=ends_at or now)


def mark_notified(
    store: Store, ids: list[int], status_by_id: dict[int, str], now: datetime
) -> None:
    with store.sessions.begin() as session:
        for alert_id in ids:
            session.execute(
                update(Alert)
                .where(Alert.id == alert_id)
                .values(notified_at=now, notified_status=status_by_id[alert_id])
            )


def get(store: Store, alert_id: int) -> dict[str, Any]:
    with store.session() as session:
        row = session.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"no alert {alert_id}; see `stackfleet alerts list`")
        return alert_dict(row)


def list_alerts(
    store: Store, status: str | None = "firing", limit: int | None = 500
) -> list[dict[str, Any]]:
    conditions: list[ColumnElement[bool]] = []
    if status:
        conditions.append(Alert.status == status)
    with store.session() as session:
        return [
            alert_dict(r)
            for r in session.scalars(
                select(Alert).where(*conditions).order_by(Alert.id.desc()).limit(limit)
            )
        ]


def to_notify(store: Store) -> list[dict[str, Any]]:
    """Alerts whose receivers have not been told their current status."""
    with store.session() as session:
        return [
            alert_dict(r)
            for r in session.scalars(
                select(Alert).where(
                    (Alert.notified_status.is_(None)) | (Alert.notified_status != Alert.status)
                )
            )
        ]


def ack(store: Store, alert_id: int, actor: str, now: datetime) -> dict[str, Any]:
    with store.sessions.begin() as session:
        row = session.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"no alert {alert_id}")
        if row.status != "firing":
            raise InvalidQueryError(
                f"alert {alert_id} is {row.status}; only firing alerts are acknowledged"
            )
        row.acked_by, row.acked_at, row.updated_at = actor, now, now
        session.flush()
        return alert_dict(row)


def add_silence(
    store: Store,
    matchers: list[dict[str, str]],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
) -> dict[str, Any]:
    with store.sessions.begin() as session:
        row = Silence(
            matchers=matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
            created_at=starts_at,
        )
        session.add(row)
        session.flush()
        return silence_dict(row, starts_at)


def list_silences(store: Store, now: datetime, active_only: bool = True) -> list[dict[str, Any]]:
    conditions: list[ColumnElement[bool]] = []
    if active_only:
        conditions += [Silence.starts_at <= now, Silence.ends_at > now]
    with store.session() as session:
        return [
            silence_dict(r, now)
            for r in session.scalars(select(Silence).where(*conditions).order_by(Silence.id.desc()))
        ]


def expire_silence(store: Store, silence_id: int, now: datetime) -> dict[str, Any]:
    with store.sessions.begin() as session:
        row = session.get(Silence, silence_id)
        if row is None:
            raise NotFoundError(f"no silence {silence_id}")
        if (aware(row.ends_at) or now) > now:
            row.ends_at = now
        session.flush()
        return silence_dict(row, now)


def _iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value else None


def alert_dict(row: Alert) -> dict[str, Any]:
    return {
        "id": row.id,
        "fingerprint": row.fingerprint,
        "alertname": row.alertname,
        "severity": row.severity,
        "status": row.status,
        "source": row.source,
        "labels": dict(row.labels or {}),
        "annotations": dict(row.annotations or {}),
        "starts_at": _iso(row.starts_at),
        "ends_at": _iso(row.ends_at),
        "updated_at": _iso(row.updated_at),
        "finding_id": row.finding_id,
        "generator_url": row.generator_url,
        "acked_by": row.acked_by,
        "acked_at": _iso(row.acked_at),
        "notified_at": _iso(row.notified_at),
        "notified_status": row.notified_status,
    }


def silence_dict(row: Silence, now: datetime) -> dict[str, Any]:
    starts, ends = aware(row.starts_at), aware(row.ends_at)
    state = (
        "expired" if ends and ends <= now else ("pending" if starts and starts > now else "active")
    )
    return {
        "id": row.id,
        "matchers": list(row.matchers or []),
        "starts_at": _iso(starts),
        "ends_at": _iso(ends),
        "created_by": row.created_by,
        "comment": row.comment,
        "state": state,
    }
