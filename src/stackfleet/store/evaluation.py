"""The store side of policy evaluation: what the engine reads (every live record of a
kind at once, how complete the newest listing of each kind was, when fields last
changed, metric windows) and the state evidence it keeps between runs (`save_evidence`).

Each is one statement over the whole fleet (or one kind of it), so evaluating many
policies over 100,000 resources costs a handful of queries, not one per resource.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, tuple_

from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import (
    MetricSample,
    Pass,
    PassKind,
    Resource,
    ResourceChange,
    StateEvidence,
)
from stackfleet.store.usage import merge_parts, rolled_up_parts

# How collect() records a kind whose service is not in the cloud's catalog.
SKIPPED_PREFIX = "skipped:"
# (cloud, region, resource_id)
ResourceKey = tuple[str, str, str]


def _as_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return aware(value)
    # SQLite through the raw driver: "2026-01-01 12:00:00.000000"
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load_records(
    store: Store, kind: str, cloud: str | None = None, region: str | None = None
) -> list[dict[str, Any]]:
    """Every live (not gone) record of `kind`: its fields plus cloud, region, kind,
    first_seen, last_seen and last_changed (aware datetimes)."""
    conditions = [Resource.kind == kind, Resource.deleted_at.is_(None)]
    if cloud:
        conditions.append(Resource.cloud == cloud)
    if region:
        conditions.append(Resource.region == region)
    records: list[dict[str, Any]] = []
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # The driver's rows, decoded here: SQLAlchemy's per-row JSON and DateTime
            # processing costs more than the query for 100,000 rows.
            columns = select(
                Resource.cloud,
                Resource.region,
                Resource.attrs,
                Resource.first_seen,
                Resource.last_seen,
                Resource.last_changed,
            ).where(*conditions)
            compiled = columns.compile(connection, compile_kwargs={"literal_binds": True})
            rows = connection.exec_driver_sql(str(compiled)).fetchall()
            parsed: dict[Any, datetime | None] = {}

            def when(raw: Any) -> datetime | None:
                if raw not in parsed:
                    parsed[raw] = _as_time(raw)
                return parsed[raw]

            loads = json.loads
            for row_cloud, row_region, attrs, first, last, changed in rows:
                record = loads(attrs)
                record["cloud"] = row_cloud
                record["region"] = row_region
                record["kind"] = kind
                record["first_seen"] = when(first)
                record["last_seen"] = when(last)
                record["last_changed"] = when(changed)
                records.append(record)
            return records
        for row in connection.execute(
            select(
                Resource.cloud,
                Resource.region,
                Resource.attrs,
                Resource.first_seen,
                Resource.last_seen,
                Resource.last_changed,
            ).where(*conditions)
        ):
            record = dict(row.attrs)
            record.update(
                cloud=row.cloud,
                region=row.region,
                kind=kind,
                first_seen=aware(row.first_seen),
                last_seen=aware(row.last_seen),
                last_changed=aware(row.last_changed),
            )
            records.append(record)
    return records


def listing_completeness(store: Store) -> dict[tuple[str, str, str], tuple[int, bool]]:
    """For each (cloud, region, kind): the newest pass that listed it, and whether that
    listing was complete. A kind skipped because the cloud has no such service (no
    endpoint in the catalog) counts as complete: there is nothing of it to miss."""
    newest = (
        select(
            Pass.cloud,
            Pass.region,
            PassKind.kind,
            func.max(PassKind.pass_id).label("pass_id"),
        )
        .join(Pass, Pass.id == PassKind.pass_id)
        .group_by(Pass.cloud, Pass.region, PassKind.kind)
        .subquery()
    )
    query = select(
        newest.c.cloud,
        newest.c.region,
        newest.c.kind,
        newest.c.pass_id,
        PassKind.complete,
        PassKind.error,
    ).join(
        PassKind,
        and_(PassKind.pass_id == newest.c.pass_id, PassKind.kind == newest.c.kind),
    )
    with store.session() as session:
        return {
            (cloud, region, kind): (
                pass_id,
                bool(complete) or (error or "").startswith(SKIPPED_PREFIX),
            )
            for cloud, region, kind, pass_id, complete, error in session.execute(query)
        }


def last_changes(store: Store, kind: str, field: str) -> dict[ResourceKey, datetime]:
    """When `field` of each resource of `kind` last changed (as the passes saw it)."""
    query = (
        select(
            ResourceChange.cloud,
            ResourceChange.region,
            ResourceChange.resource_id,
            func.max(ResourceChange.changed_at),
        )
        .where(ResourceChange.kind == kind, ResourceChange.field == field)
        .group_by(ResourceChange.cloud, ResourceChange.region, ResourceChange.resource_id)
    )
    result: dict[ResourceKey, datetime] = {}
    with store.session() as session:
        for cloud, region, rid, changed in session.execute(query):
            moment = _as_time(changed)
            if moment is not None:
                result[(cloud, region, rid)] = moment
    return result


AGGREGATES = ("mean", "max", "min", "last", "count")


def metric_window(
    store: Store, kind: str, metric: str, since: float, aggregate: str
) -> dict[ResourceKey, tuple[float, int]]:
    """One aggregate of `metric` over samples since `since` (epoch seconds), per
    resource of `kind`: (value, number of samples). Resources without samples in the
    window are absent (no data). Windows longer than the raw retention (6 h) read the
    5-minute and hourly rollups for their older part ("last" reads raw samples only)."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}")
    base = [
        MetricSample.kind == kind,
        MetricSample.metric == metric,
        MetricSample.ts >= since,
    ]
    group = (MetricSample.cloud, MetricSample.region, MetricSample.resource_id)
    result: dict[ResourceKey, tuple[float, int]] = {}
    with store.session() as session:
        if aggregate == "last":
            newest = (
                select(*group, func.max(MetricSample.ts).label("ts"), func.count().label("n"))
                .where(*base)
                .group_by(*group)
                .subquery()
            )
            query = (
                select(
                    MetricSample.cloud,
                    MetricSample.region,
                    MetricSample.resource_id,
                    MetricSample.value,
                    newest.c.n,
                )
                .join(
                    newest,
                    and_(
                        MetricSample.cloud == newest.c.cloud,
                        MetricSample.region == newest.c.region,
                        MetricSample.resource_id == newest.c.resource_id,
                        MetricSample.ts == newest.c.ts,
                    ),
                )
                .where(*base)
            )
        else:
            # raw samples plus what only the rollups still hold (older than the raw
            # retention, or backfilled), as partial aggregates merged per resource
            reading = MetricSample.value
            query = (
                select(
                    *group, func.sum(reading), func.count(), func.min(reading), func.max(reading)
                )
                .where(*base)
                .group_by(*group)
            )
            parts = rolled_up_parts(store, kind, metric, since)
            for cloud, region, rid, total, count, low, high in session.execute(query):
                key = (cloud, region, rid)
                parts[key] = merge_parts(
                    parts.get(key), (float(total), int(count), float(low), float(high))
                )
            for key, (total, count, low, high) in parts.items():
                reduced = {"mean": total / count, "max": high, "min": low, "count": count}
                result[key] = (float(reduced[aggregate]), count)
            return result
        for cloud, region, rid, value, count in session.execute(query):
            result[(cloud, region, rid)] = (float(value), int(count))
    return result


