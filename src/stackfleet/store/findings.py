"""Findings in the store: opening, refreshing and resolving them as policies are
evaluated, and listing them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from stackfleet.core.errors import NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import Finding

log = logging.getLogger(__name__)

# (cloud, region, kind, resource_id)
FindingKey = tuple[str, str, str, str]
CHUNK = 500


@dataclass
class FindingSync:
    """What one evaluation of one policy did to its findings."""

    opened: int = 0
    resolved: int = 0
    still_open: int = 0
    # finding id of every matched resource that has an open finding
    ids: dict[FindingKey, int] = field(default_factory=dict)


def _open(store: Store, policy: str) -> dict[FindingKey, int]:
    with store.session() as session:
        return {
            (cloud, region, kind, rid): fid
            for fid, cloud, region, kind, rid in session.execute(
                select(
                    Finding.id, Finding.cloud, Finding.region, Finding.kind, Finding.resource_id
                ).where(Finding.policy == policy, Finding.status == "open")
            )
        }


def _insert_open(store: Store, policy: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert new open findings; rows another writer opened meanwhile (the database's
    one-open-finding index refuses them) are left to that writer. Returns the rows this
    call inserted."""
    try:
        with store.sessions.begin() as session:
            session.execute(insert(Finding), rows)
        return rows
    except IntegrityError:
        pass
    inserted: list[dict[str, Any]] = []
    for row in rows:
        try:
            with store.sessions.begin() as session:
                session.execute(insert(Finding), [row])
            inserted.append(row)
        except IntegrityError:
            log.info(
                "finding of %s on %s/%s %s opened by another worker",
                policy,
                row["cloud"],
                row["region"],
                row["resource_id"],
            )
    return inserted


def sync_findings(
    store: Store,
    policy: str,
    severity: str,
    matched: Iterable[dict[str, Any]],
    trusted: set[tuple[str, str]],
    now: datetime,
    only: Collection[FindingKey] | None = None,
    unread: Collection[tuple[str, str, str]] = (),
    describe: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    severity_of: Callable[[dict[str, Any]], str] | None = None,
) -> FindingSync:
    """Open a finding for each matched record without one, refresh the open ones that
    still match, and resolve the open ones that no longer match — but only in trusted
    segments (cloud regions whose newest listings of every kind the policy reads were
    complete): elsewhere findings are left as they are. With `only` (an event-driven
    run), findings of other resources are left as they are too. So are the findings of
    `unread` resources ((cloud, region, id): a sweep could not read them). `describe`
    gives more details of a finding from its record (alert labels, a summary): kept
    when it opens and refreshed while it stays open. `severity_of` gives a finding's
    severity from its record (a policy's `escalate`), else every finding has
    `severity`; an open finding's severity follows its record."""
    existing = _open(store, policy)
    if only is not None:
        existing = {key: fid for key, fid in existing.items() if key in only}
    result = FindingSync()
    matched_keys: set[FindingKey] = set()
    new_rows: list[dict[str, Any]] = []
    refreshed: dict[str, list[int]] = {}
    redescribed: dict[int, dict[str, Any]] = {}
    for record in matched:
        key = (record["cloud"], record["region"], record["kind"], record["id"])
        matched_keys.add(key)
        if (key[0], key[1]) not in trusted or (key[0], key[1], key[3]) in unread:
            if key in existing:
                result.ids[key] = existing[key]
            continue
        level = severity if severity_of is None else severity_of(record)
        if key in existing:
            refreshed.setdefault(level, []).append(existing[key])
            result.ids[key] = existing[key]
            if describe is not None:
                redescribed[existing[key]] = {"status": record.get("status"), **describe(record)}
            continue
        new_rows.append(
            {
                "policy": policy,
                "cloud": key[0],
                "region": key[1],
                "kind": key[2],
                "resource_id": key[3],
                "resource_name": _text(record.get("name")),
                "project_id": _text(record.get("project_id")),
                "severity": level,
                "status": "open",
                "opened_at": now,
                "last_matched_at": now,
                "resolved_at": None,
                "details": {
                    "status": record.get("status"),
                    **(describe(record) if describe is not None else {}),
                },
            }
        )
    gone = [
        fid
        for key, fid in existing.items()
        if key not in matched_keys
        and (key[0], key[1]) in trusted
        and (key[0], key[1], key[3]) not in unread
    ]
    inserted = _insert_open(store, policy, new_rows) if new_rows else []
    with store.sessions.begin() as session:
        for level, ids in refreshed.items():
            for start in range(0, len(ids), CHUNK):
                session.execute(
                    update(Finding)
                    .where(Finding.id.in_(ids[start : start + CHUNK]))
                    .values(last_matched_at=now, severity=level)
                )
        for fid, details in redescribed.items():
            session.execute(update(Finding).where(Finding.id == fid).values(details=details))
        for start in range(0, len(gone), CHUNK):
            session.execute(
                update(Finding)
                .where(Finding.id.in_(gone[start : start + CHUNK]))
                .values(status="resolved", resolved_at=now)
            )
    if new_rows:
        current = _open(store, policy)
        for row in new_rows:
            key = (row["cloud"], row["region"], row["kind"], row["resource_id"])
            # opened here or by a racing writer; the same finding id gives both the
            # same idempotency keys, so the database lets only one act
            if key in current:
                result.ids[key] = current[key]
    result.opened = len(inserted)
    result.resolved = len(gone)
    result.still_open = sum(map(len, refreshed.values()))
    return result


