"""Metric samples in the store: writing readings and reading windows of them.

A sample is (resource, metric, time, value). Sources (Redfish, databases, RabbitMQ,
Prometheus, Nova diagnostics) write them; policies read windows of them; /metrics
exports the newest values. Retention and rollups live here too as they come.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, select

from stackfleet.store.db import Store
from stackfleet.store.schema import MetricSample

SAMPLES: Table = MetricSample.__table__  # type: ignore[assignment]


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
    """Store readings in one executemany; returns how many."""
    rows = [s.__dict__ for s in samples]
    if rows:
        with store.sessions.begin() as session:
            session.execute(insert(SAMPLES), rows)
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
