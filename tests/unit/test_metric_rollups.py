"""Metric rollups and retention: raw -> 5 minutes -> 1 hour, and windows over them."""

from __future__ import annotations

from stackfleet.store.metrics import (
    FIVE_MINUTES,
    HOUR,
    Retention,
    Sample,
    compact,
    record_samples,
    series,
    window,
)

T0 = 1_700_000_000 - 1_700_000_000 % HOUR  # an hour boundary


def watts(ts: float, value: float, rid: str = "h1") -> Sample:
    return Sample("c1", "r1", "hypervisor", rid, "power_watts", ts, value)


def test_compact_folds_complete_five_minute_buckets_with_count_sum_min_max(any_store):
    # one sample a minute for 12 minutes: two complete buckets and one in progress
    record_samples(any_store, [watts(T0 + 60 * i, 100 + i) for i in range(12)])
    result = compact(any_store, now=T0 + 12 * 60)
    assert result.five_minute_buckets == 2
    points = window(any_store, "hypervisor", "h1", "power_watts", since=T0)
    # raw samples are still kept (retention 6 h), so the window is raw
    assert [p.resolution for p in points] == [0] * 12
    compact(any_store, now=T0 + 7 * HOUR, retention=Retention(raw=HOUR))
    rolled = window(any_store, "hypervisor", "h1", "power_watts", since=T0)
    assert [(p.ts, p.count, p.minimum, p.maximum) for p in rolled[:2]] == [
        (T0, 5, 100, 104),
        (T0 + FIVE_MINUTES, 5, 105, 109),
    ]
    assert rolled[0].mean == 102
    assert rolled[0].resolution == FIVE_MINUTES


def test_an_unfinished_bucket_is_not_rolled_up(any_store):
    record_samples(any_store, [watts(T0 + 10, 1), watts(T0 + 20, 2)])
    assert compact(any_store, now=T0 + 299).five_minute_buckets == 0
    assert compact(any_store, now=T0 + 300).five_minute_buckets == 1


def test_hours_roll_up_from_five_minute_buckets_and_old_raw_rows_go(any_store):
    record_samples(any_store, [watts(T0 + 60 * i, i % 7) for i in range(180)])  # 3 hours
    result = compact(any_store, now=T0 + 10 * HOUR, retention=Retention(raw=HOUR))
    assert result.five_minute_buckets == 36
    assert result.hourly_buckets == 3
    assert result.raw_deleted == 180
    assert series(any_store, "hypervisor", "h1", "power_watts") == []
    # 5-minute buckets are still kept (2 days), so the window uses them
    assert {p.resolution for p in window(any_store, "hypervisor", "h1", "power_watts", T0)} == {
        FIVE_MINUTES
    }
    compact(any_store, now=T0 + 3 * 24 * HOUR)
    hourly = window(any_store, "hypervisor", "h1", "power_watts", T0)
    assert [(p.ts, p.count, p.resolution) for p in hourly] == [
        (T0, 60, HOUR),
        (T0 + HOUR, 60, HOUR),
        (T0 + 2 * HOUR, 60, HOUR),
    ]
    assert sum(p.mean * p.count for p in hourly) == sum(i % 7 for i in range(180))


def test_compact_twice_writes_each_bucket_once(any_store):
    record_samples(any_store, [watts(T0 + 60 * i, 1.0) for i in range(30)])
    first = compact(any_store, now=T0 + HOUR)
    again = compact(any_store, now=T0 + HOUR)
    assert first.five_minute_buckets == 6
    assert again.five_minute_buckets == 0


def test_window_stitches_hourly_history_with_recent_raw_samples(any_store):
    old = [watts(T0 + 60 * i, 5.0) for i in range(120)]
    record_samples(any_store, old)
    now = T0 + 4 * 24 * HOUR
    compact(any_store, now=now)
    recent = [watts(now - 60 * i, 9.0) for i in range(3)]
    record_samples(any_store, recent)
    points = window(any_store, "hypervisor", "h1", "power_watts", since=T0)
    assert [p.resolution for p in points] == [HOUR, HOUR, 0, 0, 0]
    assert points[-1].mean == 9.0


def test_retention_drops_hourly_buckets_past_their_age(any_store):
    record_samples(any_store, [watts(T0 + 60 * i, 1.0) for i in range(60)])
    compact(any_store, now=T0 + 3 * 24 * HOUR)
    assert window(any_store, "hypervisor", "h1", "power_watts", T0)
    result = compact(any_store, now=T0 + 40 * 24 * HOUR)
    assert result.hourly_deleted == 1
    assert window(any_store, "hypervisor", "h1", "power_watts", T0) == []


def test_the_collection_loop_rolls_up_every_sources_samples(any_store):
    import time

    from sqlalchemy import func, select

    from stackfleet.engine.loop import CollectionLoop
    from stackfleet.store.schema import MetricRollup

    start = time.time() - time.time() % HOUR - 2 * HOUR
    samples = [
        Sample("", "", "database_server", "db1", "threads_running", start + 60 * i, i)
        for i in range(10)
    ]
    record_samples(any_store, samples)

    def rollups() -> int:
        with any_store.sessions() as session:
            return session.scalar(
                select(func.count())
                .select_from(MetricRollup)
                .where(MetricRollup.kind == "database_server", MetricRollup.resource_id == "db1")
            )

    assert rollups() == 0
    CollectionLoop(any_store, clouds=[]).run_once()
    assert rollups() >= 2  # two complete 5-minute buckets (and their hour)
