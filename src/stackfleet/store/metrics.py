"""Metric samples in the store: writing readings, rolling them up, reading windows.

A sample is (resource, metric, time, value). Sources (Redfish, databases, RabbitMQ,
Prometheus, Nova diagnostics) write them; policies read windows of them; /metrics
exports the newest values.

Raw samples are kept for a few hours; `compact` folds them into 5-minute buckets, those
into hourly buckets and hours into daily buckets (count, sum, min, max), and drops what
is older than each resolution's retention, so a 14-day window reads a few hundred points
per series (`window`), and the fleet-wide window a policy reads
(`store.evaluation.metric_window`) about 40 rows per series: daily buckets for whole
days, hours at the edges. `window` stitches the finest data available for each part of a time range.
Long-term history belongs to Prometheus, which scrapes /metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Table, cast, delete, func, insert, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from stackfleet.store.db import Store
from stackfleet.store.schema import MetricRollup, MetricSample

SAMPLES: Table = MetricSample.__table__  # type: ignore[assignment]
ROLLUPS: Table = MetricRollup.__table__  # type: ignore[assignment]
_SQLITE_CACHE_KIB = 65536


FIVE_MINUTES = 300
HOUR = 3600
DAY = 86400
# Readings kept only as raw samples, never rolled up: the usage sweep's cumulative
# diagnostics counters (the previous reading a rate needs) and its attempt marker. A mean
# of them means nothing, and rolling them up would keep six series per server for 35 days.
RAW_ONLY_METRICS = (
    "cpu_time_seconds",
    "disk_read_bytes",
    "disk_write_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
    "diagnostics_ok",
)

# SQLite's own executemany over plain tuples: no per-row dict or bind processing, which
# is most of the cost of an ORM or Core bulk insert at 100,000 rows.
_SQLITE_INSERT = (
    "INSERT INTO metric_samples (cloud, region, kind, resource_id, metric, ts, value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Sample:
    """One reading. `ts` is seconds since the epoch (UTC)."""

    cloud: str
    region: str
    kind: str
    resource_id: str
    metric: str
    ts: float
    value: float


def record_samples(store: Store, samples: Iterable[Sample]) -> int:
    """Store readings in one transaction; returns how many."""
    rows = [
        (s.cloud, s.region, s.kind, s.resource_id, s.metric, float(s.ts), float(s.value))
        for s in samples
    ]
    if not rows:
        return 0
    with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # Index maintenance is most of the cost of a big insert: a 64 MB page cache
            # (SQLite's default is 2 MB) keeps the indexes' pages in memory across it.
            connection.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
            connection.exec_driver_sql(_SQLITE_INSERT, rows)
        else:
            names = ("cloud", "region", "kind", "resource_id", "metric", "ts", "value")
            connection.execute(
                insert(SAMPLES), [dict(zip(names, row, strict=True)) for row in rows]
            )
    return len(rows)


def series(
    store: Store,
    kind: str,
    resource_id: str,
    metric: str,
    since: float | None = None,
) -> list[tuple[float, float]]:
    """(ts, value) of one resource's metric, oldest first, optionally since `since`."""
    query = select(MetricSample.ts, MetricSample.value).where(
        MetricSample.kind == kind,
        MetricSample.resource_id == resource_id,
        MetricSample.metric == metric,
    )
    if since is not None:
        query = query.where(MetricSample.ts >= since)
    with store.sessions() as session:
        return [(ts, value) for ts, value in session.execute(query.order_by(MetricSample.ts))]