def value_text(value: Any) -> str:
    """A field value as the compact text state evidence keeps."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)[:255]


def load_evidence(store: Store, kind: str, field: str) -> dict[ResourceKey, tuple[str, datetime]]:
    """Kept estimates of since when `field` holds its value, per resource of `kind`."""
    result: dict[ResourceKey, tuple[str, datetime]] = {}
    with store.session() as session:
        for cloud, region, rid, value, since in session.execute(
            select(
                StateEvidence.cloud,
                StateEvidence.region,
                StateEvidence.resource_id,
                StateEvidence.value,
                StateEvidence.since,
            ).where(StateEvidence.kind == kind, StateEvidence.field == field)
        ):
            moment = _as_time(since)
            if moment is not None:
                result[(cloud, region, rid)] = (value, moment)
    return result


def save_evidence(
    store: Store, kind: str, field: str, entries: dict[ResourceKey, tuple[str, datetime]]
) -> None:
    """Replace the estimates of these resources."""
    if not entries:
        return
    keys = list(entries)
    with store.sessions.begin() as session:
        for start in range(0, len(keys), 300):
            chunk = keys[start : start + 300]
            session.execute(
                delete(StateEvidence).where(
                    StateEvidence.kind == kind,
                    StateEvidence.field == field,
                    tuple_(
                        StateEvidence.cloud, StateEvidence.region, StateEvidence.resource_id
                    ).in_(chunk),
                )
            )
        session.execute(
            insert(StateEvidence),
            [
                {
                    "cloud": cloud,
                    "region": region,
                    "kind": kind,
                    "resource_id": rid,
                    "field": field,
                    "value": value,
                    "since": since,
                }
                for (cloud, region, rid), (value, since) in entries.items()
            ],
        )
