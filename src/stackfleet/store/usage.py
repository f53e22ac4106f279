"""The store side of the usage sweeps, reads and the one write: which servers are due
for a diagnostics reading, the previous cumulative counters, and history backfilled
from Prometheus as hourly rollups (`record_hourly`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from stackfleet.store.db import Store
from stackfleet.store.metrics import DAY, FIVE_MINUTES, HOUR, ROLLUPS, SAMPLES
from stackfleet.store.schema import MetricRollup, MetricSample, Resource

CHUNK = 500


@dataclass(frozen=True)
class DueServer:
    """An ACTIVE server of the inventory and when its counters were last read."""

    cloud: str
    region: str
    server_id: str
    name: str | None
    project_id: str | None
    vcpus: int | None
    last_read: float | None


def servers_due(
    store: Store, cloud: str, region: str, marker_metric: str, budget: int
) -> tuple[list[DueServer], int]:
    """Up to `budget` ACTIVE servers of a cloud region, never-read ones first, then the
    longest unread: successive sweeps go round the whole fleet. Also returns how many
    ACTIVE servers there are."""
    last = (
        select(MetricSample.resource_id, func.max(MetricSample.ts).label("ts"))
        .where(
            MetricSample.kind == "server",
            MetricSample.cloud == cloud,
            MetricSample.region == region,
            MetricSample.metric == marker_metric,
        )
        .group_by(MetricSample.resource_id)
        .subquery()
    )
    base = (
        Resource.kind == "server",
        Resource.cloud == cloud,
        Resource.region == region,
        Resource.status == "ACTIVE",
        Resource.deleted_at.is_(None),
    )
    query = (
        select(
            Resource.resource_id,
            Resource.name,
            Resource.project_id,
            Resource.attrs["vcpus"].as_integer(),
            last.c.ts,
        )
        .outerjoin(last, last.c.resource_id == Resource.resource_id)
        .where(*base)
        # never read first (NULL sorts first only on some backends: say it)
        .order_by(last.c.ts.is_not(None), last.c.ts, Resource.resource_id)
        .limit(budget)
    )
    with store.sessions() as session:
        total = session.scalar(select(func.count()).select_from(Resource).where(*base)) or 0
        rows = session.execute(query).all()
    return (
        [
            DueServer(cloud, region, rid, name, project, vcpus, None if ts is None else float(ts))
            for rid, name, project, vcpus, ts in rows
        ],
        int(total),
    )


def newest_values(
    store: Store, kind: str, resource_ids: Sequence[str], metrics: Sequence[str]
) -> dict[str, dict[str, tuple[float, float]]]:
    """{resource_id: {metric: (ts, value)}}: the newest raw sample of each metric of the
    given resources (whatever their cloud region; ids are UUIDs)."""
    result: dict[str, dict[str, tuple[float, float]]] = {}
    if not resource_ids or not metrics:
        return result
    with store.sessions() as session:
        for start in range(0, len(resource_ids), CHUNK):
            chunk = list(resource_ids[start : start + CHUNK])
            newest = (
                select(
                    MetricSample.resource_id,
                    MetricSample.metric,
                    func.max(MetricSample.ts).label("ts"),
                )
                .where(
                    MetricSample.kind == kind,
                    MetricSample.resource_id.in_(chunk),
                    MetricSample.metric.in_(list(metrics)),
                )
                .group_by(MetricSample.resource_id, MetricSample.metric)
                .subquery()
            )
            query = select(
                MetricSample.resource_id, MetricSample.metric, MetricSample.ts, MetricSample.value
            ).join(
                newest,
                and_(
                    MetricSample.kind == kind,
                    MetricSample.resource_id == newest.c.resource_id,
                    MetricSample.metric == newest.c.metric,
                    MetricSample.ts == newest.c.ts,
                ),
            )
            for rid, metric, ts, value in session.execute(query):
                result.setdefault(rid, {})[metric] = (float(ts), float(value))
    return result


def window_means(
    store: Store, kind: str, resource_id: str, metrics: Sequence[str], since: float
) -> dict[str, tuple[float, int]]:
    """{metric: (mean, samples)} of one resource since `since`: its raw samples plus what
    only the rollups still hold (as the metric filter reads a window)."""
    result: dict[str, tuple[float, int]] = {}
    with store.engine.connect() as connection:
        for metric in metrics:
            total, count = connection.execute(
                select(func.sum(SAMPLES.c.value), func.count()).where(
                    SAMPLES.c.kind == kind,
                    SAMPLES.c.resource_id == resource_id,
                    SAMPLES.c.metric == metric,
                    SAMPLES.c.ts >= since,
                )
            ).one()
            parts = rolled_up_parts(store, kind, metric, since, resource_id)
            total = float(total or 0.0) + sum(p[0] for p in parts.values())
            count = int(count or 0) + sum(p[1] for p in parts.values())
            if count:
                result[metric] = (total / count, count)
    return result


@dataclass(frozen=True)
class HourlyPoint:
    """One backfilled hour of one series: `bucket` is the hour's start, `value` the
    hour's mean."""

    cloud: str
    region: str
    kind: str
    resource_id: str
    metric: str
    bucket: float
    value: float