def list_findings(
    store: Store,
    status: str | None = None,
    policy: str | None = None,
    kind: str | None = None,
    cloud: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    project: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Findings, newest first, with the total matching the filters (`project`: only
    that project's resources)."""
    conditions = []
    if project is not None:
        conditions.append(Finding.project_id == project)
    if status:
        conditions.append(Finding.status == status)
    if policy:
        conditions.append(Finding.policy == policy)
    if kind:
        conditions.append(Finding.kind == kind)
    if cloud:
        conditions.append(Finding.cloud == cloud)
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(Finding).where(*conditions)) or 0
        rows = session.scalars(
            select(Finding)
            .where(*conditions)
            .order_by(Finding.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [finding_dict(r) for r in rows], int(total)


def open_findings(store: Store, policy: str) -> list[Finding]:
    """The open findings of `policy`."""
    with store.sessions() as session:
        return list(
            session.scalars(
                select(Finding).where(Finding.policy == policy, Finding.status == "open")
            )
        )


def get_finding(store: Store, finding_id: int) -> dict[str, Any]:
    with store.session() as session:
        row = session.get(Finding, finding_id)
        if row is None:
            raise NotFoundError(f"no finding {finding_id}")
        return finding_dict(row)


def counts_by_policy(store: Store) -> dict[str, dict[str, int]]:
    """policy -> {"open": n, "resolved": n}."""
    result: dict[str, dict[str, int]] = {}
    with store.session() as session:
        for policy, status, count in session.execute(
            select(Finding.policy, Finding.status, func.count()).group_by(
                Finding.policy, Finding.status
            )
        ):
            result.setdefault(policy, {"open": 0, "resolved": 0})[status] = count
    return result


def finding_dict(row: Finding) -> dict[str, Any]:
    return {
        "id": row.id,
        "policy": row.policy,
        "status": row.status,
        "severity": row.severity,
        "cloud": row.cloud,
        "region": row.region,
        "kind": row.kind,
        "resource_id": row.resource_id,
        "resource_name": row.resource_name,
        "project_id": row.project_id,
        "opened_at": _iso(row.opened_at),
        "last_matched_at": _iso(row.last_matched_at),
        "resolved_at": _iso(row.resolved_at),
        "details": row.details or {},
    }


def _iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:255]
