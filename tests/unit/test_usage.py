"""Usage readings in the store: rates from diagnostics counters, both diagnostics
formats read alike, and windows longer than the raw retention (rolled up or backfilled
history) seen by the metric filter the waste pack's idle rule uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from stackfleet.engine.usage import ATTEMPT_METRIC, COUNTERS, UsageSettings, diagnostics_rates
from stackfleet.policy import load_text
from stackfleet.policy.filters import compile_all
from stackfleet.policy.view import FleetView
from stackfleet.simulator.services.nova_diagnostics import diagnostics
from stackfleet.sources.openstack.diagnostics import Diagnostics, parse_diagnostics
from stackfleet.store.evaluation import metric_window
from stackfleet.store.metrics import HOUR, RAW_ONLY_METRICS, Sample, compact, record_samples
from stackfleet.store.schema import MetricRollup
from stackfleet.store.usage import HourlyPoint, backfill_limit, record_hourly

NOW = datetime.now(UTC).replace(microsecond=0)
IDLE_RULE = (
    "[{type: metric, metric: cpu_util, aggregate: mean, window: 14d, op: lt, value: 2, "
    "min_samples: 12}]"
)


def idle_by_rule(store: Any, ids: list[str]) -> list[str]:
    [policy] = load_text(
        f"policies:\n  - name: t\n    resource: server\n    filters: {IDLE_RULE}\n"
    )
    view = FleetView(store, NOW)
    records = [
        {"id": i, "name": i, "kind": "server", "cloud": "c", "region": "r", "project_id": "p"}
        for i in ids
    ]
    view.add_records("server", records)
    predicate = compile_all(policy.filters, view)
    return sorted(r["id"] for r in records if predicate(r))


def hourly(store: Any, rid: str, level: Any, hours: int) -> None:
    """One cpu_util sample an hour for `hours` hours up to now; `level(hours_ago)`."""
    now = NOW.timestamp()
    record_samples(
        store,
        [
            Sample("c", "r", "server", rid, "cpu_util", now - h * HOUR - 60, level(h))
            for h in range(hours)
        ],
    )


def test_cpu_percent_is_cpu_time_over_elapsed_time_and_vcpus() -> None:
    previous = {"cpu_time_seconds": (1000.0, 500.0), "net_rx_bytes": (1000.0, 0.0)}
    reading = Diagnostics("s", ts=1100.0, num_cpus=4, cpu_time_seconds=520.0, net_rx_bytes=5e4)
    rates, notes = diagnostics_rates(previous, reading, vcpus=None)
    assert rates == {"cpu_util": pytest.approx(5.0), "net_rx_bps": pytest.approx(500.0)}
    assert notes == []


def test_a_counter_that_went_down_gives_no_rate_rather_than_a_negative_one() -> None:
    previous = {"cpu_time_seconds": (1000.0, 500.0)}
    restarted = Diagnostics("s", ts=1100.0, num_cpus=2, cpu_time_seconds=3.0)
    rates, notes = diagnostics_rates(previous, restarted, vcpus=2)
    assert rates == {} and "went down" in notes[0]


def test_the_flavor_vcpus_stand_in_when_diagnostics_do_not_count_cpus() -> None:
    previous = {"cpu_time_seconds": (0.0, 0.0)}
    reading = Diagnostics("s", ts=100.0, cpu_time_seconds=50.0)
    assert diagnostics_rates(previous, reading, vcpus=2)[0]["cpu_util"] == pytest.approx(25.0)
    assert diagnostics_rates(previous, reading, vcpus=None)[0] == {}


def test_both_diagnostics_formats_give_the_same_counters() -> None:
    server = {
        "id": "6b8a0f0e-2b7c-4b7e-9a51-0d1c7f3c2a11",
        "flavor": {"vcpus": 2, "ram": 2048},
        "OS-SRV-USG:launched_at": "2025-06-01T12:00:00.000000",
        "addresses": {"net": [{"OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]},
    }
    at = datetime(2025, 6, 2, tzinfo=UTC).timestamp()
    standard = parse_diagnostics("s", diagnostics(server, False, at, standard=True), at)
    legacy = parse_diagnostics("s", diagnostics(server, False, at, standard=False), at)
    for field in ("cpu_time_seconds", "disk_read_bytes", "disk_write_bytes", "net_rx_bytes"):
        assert getattr(standard, field) == pytest.approx(getattr(legacy, field)), field
    assert standard.num_cpus == legacy.num_cpus == 2
    assert standard.memory_max_mb == legacy.memory_max_mb == 2048


def test_prometheus_source_needs_its_url() -> None:
    with pytest.raises(ValueError, match="needs a `prometheus:` section"):
        UsageSettings(source="prometheus")


def test_a_server_busy_for_days_is_not_idle_because_its_last_hours_were_quiet(store) -> None:
    # 14 days of hourly readings; raw samples are kept 6 hours, the rest only as rollups
    hourly(store, "quiet-lately", lambda h: 0.5 if h < 6 else 60.0, 14 * 24)
    hourly(store, "idle", lambda h: 0.5, 14 * 24)
    compact(store, NOW.timestamp())
    since = (NOW - timedelta(days=14)).timestamp()
    window = metric_window(store, "server", "cpu_util", since, "mean")
    assert window[("c", "r", "idle")][1] == 14 * 24  # every reading counted once
    assert window[("c", "r", "quiet-lately")][0] > 50
    assert idle_by_rule(store, ["quiet-lately", "idle"]) == ["idle"]


def test_backfilled_hours_answer_a_14_day_window_for_a_fresh_store(store) -> None:
    now = NOW.timestamp()
    limit = backfill_limit(store, now)
    assert limit == float(int(now // HOUR) * HOUR)
    points = [
        HourlyPoint("c", "r", "server", rid, "cpu_util", limit - h * HOUR, level)
        for rid, level in (("idle", 0.5), ("busy", 40.0))
        for h in range(1, 14 * 24)
    ]
    assert record_hourly(store, points, limit) == len(points)
    assert record_hourly(store, points, limit) == 0  # again: nothing new
    assert idle_by_rule(store, ["idle", "busy"]) == ["idle"]
    # the store's own readings come after the backfilled hours and add to them
    record_samples(store, [Sample("c", "r", "server", "idle", "cpu_util", now, 1.0)])
    since = (NOW - timedelta(days=14)).timestamp()
    assert metric_window(store, "server", "cpu_util", since, "count")[("c", "r", "idle")][0] == (
        len(points) // 2 + 1
    )


def test_diagnostics_counters_stay_raw_and_only_the_rates_are_rolled_up(store) -> None:
    hourly(store, "s", lambda h: 1.0, 12)
    now = NOW.timestamp()
    record_samples(
        store,
        [
            Sample("c", "r", "server", "s", name, now - h * HOUR - 60, 1e6 - h)
            for name in (*COUNTERS, ATTEMPT_METRIC)
            for h in range(12)
        ],
    )
    assert set(RAW_ONLY_METRICS) == {*COUNTERS, ATTEMPT_METRIC}
    compact(store, now)
    with store.engine.connect() as connection:
        rolled = {row[0] for row in connection.execute(select(MetricRollup.metric).distinct())}
    assert rolled == {"cpu_util"}
