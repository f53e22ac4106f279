"""Hardware readings and findings from StackFleet's simulated BMCs: what sushy-tools
cannot emulate (power draw, temperatures that change, PSU loss, frozen sensors, a BMC
that hangs or answers garbage), through the sweep, the store, the CLI and the API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from fastapi.testclient import TestClient
from support import run_cli

from stackfleet.api.app import create_app
from stackfleet.engine.hardware import hardware_report, resolve_targets, run_sweep
from stackfleet.model.hardware import BAD_RESPONSE, OK, TIMEOUT
from stackfleet.policy.loader import load_text, pack_path
from stackfleet.simulator.redfish import RedfishSimulator, SimulatedBmc
from stackfleet.sources.redfish import parse_bmc_map
from stackfleet.sources.redfish.bmc_map import BmcTarget
from stackfleet.store.metrics import latest, series

FLAVORS = {"legacy-1": "legacy", "current-1": "current", "oem-1": "oem"}


@pytest.fixture
def bmcs() -> Iterator[RedfishSimulator]:
    fleet = [
        SimulatedBmc(name, flavor=flavor, seed=i)
        for i, (name, flavor) in enumerate(FLAVORS.items())
    ]
    with RedfishSimulator(fleet) as simulator:
        yield simulator


def targets(sim: RedfishSimulator, names: list[str] | None = None) -> list[BmcTarget]:
    """BMC targets for the simulated BMCs (all, or those named), with credentials. Built
    here, not by the simulator: the simulator imports nothing of the product."""
    return [
        BmcTarget(
            name=name,
            address=sim.address(name),
            system_id=f"/redfish/v1/Systems/{sim.bmc(name).system_id}",
            username=sim.bmc(name).username,
            password=sim.bmc(name).password,
            source="Redfish simulator",
        )
        for name in (names if names is not None else list(sim.app.bmcs))
    ]


def findings_of(store, name: str, now: float | None = None, stale_after: str = "") -> list[str]:
    """The hardware pack's findings on one host (with `stale_after`: a copy of the pack
    with that stale-reading limit, as an operator tunes it)."""
    policies = None
    if stale_after:
        text = (
            pack_path("hardware")
            .read_text()
            .replace("older_than: 30m", f"older_than: {stale_after}")
        )
        policies = load_text(text)
    at = datetime.fromtimestamp(now, UTC) if now is not None else None
    report = hardware_report(store, policies, now=at)
    return [f.rule for status, findings in report if status.name == name for f in findings]


def test_power_draw_is_read_from_power_control_environment_metrics_and_oem_fields(bmcs, store):
    for name in FLAVORS:
        bmcs.bmc(name).set(power_watts=500)
    report = run_sweep(store, targets(bmcs))
    by_name = {s.name: s.reading for s in report.statuses}
    assert {n: r.power_source for n, r in by_name.items()} == {
        "legacy-1": "Power.PowerControl.PowerConsumedWatts",
        "current-1": "EnvironmentMetrics.PowerWatts",
        "oem-1": "Oem.Hpe.PowerSupplies.AveragePowerOutputWatts",
    }
    for reading in by_name.values():
        assert 480 <= reading.power_watts <= 520
        assert reading.psu_redundancy == "redundant"
        assert reading.inlet_celsius is not None
        assert len(reading.fans) == 4


def test_inlet_temperature_rising_past_35_degrees_becomes_a_finding(bmcs, store):
    run_sweep(store, targets(bmcs, ["current-1"]))
    assert "hardware/inlet-temperature-high" not in findings_of(store, "current-1")
    bmcs.bmc("current-1").set(inlet_celsius=38.5)
    run_sweep(store, targets(bmcs, ["current-1"]))
    [(status, findings)] = hardware_report(store)
    [finding] = [f for f in findings if f.rule == "hardware/inlet-temperature-high"]
    assert finding.severity == "warning"
    celsius = float(finding.message.split("inlet air ")[1].split(" °C")[0])
    assert 37.5 < celsius < 39.5
    assert "above 35 °C" in finding.message


def test_a_failed_power_supply_loses_redundancy(bmcs, store):
    for name in FLAVORS:
        bmcs.bmc(name).set(failed_psus=["PSU2"])
    report = run_sweep(store, targets(bmcs))
    for status in report.statuses:
        assert status.reading.psu_redundancy == "lost", status.name
        assert "hardware/psu-redundancy-lost" in findings_of(store, status.name)
    samples = latest(store, "hypervisor", ["hw_psu_redundant", "hw_psus_healthy"])
    assert {values["hw_psu_redundant"][1] for values in samples.values()} == {0.0}
    assert {values["hw_psus_healthy"][1] for values in samples.values()} == {1.0}


def test_power_above_the_budget_of_the_bmc_map_is_a_finding(bmcs, store):
    bmcs.bmc("legacy-1").set(power_watts=900)
    address = bmcs.address("legacy-1")
    system = targets(bmcs, ["legacy-1"])[0].system_id
    bmc_map = parse_bmc_map(
        f"""
