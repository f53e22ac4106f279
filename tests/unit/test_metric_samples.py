"""Metric samples: written in bulk, read back as windows and newest values."""

from __future__ import annotations

from stackfleet.store.metrics import Sample, latest, record_samples, series


def sample(rid: str, metric: str, ts: float, value: float) -> Sample:
    return Sample("c1", "r1", "hypervisor", rid, metric, ts, value)


def test_series_is_ordered_and_windowed(any_store):
    record_samples(any_store, [sample("h1", "power_watts", t, t * 10) for t in (3, 1, 2)])
    assert series(any_store, "hypervisor", "h1", "power_watts") == [
        (1.0, 10.0),
        (2.0, 20.0),
        (3.0, 30.0),
    ]
    assert series(any_store, "hypervisor", "h1", "power_watts", since=2) == [
        (2.0, 20.0),
        (3.0, 30.0),
    ]


def test_latest_gives_the_newest_value_per_resource_and_metric(any_store):
    record_samples(
        any_store,
        [
            sample("h1", "inlet_temp_c", 1, 20),
            sample("h1", "inlet_temp_c", 5, 38),
            sample("h2", "inlet_temp_c", 2, 22),
            sample("h1", "power_watts", 4, 300),
        ],
    )
    newest = latest(any_store, "hypervisor")
    assert newest[("c1", "r1", "h1")]["inlet_temp_c"] == (5.0, 38.0)
    assert newest[("c1", "r1", "h2")]["inlet_temp_c"] == (2.0, 22.0)
    assert latest(any_store, "hypervisor", ["power_watts"]) == {
        ("c1", "r1", "h1"): {"power_watts": (4.0, 300.0)}
    }
