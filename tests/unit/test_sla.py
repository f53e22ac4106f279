"""Availability from recorded state changes (stackfleet.model.sla): down time, incidents
with their causes, unknown time left unmeasured, the error budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stackfleet.model.sla import Change, availability

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_down_time_between_changes_is_an_incident_with_its_cause() -> None:
    report = availability(
        "web",
        Change(at(-10), "healthy"),
        [
            Change(at(30), "down", "1 of 2 healthy: web-1 (host-down cmp1)"),
            Change(at(36), "healthy"),
        ],
        at(0),
        at(100),
        99.0,
    )
    assert report.down_seconds == 360
    assert report.achieved == pytest.approx(94.0)
    assert report.met is False
    [incident] = report.incidents
    assert (incident.start, incident.end, incident.seconds) == (at(30), at(36), 360)
    assert "host-down cmp1" in incident.cause
    # budget: 1 % of 100 minutes = 60 s, 360 s used
    assert report.budget_seconds == pytest.approx(60)
    assert report.budget_left_seconds == pytest.approx(-300)
    assert report.budget_left_percent == pytest.approx(-500)


def test_unknown_time_and_time_before_the_first_state_are_not_measured() -> None:
    report = availability(
        "web",
        None,
        [Change(at(50), "healthy"), Change(at(60), "unknown"), Change(at(70), "degraded")],
        at(0),
        at(100),
        99.9,
    )
    assert report.measured_seconds == 40 * 60
    assert report.achieved == 100.0 and report.met is True
    assert report.budget_left_percent == 100.0


def test_a_workload_still_down_has_an_ongoing_incident_from_the_window_start() -> None:
    report = availability("web", Change(at(-5), "down", "0 of 2"), [], at(0), at(10), None)
    [incident] = report.incidents
    assert incident.start == at(0) and incident.end is None and incident.seconds == 600
    assert report.achieved == 0.0
    assert report.met is None and report.budget_seconds is None


def test_nothing_recorded_is_no_data_not_full_availability() -> None:
    report = availability("web", None, [], at(0), at(10), 99.9)
    assert report.achieved is None and report.met is None