def backfill_limit(store: Store, now: float) -> float:
    """Backfilled hours must end here: before the store's own data of any series (the
    rollup watermarks are global, so an hour written after them would stop the hourly
    rollup of newer samples), else before the current hour."""
    with store.engine.connect() as connection:
        candidates: list[Any] = [
            connection.execute(select(func.min(SAMPLES.c.ts))).scalar(),
            connection.execute(
                select(func.min(ROLLUPS.c.bucket)).where(ROLLUPS.c.resolution == FIVE_MINUTES)
            ).scalar(),
        ]
        hourly = connection.execute(
            select(func.max(ROLLUPS.c.bucket)).where(ROLLUPS.c.resolution == HOUR)
        ).scalar()
    if hourly is not None:
        candidates.append(float(hourly) + HOUR)
    known = [float(c) for c in candidates if c is not None]
    limit = min(known) if known else now
    return float(int(limit // HOUR) * HOUR)


def record_hourly(store: Store, points: Iterable[HourlyPoint], limit: float) -> int:
    """Write backfilled hours as hourly rollups (count 1 each), skipping hours at or after
    `limit` and hours a series already has. Returns how many were written."""
    wanted = [p for p in points if p.bucket < limit]
    if not wanted:
        return 0
    keys = {(p.kind, p.resource_id, p.metric) for p in wanted}
    existing: set[tuple[str, str, str, float]] = set()
    # the series' daily buckets: {(kind, resource_id, metric, day): (id, count, total,
    # minimum, maximum)}
    days: dict[tuple[str, str, str, float], tuple[int, int, float, float, float]] = {}
    with store.engine.begin() as connection:
        newest_day = connection.execute(
            select(func.max(ROLLUPS.c.bucket)).where(ROLLUPS.c.resolution == DAY)
        ).scalar()
        rolled_days = None if newest_day is None else float(newest_day) + DAY
        for kind, rid, metric in keys:
            for resolution, bucket, row_id, count, total, low, high in connection.execute(
                select(
                    MetricRollup.resolution,
                    MetricRollup.bucket,
                    MetricRollup.id,
                    MetricRollup.count,
                    MetricRollup.total,
                    MetricRollup.minimum,
                    MetricRollup.maximum,
                ).where(
                    MetricRollup.kind == kind,
                    MetricRollup.resource_id == rid,
                    MetricRollup.metric == metric,
                    MetricRollup.resolution.in_((HOUR, DAY)),
                )
            ):
                if resolution == HOUR:
                    existing.add((kind, rid, metric, float(bucket)))
                else:
                    days[(kind, rid, metric, float(bucket))] = (row_id, count, total, low, high)
        rows = [
            {
                "cloud": p.cloud,
                "region": p.region,
                "kind": p.kind,
                "resource_id": p.resource_id,
                "metric": p.metric,
                "resolution": HOUR,
                "bucket": p.bucket,
                "count": 1,
                "total": p.value,
                "minimum": p.value,
                "maximum": p.value,
            }
            for p in wanted
            if (p.kind, p.resource_id, p.metric, p.bucket) not in existing
        ]
        if rows:
            connection.execute(insert(ROLLUPS), rows)
        if rows and rolled_days is not None:
            _add_to_days(connection, rows, rolled_days, days)
    return len(rows)


def _add_to_days(
    connection: Connection,
    hours: list[dict[str, Any]],
    rolled_days: float,
    days: dict[tuple[str, str, str, float], tuple[int, int, float, float, float]],
) -> None:
    """Add backfilled hours to the daily buckets of days already rolled up (a daily
    bucket stays the sum of its day's hours; later days are rolled by `compact`)."""
    added: dict[tuple[str, str, str, float], dict[str, Any]] = {}
    for hour in hours:
        day = _floor(hour["bucket"], DAY)
        if day >= rolled_days:
            continue
        key = (hour["kind"], hour["resource_id"], hour["metric"], day)
        bucket = added.get(key)
        if bucket is None:
            added[key] = {**hour, "resolution": DAY, "bucket": day}
        else:
            bucket["count"] += hour["count"]
            bucket["total"] += hour["total"]
            bucket["minimum"] = min(bucket["minimum"], hour["minimum"])
            bucket["maximum"] = max(bucket["maximum"], hour["maximum"])
    updates = []
    inserts = []
    for key, bucket in added.items():
        known = days.get(key)
        if known is None:
            inserts.append(bucket)
            continue
        row_id, count, total, low, high = known
        updates.append(
            {
                "row_id": row_id,
                "new_count": count + bucket["count"],
                "new_total": total + bucket["total"],
                "new_minimum": min(low, bucket["minimum"]),
                "new_maximum": max(high, bucket["maximum"]),
            }
        )
    if inserts:
        connection.execute(insert(ROLLUPS), inserts)
    if updates:
        connection.execute(
            update(ROLLUPS)
            .where(ROLLUPS.c.id == bindparam("row_id"))
            .values(
                count=bindparam("new_count"),
                total=bindparam("new_total"),
                minimum=bindparam("new_minimum"),
                maximum=bindparam("new_maximum"),
            ),
            updates,
        )


def resources_by_name(store: Store, kind: str) -> dict[str, list[tuple[str, str, str, str]]]:
    """{name: [(cloud, region, resource_id, name)]} of a kind's current resources, also
    under the short name (before the first dot) so `cmp1` finds `cmp1.example.org`."""
    result: dict[str, list[tuple[str, str, str, str]]] = {}
    with store.sessions() as session:
        rows = session.execute(
            select(Resource.cloud, Resource.region, Resource.resource_id, Resource.name).where(
                Resource.kind == kind, Resource.deleted_at.is_(None)
            )
        ).all()
    for cloud, region, rid, name in rows:
        if not name:
            continue
        entry = (cloud, region, rid, name)
        result.setdefault(name, []).append(entry)
        short = name.split(".", 1)[0]
        if short != name:
            result.setdefault(short, []).append(entry)
    return result


def resource_places(store: Store, kind: str, resource_ids: Iterable[str]) -> dict[str, Any]:
    """{resource_id: (cloud, region, name)} of current resources of a kind among the ids."""
    ids = list(dict.fromkeys(resource_ids))
    found: dict[str, Any] = {}
    with store.sessions() as session:
        for start in range(0, len(ids), CHUNK):
            for cloud, region, rid, name in session.execute(
                select(Resource.cloud, Resource.region, Resource.resource_id, Resource.name).where(
                    Resource.kind == kind,
                    Resource.deleted_at.is_(None),
                    Resource.resource_id.in_(ids[start : start + CHUNK]),
                )
            ):
                found[rid] = (cloud, region, name)
    return found


def newest_in_window(
    store: Store, kind: str, metric: str, since: float
) -> list[tuple[str, str, str, float]]:
    """(cloud, region, resource_id, value) of the newest sample of `metric` since
    `since` of every resource of `kind` that has one."""
    newest = (
        select(
            MetricSample.cloud,
            MetricSample.region,
            MetricSample.resource_id,
            func.max(MetricSample.ts).label("ts"),
        )
        .where(MetricSample.kind == kind, MetricSample.metric == metric, MetricSample.ts >= since)
        .group_by(MetricSample.cloud, MetricSample.region, MetricSample.resource_id)
        .subquery()
    )
    query = select(
        MetricSample.cloud, MetricSample.region, MetricSample.resource_id, MetricSample.value
    ).join(
        newest,
        and_(
            MetricSample.kind == kind,
            MetricSample.metric == metric,
            MetricSample.cloud == newest.c.cloud,
            MetricSample.region == newest.c.region,
            MetricSample.resource_id == newest.c.resource_id,
            MetricSample.ts == newest.c.ts,
        ),
    )
    with store.sessions() as session:
        return [(c, r, rid, float(v)) for c, r, rid, v in session.execute(query)]


# (cloud, region, resource_id) -> (total, count, minimum, maximum)
Parts = dict[tuple[str, str, str], tuple[float, int, float, float]]


def rolled_up_parts(
    store: Store, kind: str, metric: str, since: float, resource_id: str | None = None
) -> Parts:
    """The part of a window since `since` that only the rollups still hold, per resource
    of `kind`: everything before the metric's oldest raw sample, read from the coarsest
    buckets that hold it exactly — daily buckets for whole days, hourly buckets for
    whole hours rolled up (or backfilled from Prometheus), 5-minute buckets for the
    rest. Added to the raw samples, each reading counts once. Empty when nothing has
    been rolled up yet. `resource_id`: only that resource."""
    parts: Parts = {}
    with store.engine.connect() as connection:
        if connection.execute(select(ROLLUPS.c.id).limit(1)).first() is None:
            return parts
        # Raw samples are deleted by time for every series at once, 5-minute buckets by
        # whole hours, so a metric's (or one series') oldest raw sample and the oldest
        # 5-minute bucket bound what only the coarser data still holds. A coarser bucket
        # is the sum of the finer ones it was rolled from (and a backfilled hour is added
        # to its day), so each part of the window can be read at the coarsest resolution
        # complete there. Each bound is one index seek.
        raw = select(func.min(SAMPLES.c.ts)).where(SAMPLES.c.metric == metric)
        five = select(func.min(ROLLUPS.c.bucket)).where(ROLLUPS.c.resolution == FIVE_MINUTES)
        if resource_id is not None:
            raw = raw.where(SAMPLES.c.kind == kind, SAMPLES.c.resource_id == resource_id)
            five = five.where(
                ROLLUPS.c.kind == kind,
                ROLLUPS.c.resource_id == resource_id,
                ROLLUPS.c.metric == metric,
            )
        oldest_raw = connection.execute(raw).scalar()
        oldest_five = connection.execute(five).scalar()
        newest_hour, newest_day = (
            connection.execute(
                select(func.max(ROLLUPS.c.bucket)).where(ROLLUPS.c.resolution == resolution)
            ).scalar()
            for resolution in (HOUR, DAY)
        )
        raw_from = None if oldest_raw is None else _floor(float(oldest_raw), FIVE_MINUTES)
        five_from = None if oldest_five is None else _floor(float(oldest_five), HOUR)
        # hourly buckets up to the newest complete hour before the raw samples (never
        # before the 5-minute buckets start), 5-minute buckets from there
        hourly_end = five_from
        if newest_hour is not None:
            rolled_hours = float(newest_hour) + HOUR
            if raw_from is not None:
                rolled_hours = min(rolled_hours, _floor(raw_from, HOUR))
            hourly_end = rolled_hours if five_from is None else max(five_from, rolled_hours)
        segments: list[tuple[int, float, float | None]] = []
        if newest_day is not None:
            first_day = _floor(since, DAY) + (DAY if since % DAY else 0)
            last_day = float(newest_day) + DAY
            if hourly_end is not None:
                last_day = min(last_day, _floor(hourly_end, DAY))
            if last_day > first_day:
                segments += [(DAY, first_day, last_day), (HOUR, since, first_day)]
                segments.append((HOUR, last_day, hourly_end))
        if not segments:
            segments.append((HOUR, since, hourly_end))
        if hourly_end is not None:
            segments.append((FIVE_MINUTES, max(since, hourly_end), raw_from))
        elif raw_from is not None:
            segments.append((FIVE_MINUTES, since, raw_from))
        group = (ROLLUPS.c.cloud, ROLLUPS.c.region, ROLLUPS.c.resource_id)
        for resolution, start, end in segments:
            if end is not None and end <= start:
                continue
            query = (
                select(
                    *group,
                    func.sum(ROLLUPS.c.total),
                    func.sum(ROLLUPS.c.count),
                    func.min(ROLLUPS.c.minimum),
                    func.max(ROLLUPS.c.maximum),
                )
                .where(
                    ROLLUPS.c.metric == metric,
                    ROLLUPS.c.resolution == resolution,
                    ROLLUPS.c.kind == kind,
                    ROLLUPS.c.bucket >= start,
                )
                .group_by(*group)
            )
            if end is not None:
                query = query.where(ROLLUPS.c.bucket < end)
            if resource_id is not None:
                query = query.where(ROLLUPS.c.resource_id == resource_id)
            for cloud, region, rid, total, count, low, high in connection.execute(query):
                key = (cloud, region, rid)
                parts[key] = merge_parts(
                    parts.get(key), (float(total), int(count), float(low), float(high))
                )
    return parts


def merge_parts(
    a: tuple[float, int, float, float] | None, b: tuple[float, int, float, float]
) -> tuple[float, int, float, float]:
    """Two partial aggregates (total, count, minimum, maximum) of one series as one."""
    if a is None:
        return b
    return (a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3]))


def _floor(ts: float, size: int) -> float:
    return float(int(ts // size) * size)