credentials:
  sim: {{username: admin, password: redfish}}
bmcs:
  legacy-1: {{address: "{address}", system_id: "{system}", credentials: sim,
              power_budget_watts: 750}}
ironic: {{enabled: false}}
"""
    )
    run_sweep(store, resolve_targets(store, bmc_map))
    [(status, findings)] = hardware_report(store)
    [over] = [f for f in findings if f.rule == "hardware/power-over-budget"]
    watts = float(over.message.split("power draw ")[1].split(" W")[0])
    assert "budget of 750 W" in over.message and watts > 850


def test_frozen_sensors_on_a_running_host_become_a_stale_reading(bmcs, store):
    bmcs.bmc("legacy-1").set(frozen=True)
    chosen = targets(bmcs, ["legacy-1", "oem-1"])
    run_sweep(store, chosen)
    time.sleep(1.5)  # the live BMC's sensors move every second
    run_sweep(store, chosen)
    assert "hardware/stale-reading" in findings_of(store, "legacy-1", stale_after="1s")
    assert "hardware/stale-reading" not in findings_of(store, "oem-1", stale_after="1s")
    assert findings_of(store, "legacy-1") == []  # not yet past the default 30 minutes


def test_a_powered_off_host_with_still_sensors_is_not_stale(bmcs, store):
    bmcs.bmc("oem-1").set(frozen=True, power_state="Off")
    run_sweep(store, targets(bmcs, ["oem-1"]))
    time.sleep(1.2)
    run_sweep(store, targets(bmcs, ["oem-1"]))
    assert findings_of(store, "oem-1", stale_after="1s") == []


def test_an_unreachable_bmc_is_reported_as_such_never_as_zero_readings(bmcs, store):
    run_sweep(store, targets(bmcs, ["oem-1"]))
    bmcs.bmc("oem-1").set(unreachable=True)
    report = run_sweep(store, targets(bmcs, ["oem-1"]), timeout=1.0)
    [status] = report.statuses
    assert status.status == TIMEOUT
    assert "did not answer within 1 s" in status.error
    # the last good reading is kept for context, and no zero sample was written
    assert status.reading is not None and status.reading.power_watts > 100
    watts = [value for _ts, value in series(store, "hypervisor", "oem-1", "hw_power_watts")]
    assert len(watts) == 1 and watts[0] > 100
    assert [v for _ts, v in series(store, "hypervisor", "oem-1", "hw_up")] == [1.0, 0.0]
    assert findings_of(store, "oem-1") == ["hardware/bmc-unreachable"]
    assert "hardware/stale-reading" in findings_of(store, "oem-1", now=time.time() + 3600)


def test_a_bmc_answering_garbage_is_a_bad_response_and_the_others_still_read(bmcs, store):
    bmcs.bmc("current-1").set(garbage=True)
    report = run_sweep(store, targets(bmcs))
    statuses = {s.name: s for s in report.statuses}
    assert statuses["current-1"].status == BAD_RESPONSE
    assert (
        "not JSON" in statuses["current-1"].error or "not a Redfish" in statuses["current-1"].error
    )
    assert statuses["legacy-1"].status == OK
    assert statuses["oem-1"].status == OK


def test_control_route_changes_a_reading(bmcs):
    answer = requests.patch(
        f"{bmcs.control_url}/bmcs/legacy-1", json={"inlet_celsius": 41.0}, timeout=5
    )
    assert answer.status_code == 200
    assert bmcs.bmc("legacy-1").inlet_celsius == 41.0
    wrong = requests.patch(f"{bmcs.control_url}/bmcs/legacy-1", json={"colour": 1}, timeout=5)
    assert wrong.status_code == 400
    assert "unknown BMC setting" in wrong.json()["error"]


def test_api_and_prometheus_show_readings_and_findings(bmcs, store):
    bmcs.bmc("legacy-1").set(inlet_celsius=37.0)
    bmcs.bmc("oem-1").set(unreachable=True)
    run_sweep(store, targets(bmcs), timeout=1.0)
    client = TestClient(create_app(store))
    body = client.get("/v1/hardware").json()
    hosts = {h["name"]: h for h in body["hosts"]}
    assert hosts["legacy-1"]["status"] == "ok"
    assert [f["rule"] for f in hosts["legacy-1"]["findings"]] == ["hardware/inlet-temperature-high"]
    assert hosts["oem-1"]["status"] == "timeout"
    only = client.get("/v1/hardware", params={"finding": "inlet_temperature_high"}).json()
    assert [h["name"] for h in only["hosts"]] == ["legacy-1"]
    assert client.get("/v1/hardware/current-1").json()["power_watts"] > 100
    assert client.get("/v1/hardware/nope").status_code == 404
    metrics = client.get("/metrics").text
    assert 'stackfleet_bmc_up{cloud="",host="oem-1",kind="hypervisor",region=""} 0.0' in metrics
    assert 'stackfleet_bmc_up{cloud="",host="legacy-1",kind="hypervisor",region=""} 1.0' in metrics
    assert 'stackfleet_bmc_temperature_celsius{cloud="",context="Intake",host="legacy-1"' in metrics
    # an unreachable BMC publishes no reading gauges at all
    assert 'stackfleet_bmc_power_watts{cloud="",host="oem-1"' not in metrics
    assert (
        'stackfleet_hardware_findings{check="hardware/inlet-temperature-high",severity="warning"} '
        "1.0" in metrics
    )


def test_cli_sweep_and_list(bmcs, tmp_path):
    bmc_map = bmcs.write_bmc_map(tmp_path / "bmc-map.yaml")
    bmcs.bmc("current-1").set(failed_psus=["PSU1"])
    env = {"STACKFLEET_DB_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    swept = run_cli("hardware", "sweep", "--bmc-map", str(bmc_map), "-f", "json", env=env)
    assert swept.code == 0, swept.stderr
    assert {h["name"]: h["status"] for h in swept.json()} == dict.fromkeys(FLAVORS, "ok")
    assert "swept 3 BMCs" in swept.stderr
    listed = run_cli("hardware", "list", "--findings", "-f", "json", env=env)
    assert [h["name"] for h in listed.json()] == ["current-1"]
    assert "hardware/psu-redundancy-lost" in [f["rule"] for f in listed.json()[0]["findings"]]
    table = run_cli("hardware", "list", env=env)
    assert "hardware/psu-redundancy-lost" in table.stdout


def test_cli_list_dates_the_old_readings_of_a_bmc_that_stopped_answering(bmcs, tmp_path):
    bmc_map = bmcs.write_bmc_map(tmp_path / "bmc-map.yaml")
    env = {"STACKFLEET_DB_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    sweep = ("hardware", "sweep", "--bmc-map", str(bmc_map), "--timeout", "1", "-f", "json")
    assert run_cli(*sweep, env=env).code == 0
    bmcs.bmc("legacy-1").set(unreachable=True)
    run_cli(*sweep, env=env)  # exits non-zero: one BMC did not answer
    listed = run_cli("hardware", "list", "-f", "csv", env=env)
    assert listed.code == 0, listed.stderr
    lines = {line.split(",", 1)[0]: line for line in listed.stdout.splitlines()}
    assert "; readings " in lines["legacy-1"]
    assert "; readings " not in lines["current-1"]