def latest(
    store: Store, kind: str, metrics: Sequence[str] | None = None
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The newest reading of each (cloud/region, resource, metric) of a kind:
    {(cloud, region, resource_id): {metric: (ts, value)}}."""
    newest = (
        select(
            MetricSample.cloud,
            MetricSample.region,
            MetricSample.resource_id,
            MetricSample.metric,
            func.max(MetricSample.ts).label("ts"),
        )
        .where(MetricSample.kind == kind)
        .group_by(
            MetricSample.cloud, MetricSample.region, MetricSample.resource_id, MetricSample.metric
        )
    )
    if metrics:
        newest = newest.where(MetricSample.metric.in_(metrics))
    sub = newest.subquery()
    query = (
        select(
            MetricSample.cloud,
            MetricSample.region,
            MetricSample.resource_id,
            MetricSample.metric,
            MetricSample.ts,
            MetricSample.value,
        )
        .join(
            sub,
            (MetricSample.cloud == sub.c.cloud)
            & (MetricSample.region == sub.c.region)
            & (MetricSample.resource_id == sub.c.resource_id)
            & (MetricSample.metric == sub.c.metric)
            & (MetricSample.ts == sub.c.ts),
        )
        .where(MetricSample.kind == kind)
    )
    result: dict[tuple[str, str, str], dict[str, Any]] = {}
    with store.sessions() as session:
        for cloud, region, rid, metric, ts, value in session.execute(query):
            result.setdefault((cloud, region, rid), {})[metric] = (ts, value)
    return result


# -- rollups and retention ----------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """How long each resolution is kept, in seconds. Defaults: raw samples 6 hours,
    5-minute buckets 2 days, hourly buckets 35 days (a 14-day window with room), daily
    buckets 90 days (a 14-day window over 20,000 servers reads 14 of them per server
    instead of 336 hourly ones; longer history belongs to Prometheus)."""

    raw: float = 6 * HOUR
    five_minutes: float = 48 * HOUR
    hourly: float = 35 * 24 * HOUR
    daily: float = 90 * 24 * HOUR


@dataclass(frozen=True)
class CompactResult:
    """What one `compact` did: buckets written and rows dropped per resolution."""

    five_minute_buckets: int
    hourly_buckets: int
    raw_deleted: int
    five_minute_deleted: int
    hourly_deleted: int
    daily_buckets: int = 0
    daily_deleted: int = 0


def _bucket(connection: Connection, column: Any, size: int) -> ColumnElement[Any]:
    """The start of the `size`-second bucket holding `column` (a Unix time)."""
    if connection.dialect.name == "sqlite":
        # SQLite's floor() is an optional build feature; times are positive, so
        # truncation is floor
        return cast(cast(column / size, Integer) * size, MetricRollup.bucket.type)
    return func.floor(column / size) * size


def _watermark(connection: Connection, resolution: int) -> float | None:
    """The end of the newest bucket of a resolution: data before it is rolled up."""
    newest = connection.execute(
        select(func.max(MetricRollup.bucket)).where(MetricRollup.resolution == resolution)
    ).scalar()
    return None if newest is None else float(newest) + resolution


def compact(store: Store, now: float, retention: Retention | None = None) -> CompactResult:
    """Roll complete 5-minute buckets of raw samples into `metric_rollups`, complete
    hours of those into hourly buckets, then drop each resolution's rows older than its
    retention (never rows not yet rolled up). Idempotent; cheap when nothing is new.

    A sample that arrives for a bucket already rolled up stays in the raw table only."""
    keep = retention or Retention()
    with store.engine.begin() as connection:
        five = _roll_raw(connection, now)
        hourly = _roll_rollups(connection, now, FIVE_MINUTES, HOUR)
        daily = _roll_rollups(connection, now, HOUR, DAY)
        rolled_raw = _watermark(connection, FIVE_MINUTES)
        rolled_five = _watermark(connection, HOUR)
        raw_deleted = five_deleted = hourly_deleted = 0
        if rolled_raw is not None:
            cutoff = min(_floor(now - keep.raw, FIVE_MINUTES), rolled_raw)
            raw_deleted = connection.execute(delete(SAMPLES).where(SAMPLES.c.ts < cutoff)).rowcount
        if rolled_five is not None:
            cutoff = min(_floor(now - keep.five_minutes, HOUR), rolled_five)
            five_deleted = connection.execute(
                delete(ROLLUPS).where(
                    ROLLUPS.c.resolution == FIVE_MINUTES, ROLLUPS.c.bucket < cutoff
                )
            ).rowcount
        hourly_deleted = connection.execute(
            delete(ROLLUPS).where(
                ROLLUPS.c.resolution == HOUR, ROLLUPS.c.bucket < _floor(now - keep.hourly, HOUR)
            )
        ).rowcount
        # hours are dropped long before their days: a day's bucket outlives them
        daily_deleted = connection.execute(
            delete(ROLLUPS).where(
                ROLLUPS.c.resolution == DAY, ROLLUPS.c.bucket < _floor(now - keep.daily, DAY)
            )
        ).rowcount
    return CompactResult(
        five, hourly, raw_deleted, five_deleted, hourly_deleted, daily, daily_deleted
    )


def _floor(ts: float, size: int) -> float:
    return float(int(ts // size) * size)


_SERIES_COLUMNS = ("cloud", "region", "kind", "resource_id", "metric")


def _roll_raw(connection: Connection, now: float) -> int:
    start = _watermark(connection, FIVE_MINUTES)
    if start is None:
        oldest = connection.execute(select(func.min(SAMPLES.c.ts))).scalar()
        if oldest is None:
            return 0
        start = _floor(float(oldest), FIVE_MINUTES)
    end = _floor(now, FIVE_MINUTES)
    if end <= start:
        return 0
    bucket = _bucket(connection, SAMPLES.c.ts, FIVE_MINUTES)
    keys = [SAMPLES.c[name] for name in _SERIES_COLUMNS]
    query = (
        select(
            *keys,
            literal(FIVE_MINUTES),
            bucket,
            func.count(),
            func.sum(SAMPLES.c.value),
            func.min(SAMPLES.c.value),
            func.max(SAMPLES.c.value),
        )
        .where(
            SAMPLES.c.ts >= start,
            SAMPLES.c.ts < end,
            SAMPLES.c.metric.not_in(RAW_ONLY_METRICS),
        )
        .group_by(*keys, bucket)
    )
    return _insert_rollups(connection, query)


def _roll_rollups(connection: Connection, now: float, finer: int, coarser: int) -> int:
    """Roll the `finer` buckets of every series into `coarser` ones (5 minutes into hours,
    hours into days), for the periods whose every finer bucket could already be rolled.
    Daily buckets are sums of their hours, so a window reads the same from either; hours
    backfilled later into a day already rolled are added to its bucket by
    `store.usage.record_hourly`."""
    rolled = _watermark(connection, finer)
    if rolled is None:
        return 0
    start = _watermark(connection, coarser)
    if start is None:
        oldest = connection.execute(
            select(func.min(ROLLUPS.c.bucket)).where(ROLLUPS.c.resolution == finer)
        ).scalar()
        if oldest is None:
            return 0
        start = _floor(float(oldest), coarser)
    end = min(_floor(now, coarser), _floor(rolled, coarser))
    if end <= start:
        return 0
    bucket = _bucket(connection, ROLLUPS.c.bucket, coarser)
    keys = [ROLLUPS.c[name] for name in _SERIES_COLUMNS]
    query = (
        select(
            *keys,
            literal(coarser),
            bucket,
            func.sum(ROLLUPS.c.count),
            func.sum(ROLLUPS.c.total),
            func.min(ROLLUPS.c.minimum),
            func.max(ROLLUPS.c.maximum),
        )
        .where(
            ROLLUPS.c.resolution == finer,
            ROLLUPS.c.bucket >= start,
            ROLLUPS.c.bucket < end,
        )
        .group_by(*keys, bucket)
    )
    return _insert_rollups(connection, query)


def _insert_rollups(connection: Connection, query: Any) -> int:
    columns = [*_SERIES_COLUMNS, "resolution", "bucket", "count", "total", "minimum", "maximum"]
    statement = insert(ROLLUPS).from_select(columns, query)
    if connection.dialect.insert_returning:
        # psycopg reports no row count for INSERT ... SELECT
        return len(connection.execute(statement.returning(ROLLUPS.c.id)).all())
    return int(connection.execute(statement).rowcount or 0)


@dataclass(frozen=True)
class WindowPoint:
    """One point of a window: a raw sample (count 1) or a rollup bucket (`ts` is the
    bucket's start, `resolution` its size in seconds; 0 for raw)."""

    ts: float
    mean: float
    minimum: float
    maximum: float
    count: int
    resolution: int


def window(
    store: Store,
    kind: str,
    resource_id: str,
    metric: str,
    since: float,
    until: float | None = None,
) -> list[WindowPoint]:
    """One resource's metric from `since` to `until` (default: now), oldest first, at
    the finest resolution kept for each part of the range: raw where raw samples are
    still kept, then 5-minute, then hourly buckets."""
    with store.engine.connect() as connection:
        series_raw = (
            SAMPLES.c.kind == kind,
            SAMPLES.c.resource_id == resource_id,
            SAMPLES.c.metric == metric,
        )
        series_rolled = (
            ROLLUPS.c.kind == kind,
            ROLLUPS.c.resource_id == resource_id,
            ROLLUPS.c.metric == metric,
        )
        oldest_raw = connection.execute(select(func.min(SAMPLES.c.ts)).where(*series_raw)).scalar()
        oldest_five = connection.execute(
            select(func.min(ROLLUPS.c.bucket)).where(
                *series_rolled, ROLLUPS.c.resolution == FIVE_MINUTES
            )
        ).scalar()
        # raw from the start of the 5-minute bucket of its oldest sample (older ones were
        # deleted bucket by bucket), 5-minute buckets before that, hourly before those
        raw_from = _floor(float(oldest_raw), FIVE_MINUTES) if oldest_raw is not None else None
        five_from = _floor(float(oldest_five), HOUR) if oldest_five is not None else None
        end = until if until is not None else float("inf")
        points: list[WindowPoint] = []
        hourly_end = min(x for x in (five_from, raw_from, end) if x is not None)
        points += _rolled(connection, series_rolled, HOUR, since, hourly_end)
        if five_from is not None:
            five_end = min(x for x in (raw_from, end) if x is not None)
            points += _rolled(
                connection, series_rolled, FIVE_MINUTES, max(since, five_from), five_end
            )
        if raw_from is not None:
            query = select(SAMPLES.c.ts, SAMPLES.c.value).where(
                *series_raw, SAMPLES.c.ts >= max(since, raw_from)
            )
            if until is not None:
                query = query.where(SAMPLES.c.ts <= until)
            points += [
                WindowPoint(float(ts), float(v), float(v), float(v), 1, 0)
                for ts, v in connection.execute(query.order_by(SAMPLES.c.ts))
            ]
        return points


def _rolled(
    connection: Connection, series: tuple[Any, ...], resolution: int, start: float, end: float
) -> list[WindowPoint]:
    if end <= start:
        return []
    query = select(
        ROLLUPS.c.bucket, ROLLUPS.c.total, ROLLUPS.c.count, ROLLUPS.c.minimum, ROLLUPS.c.maximum
    ).where(*series, ROLLUPS.c.resolution == resolution, ROLLUPS.c.bucket >= start)
    if end != float("inf"):
        query = query.where(ROLLUPS.c.bucket < end)
    return [
        WindowPoint(float(b), float(total) / count, float(lo), float(hi), int(count), resolution)
        for b, total, count, lo, hi in connection.execute(query.order_by(ROLLUPS.c.bucket))
    ]


def resource_series(
    store: Store, kind: str, resource_id: str, since: float
) -> dict[str, list[tuple[float, float]]]:
    """Every metric of one resource since `since`: {metric: [(ts, value)]}, oldest
    first (raw samples; the dashboard's charts of one host)."""
    query = (
        select(MetricSample.metric, MetricSample.ts, MetricSample.value)
        .where(
            MetricSample.kind == kind,
            MetricSample.resource_id == resource_id,
            MetricSample.ts >= since,
        )
        .order_by(MetricSample.metric, MetricSample.ts)
    )
    result: dict[str, list[tuple[float, float]]] = {}
    with store.sessions() as session:
        for metric, ts, value in session.execute(query):
            result.setdefault(metric, []).append((float(ts), float(value)))
    return result
