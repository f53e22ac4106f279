"""Hardware thresholds are the hardware policy pack: a sweep records each host's BMC and
its sensors as resources (`bmc`, `temperature_sensor`, `fan`) and the one policy engine
runs the pack over them. Severities follow the reading; a host whose BMC cannot be read
keeps its other findings; operators tune a threshold with a copy of the pack."""

from __future__ import annotations

from datetime import UTC, datetime

from stackfleet.engine.hardware import hardware_policies, hardware_report, record_hardware
from stackfleet.engine.infra_packs import InfraPacks
from stackfleet.model.hardware import (
    AUTH_FAILED,
    OK,
    BmcReading,
    BmcStatus,
    FanReading,
    PsuReading,
    TemperatureReading,
    sample_values,
)
from stackfleet.policy.loader import pack_path
from stackfleet.store import alerts as alert_store
from stackfleet.store.findings import list_findings

NOW = 1_800_000_000.0


def status(reading: BmcReading | None, state: str = OK, **extra) -> BmcStatus:
    values = {
        "name": "cmp1",
        "cloud": "c",
        "region": "r",
        "kind": "hypervisor",
        "resource_id": "h1",
        "address": "https://bmc",
        "system_id": None,
        "source": "test",
        "status": state,
        "checked_at": NOW,
        "ok_at": NOW if state == OK else None,
        "changed_at": NOW,
        "reading": reading,
        **extra,
    }
    return BmcStatus(**values)


def findings(store, s: BmcStatus, policies=None, at: float = NOW) -> dict[str, str]:
    """Record the status as a sweep does, run the pack: open findings -> severity."""
    record_hardware(store, [s], at)
    packs = InfraPacks(store, policies={"hardware": policies} if policies else {})
    packs.run_pack("hardware", datetime.fromtimestamp(at, UTC))
    return {f["policy"]: f["severity"] for f in list_findings(store, status="open")[0]}


def test_the_pack_declares_its_policies_over_the_hardware_kinds():
    kinds = {p.kind for p in hardware_policies()}
    assert kinds == {"bmc", "temperature_sensor", "fan"}


def test_a_healthy_host_has_no_findings(store):
    reading = BmcReading(
        power_state="On",
        health="OK",
        power_watts=300,
        temperatures=[TemperatureReading("Inlet", 24, "Intake")],
    )
    assert findings(store, status(reading)) == {}


def test_inlet_air_is_a_warning_above_35_and_critical_above_40(store):
    hot = BmcReading(temperatures=[TemperatureReading("Inlet", 37, "Intake")])
    assert findings(store, status(hot)) == {"hardware/inlet-temperature-high": "warning"}
    hotter = BmcReading(temperatures=[TemperatureReading("Inlet", 41, "Intake")])
    assert findings(store, status(hotter)) == {"hardware/inlet-temperature-high": "critical"}
    cool = BmcReading(temperatures=[TemperatureReading("Inlet", 22, "Intake")])
    assert findings(store, status(cool)) == {}


def test_an_operator_tunes_the_inlet_threshold_with_a_copy_of_the_pack(store, tmp_path):
    copy = tmp_path / "hardware.yaml"
    copy.write_text(
        pack_path("hardware")
        .read_text()
        .replace("key: inlet_celsius, op: gt, value: 35}", "key: inlet_celsius, op: gt, value: 30}")
    )
    reading = BmcReading(temperatures=[TemperatureReading("Inlet", 33, "Intake")])
    assert findings(store, status(reading)) == {}
    tuned = hardware_policies([copy])
    assert findings(store, status(reading), tuned) == {"hardware/inlet-temperature-high": "warning"}


def test_a_sensor_is_judged_against_its_own_thresholds(store):
    def cpu(celsius: float) -> BmcStatus:
        sensor = TemperatureReading("CPU1", celsius, "CPU", upper_noncritical=85, upper_critical=95)
        return status(BmcReading(temperatures=[sensor]))

    assert findings(store, status(BmcReading(temperatures=[]))) == {}
    assert findings(store, cpu(80)) == {}
    assert findings(store, cpu(88)) == {"hardware/temperature-high": "warning"}
    assert findings(store, cpu(96)) == {"hardware/temperature-high": "critical"}
    [finding] = list_findings(store, status="open")[0]
    assert finding["resource_id"] == "h1/CPU1" and finding["kind"] == "temperature_sensor"
    assert finding["details"]["summary"] == (
        "cmp1: CPU1 at 96 °C is above the BMC's threshold (non-critical 85 °C, critical 95 °C)"
    )


def test_a_sensor_without_thresholds_is_never_judged_hot(store):
    reading = BmcReading(temperatures=[TemperatureReading("DIMM", 99, "Memory")])
    assert findings(store, status(reading)) == {}


