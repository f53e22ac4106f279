"""Hardware checks: thresholds as data, findings a user acts on."""

from __future__ import annotations

import pytest

from stackfleet.core.errors import ConfigError
from stackfleet.engine.hardware import load_thresholds
from stackfleet.model.hardware import (
    AUTH_FAILED,
    OK,
    BmcReading,
    BmcStatus,
    PsuReading,
    TemperatureReading,
    Thresholds,
    evaluate,
    sample_values,
)

NOW = 1_800_000_000.0


def status(reading: BmcReading | None, state: str = OK, **extra) -> BmcStatus:
    return BmcStatus(
        name="cmp1",
        cloud="c",
        region="r",
        kind="hypervisor",
        resource_id="h1",
        address="https://bmc",
        system_id=None,
        source="test",
        status=state,
        checked_at=NOW,
        ok_at=NOW if state == OK else None,
        changed_at=NOW,
        reading=reading,
        **extra,
    )


def checks(s: BmcStatus, **limits) -> list[str]:
    return [f.check for f in evaluate(s, Thresholds(**limits), NOW)]


def test_a_healthy_host_has_no_findings():
    reading = BmcReading(
        power_state="On",
        health="OK",
        power_watts=300,
        temperatures=[TemperatureReading("Inlet", 24, "Intake")],
    )
    assert checks(status(reading)) == []


def test_inlet_threshold_is_configurable():
    reading = BmcReading(temperatures=[TemperatureReading("Inlet", 33, "Intake")])
    assert checks(status(reading)) == []
    assert checks(status(reading), inlet_max_celsius=30) == ["inlet_temperature_high"]


def test_a_sensor_at_its_own_critical_threshold_is_critical():
    reading = BmcReading(temperatures=[TemperatureReading("CPU1", 96, "CPU", upper_critical=95)])
    [finding] = evaluate(status(reading), Thresholds(), NOW)
    assert (finding.check, finding.severity) == ("temperature_critical", "critical")


def test_power_budget_comes_from_the_map_then_thresholds_then_the_bmc_limit():
    reading = BmcReading(power_watts=700, power_limit_watts=650)
    assert checks(status(reading)) == ["power_over_budget"]
    assert checks(status(reading), power_budget_watts=800) == []
    assert checks(status(reading, power_budget_watts=600), power_budget_watts=800) == [
        "power_over_budget"
    ]


def test_failed_reads_do_not_judge_old_readings_again():
    old = BmcReading(temperatures=[TemperatureReading("Inlet", 40, "Intake")])
    s = status(old, AUTH_FAILED, error="bad password")
    assert checks(s) == ["bmc_credentials"]


def test_no_answer_for_longer_than_stale_after_is_stale():
    s = status(BmcReading(power_state="On"), "timeout", error="no answer")
    s.ok_at = NOW - 4000
    assert checks(s) == ["bmc_unreachable", "stale_reading"]


def test_single_supply_hosts_have_no_redundancy_to_lose_but_an_unhealthy_one_shows():
    reading = BmcReading(psus=[PsuReading("PSU1", "Warning", "Enabled")], psu_redundancy="single")
    assert checks(status(reading)) == ["psu_unhealthy"]


def test_samples_leave_out_what_the_bmc_did_not_say():
    assert sample_values(None) == {"hw_up": 0.0}
    values = sample_values(BmcReading(power_state="Off", health="OK"))
    assert values == {"hw_up": 1.0, "hw_power_on": 0.0, "hw_health": 0.0}


def test_thresholds_file_errors_name_the_key(tmp_path):
    good = tmp_path / "t.yaml"
    good.write_text("hardware:\n  inlet_max_celsius: 30\n  stale_after_seconds: 600\n")
    assert load_thresholds(good) == Thresholds(inlet_max_celsius=30, stale_after_seconds=600)
    bad = tmp_path / "bad.yaml"
    bad.write_text("hardware:\n  inlet_max: 30\n")
    with pytest.raises(ConfigError, match="unknown key 'inlet_max'"):
        load_thresholds(bad)
    bad.write_text("hardware:\n  inlet_max_celsius: hot\n")
    with pytest.raises(ConfigError, match="inlet_max_celsius: expected a number"):
        load_thresholds(bad)
