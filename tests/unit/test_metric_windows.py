"""Fleet-wide metric windows (what the `metric` policy filter reads) against the
per-resource window, over raw samples, 5-minute, hourly and daily rollups and hours
backfilled from Prometheus."""

from __future__ import annotations

from typing import Any

import pytest

from stackfleet.store.evaluation import metric_window
from stackfleet.store.metrics import (
    DAY,
    FIVE_MINUTES,
    HOUR,
    Retention,
    Sample,
    compact,
    record_samples,
    window,
)
from stackfleet.store.schema import MetricRollup
from stackfleet.store.usage import HourlyPoint, backfill_limit, record_hourly

# 05:00 on a day boundary's day: windows start and end inside days
T0 = 1_700_000_000 - 1_700_000_000 % DAY + 5 * HOUR
NOW = T0 + 4 * DAY + 2 * HOUR + 17 * 60
SERVERS = ("steady", "late", "gappy")


def reading(rid: str, ts: float, metric: str = "cpu_util") -> Sample:
    # values that differ sample by sample, so a bucket counted twice or missed shows
    value = (int(ts) // 60 % 97) / 3 + (7 if rid == "late" else 0)
    return Sample("c1", "r1", "server", rid, metric, ts, value)


def fill(store: Any) -> None:
    """Four days of a reading every 5 minutes, compacted as the collection loop does
    (every hour), for a server there all along, one that appeared on day 2, and one
    with six hours missing on day 1 that a Prometheus backfill supplies later."""
    for hour_start in range(int(T0), int(NOW), HOUR):
        batch = []
        for ts in range(hour_start, min(hour_start + HOUR, int(NOW)), FIVE_MINUTES):
            batch.append(reading("steady", ts + 13))
            batch.append(reading("steady", ts + 13, "memory_util"))
            if ts >= T0 + 2 * DAY:
                batch.append(reading("late", ts + 29))
            if not T0 + DAY <= ts < T0 + DAY + 6 * HOUR:
                batch.append(reading("gappy", ts + 41))
        record_samples(store, batch)
        compact(store, hour_start + HOUR)
    compact(store, NOW)
    limit = backfill_limit(store, NOW)
    gap = [
        HourlyPoint("c1", "r1", "server", "gappy", "cpu_util", T0 + DAY + h * HOUR, 3.0 + h)
        for h in range(6)
    ]
    assert all(p.bucket < limit for p in gap)
    assert record_hourly(store, gap, limit) == 6


def per_resource(store: Any, rid: str, since: float) -> dict[str, float]:
    """The window of one resource point by point, reduced as the filter reduces it."""
    points = window(store, "server", rid, "cpu_util", since)
    count = sum(p.count for p in points)
    return {
        "mean": sum(p.mean * p.count for p in points) / count,
        "min": min(p.minimum for p in points),
        "max": max(p.maximum for p in points),
        "count": count,
    }


@pytest.mark.parametrize("since", [T0 - HOUR, T0 + 5555, T0 + 2 * DAY + 333, NOW - 3 * HOUR])
def test_the_fleet_window_equals_each_servers_own_window(any_store: Any, since: float) -> None:
    fill(any_store)
    with any_store.session() as session:
        days = session.query(MetricRollup).filter(MetricRollup.resolution == DAY).count()
    assert days > 0  # the window below reads daily buckets where whole days fit
    for aggregate in ("mean", "min", "max", "count"):
        fleet = metric_window(any_store, "server", "cpu_util", since, aggregate)
        assert set(fleet) == {("c1", "r1", rid) for rid in SERVERS}
        for rid in SERVERS:
            expected = per_resource(any_store, rid, since)
            value, count = fleet[("c1", "r1", rid)]
            assert count == expected["count"], (aggregate, rid)
            assert value == pytest.approx(expected[aggregate], rel=1e-9), (aggregate, rid)


def test_a_backfilled_hour_counts_in_the_day_already_rolled_up(store: Any) -> None:
    fill(store)
    since = T0 - HOUR
    gappy = metric_window(store, "server", "cpu_util", since, "count")[("c1", "r1", "gappy")]
    steady = metric_window(store, "server", "cpu_util", since, "count")[("c1", "r1", "steady")]
    # the six backfilled hours count one reading each, in place of 72 missing samples
    assert gappy[0] == steady[0] - 72 + 6
    low = metric_window(store, "server", "cpu_util", since, "min")[("c1", "r1", "gappy")]
    assert low[0] == 0.0
    high = metric_window(store, "server", "cpu_util", since, "max")[("c1", "r1", "gappy")]
    assert high[0] == pytest.approx(96 / 3)


def test_daily_buckets_outlive_the_hours_they_were_rolled_from(store: Any) -> None:
    fill(store)
    since = T0 - HOUR
    before = metric_window(store, "server", "cpu_util", since, "mean")
    result = compact(store, NOW, Retention(hourly=DAY))
    assert result.hourly_deleted > 0
    after = metric_window(store, "server", "cpu_util", since, "mean")
    # the days older than the hourly retention still count, whole days only: the hours
    # of the window's first, partial day are gone
    assert after[("c1", "r1", "late")] == before[("c1", "r1", "late")]
    assert after[("c1", "r1", "steady")][1] < before[("c1", "r1", "steady")][1]
    assert after[("c1", "r1", "steady")][1] >= 3 * 288


def test_only_days_whose_every_hour_is_rolled_up_become_daily_buckets(store: Any) -> None:
    day = T0 - 5 * HOUR  # a day boundary
    record_samples(store, [reading("steady", day + 60 * i) for i in range(0, 2 * 24 * 60, 5)])
    # the second day's last hour is not rolled up yet: only the first day is
    result = compact(store, now=day + 2 * DAY - 1)
    assert result.daily_buckets == 1
    assert compact(store, now=day + 2 * DAY + FIVE_MINUTES).daily_buckets == 1
    assert compact(store, now=day + 2 * DAY + FIVE_MINUTES).daily_buckets == 0
    with store.session() as session:
        days = session.query(MetricRollup).filter(MetricRollup.resolution == DAY).all()
    assert [(d.bucket, d.count) for d in days] == [(day, 288), (day + DAY, 288)]