def test_a_severity_change_resolves_one_alert_and_fires_another(store):
    def cpu(celsius: float) -> BmcStatus:
        sensor = TemperatureReading("CPU1", celsius, "CPU", upper_noncritical=85, upper_critical=95)
        return status(BmcReading(temperatures=[sensor]))

    findings(store, cpu(88))
    [warning] = alert_store.list_alerts(store)
    findings(store, cpu(97))
    [critical] = alert_store.list_alerts(store)
    assert (warning["severity"], critical["severity"]) == ("warning", "critical")
    assert critical["labels"]["sensor"] == "CPU1" and critical["labels"]["host"] == "cmp1"
    assert [a["id"] for a in alert_store.list_alerts(store, status="resolved")] == [warning["id"]]


def test_a_failed_fan_is_a_finding(store):
    fans = [FanReading("Fan1", rpm=9000, health="OK"), FanReading("Fan2", rpm=0, health="Critical")]
    assert findings(store, status(BmcReading(fans=fans))) == {"hardware/fan-failed": "critical"}
    slow = [FanReading("Fan1", rpm=900, health="OK", lower_critical=1000)]
    assert findings(store, status(BmcReading(fans=slow))) == {"hardware/fan-failed": "critical"}


def test_power_budget_comes_from_the_map_then_the_bmc_limit(store):
    reading = BmcReading(power_watts=700, power_limit_watts=650)
    assert findings(store, status(reading)) == {"hardware/power-over-budget": "warning"}
    assert findings(store, status(reading, power_budget_watts=800)) == {}


def test_failed_reads_do_not_judge_old_readings_again(store):
    old = BmcReading(temperatures=[TemperatureReading("Inlet", 40, "Intake")])
    s = status(old, AUTH_FAILED, error="bad password")
    assert findings(store, s) == {"hardware/bmc-credentials": "warning"}


def test_a_host_that_cannot_be_read_keeps_its_findings_until_it_is_read_again(store):
    hot = BmcReading(temperatures=[TemperatureReading("Inlet", 38, "Intake")])
    findings(store, status(hot))
    gone = status(hot, "timeout", error="no answer")
    assert findings(store, gone) == {
        "hardware/inlet-temperature-high": "warning",
        "hardware/bmc-unreachable": "warning",
    }
    cool = BmcReading(temperatures=[TemperatureReading("Inlet", 22, "Intake")])
    assert findings(store, status(cool)) == {}


def test_no_answer_for_longer_than_half_an_hour_is_stale(store):
    s = status(BmcReading(power_state="On"), "timeout", error="no answer", ok_at=NOW - 4000)
    assert findings(store, s) == {
        "hardware/bmc-unreachable": "warning",
        "hardware/stale-reading": "warning",
    }
    [stale] = list_findings(store, status="open", policy="hardware/stale-reading")[0]
    assert stale["details"]["summary"] == "cmp1: no reading for 67 min (BMC timeout)"


def test_readings_frozen_on_a_running_host_are_stale_but_not_on_a_powered_off_one(store):
    frozen = status(BmcReading(power_state="On"), changed_at=NOW - 4000)
    assert findings(store, frozen) == {"hardware/stale-reading": "warning"}
    off = status(BmcReading(power_state="Off"), changed_at=NOW - 4000)
    assert findings(store, off) == {}


def test_single_supply_hosts_have_no_redundancy_to_lose_but_an_unhealthy_one_shows(store):
    reading = BmcReading(psus=[PsuReading("PSU1", "Warning", "Enabled")], psu_redundancy="single")
    assert findings(store, status(reading)) == {"hardware/psu-unhealthy": "warning"}
    lost = BmcReading(
        psus=[PsuReading("PSU1", "OK", "Enabled"), PsuReading("PSU2", "Critical", "Enabled")],
        psu_redundancy="lost",
    )
    assert findings(store, status(lost)) == {"hardware/psu-redundancy-lost": "critical"}


def test_health_severity_follows_the_bmc(store):
    assert findings(store, status(BmcReading(health="Warning"))) == {
        "hardware/health-degraded": "warning"
    }
    assert findings(store, status(BmcReading(health="Critical"))) == {
        "hardware/health-degraded": "critical"
    }


def test_the_status_report_shows_findings_without_recording_them(store):
    sensor = TemperatureReading("CPU1", 96, "CPU", upper_critical=95)
    record_hardware(store, [status(BmcReading(temperatures=[sensor]))], NOW)
    from stackfleet.store.hardware import save_statuses

    save_statuses(store, [status(BmcReading(temperatures=[sensor]))])
    [(host, verdicts)] = hardware_report(store)
    assert host.name == "cmp1"
    assert [(v.rule, v.severity) for v in verdicts] == [("hardware/temperature-high", "critical")]
    assert list_findings(store)[1] == 0


def test_samples_leave_out_what_the_bmc_did_not_say():
    assert sample_values(None) == {"hw_up": 0.0}
    values = sample_values(BmcReading(power_state="Off", health="OK"))
    assert values == {"hw_up": 1.0, "hw_power_on": 0.0, "hw_health": 0.0}
