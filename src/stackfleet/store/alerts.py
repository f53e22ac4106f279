"""Alerts and silences in the store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, update

from stackfleet.core.errors import ConflictError, NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import Alert, AlertNotification, Silence


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
    by_status: dict[str, list[int]] = {}
    for alert_id in ids:
        by_status.setdefault(status_by_id[alert_id], []).append(alert_id)
    with store.sessions.begin() as session:
        for status, chunk_ids in by_status.items():
            for start in range(0, len(chunk_ids), 500):
                session.execute(
                    update(Alert)
                    .where(Alert.id.in_(chunk_ids[start : start + 500]))
                    .values(notified_at=now, notified_status=status)
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


def for_dispatch(store: Store) -> list[dict[str, Any]]:
    """What the dispatcher looks at: every firing alert (groups repeat) and the resolved
    ones whose resolution is not settled with the receivers yet."""
    with store.session() as session:
        return [
            alert_dict(r)
            for r in session.scalars(
                select(Alert)
                .where(
                    or_(
                        Alert.status == "firing",
                        Alert.notified_status.is_(None),
                        Alert.notified_status != Alert.status,
                    )
                )
                .order_by(Alert.id)
            )
        ]


def notification_log(store: Store) -> dict[tuple[str, str], dict[str, Any]]:
    """(receiver, group id) -> what that receiver was last told about that group."""
    with store.session() as session:
        return {
            (r.receiver, r.group_id): notification_dict(r)
            for r in session.scalars(select(AlertNotification))
        }


def save_notifications(store: Store, entries: Iterable[dict[str, Any]]) -> None:
    """Insert (no `id`) or update (by `id`) notification log entries, in one transaction."""
    known = [e for e in entries if e.get("id")]
    new = [{k: v for k, v in e.items() if k != "id"} for e in entries if not e.get("id")]
    with store.sessions.begin() as session:
        if new:
            session.execute(insert(AlertNotification), new)
        if known:
            # executemany by primary key
            session.execute(update(AlertNotification), known)


def save_notification(store: Store, entry: dict[str, Any]) -> None:
    """Insert (no `id`; the new id is set on `entry`) or update one notification log
    entry, in a transaction of its own."""
    values = {k: v for k, v in entry.items() if k != "id"}
    with store.sessions.begin() as session:
        if entry.get("id"):
            session.execute(
                update(AlertNotification)
                .where(AlertNotification.id == entry["id"])
                .values(**values)
            )
        else:
            row = AlertNotification(**values)
            session.add(row)
            session.flush()
            entry["id"] = row.id


def delete_notifications(store: Store, ids: list[int]) -> None:
    if not ids:
        return
    with store.sessions.begin() as session:
        session.execute(delete(AlertNotification).where(AlertNotification.id.in_(ids)))


def notification_dict(row: AlertNotification) -> dict[str, Any]:
    return {
        "id": row.id,
        "receiver": row.receiver,
        "group_id": row.group_id,
        "group_key": row.group_key,
        "group_labels": dict(row.group_labels or {}),
        "created_at": aware(row.created_at),
        "next_flush_at": aware(row.next_flush_at),
        "notified_at": aware(row.notified_at),
        "firing": list(row.firing or []),
        "resolved": list(row.resolved or []),
    }


def ack(store: Store, alert_id: int, actor: str, now: datetime) -> dict[str, Any]:
    with store.sessions.begin() as session:
        row = session.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"no alert {alert_id}")
        if row.status != "firing":
            raise ConflictError(
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


def firing_counts(store: Store) -> list[tuple[str, bool, int]]:
    """(severity, acknowledged, count) of the firing alerts, counted by the database
    (a dashboard's overview of 10,000 alerts reads no row)."""
    acked = Alert.acked_by.is_not(None)
    query = (
        select(Alert.severity, acked, func.count())
        .where(Alert.status == "firing")
        .group_by(Alert.severity, acked)
    )
    with store.session() as session:
        return [(str(s), bool(a), int(n)) for s, a, n in session.execute(query)]


def firing_labels(store: Store) -> list[tuple[str, dict[str, str], bool]]:
    """(severity, labels, acknowledged) of every firing alert: what matching silences
    needs, without building whole alert dicts."""
    query = select(Alert.severity, Alert.labels, Alert.acked_by).where(Alert.status == "firing")
    with store.session() as session:
        rows = session.execute(query)
        return [(str(s), dict(labels or {}), a is not None) for s, labels, a in rows]
