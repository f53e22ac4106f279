"""Hardware findings in the findings table and as alerts, now that the thresholds are the
hardware policy pack: stable names, opened once and resolved only on evidence (a host
that was read), alerts with stable fingerprints that follow them, and packs that leave
each other's alerts alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stackfleet.alerts.model import fingerprint
from stackfleet.engine.hardware import record_hardware, retire_hardware
from stackfleet.engine.infra_packs import InfraPacks
from stackfleet.model.hardware import OK, BmcReading, BmcStatus, TemperatureReading
from stackfleet.sources.redfish.bmc_map import BmcTarget
from stackfleet.store import alerts as alert_store
from stackfleet.store.findings import list_findings

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
INLET = "hardware/inlet-temperature-high"


def host(name: str, celsius: float = 37.0, state: str = OK) -> BmcStatus:
    at = T0.timestamp()
    return BmcStatus(
        name=name,
        cloud="prod",
        region="r1",
        kind="hypervisor",
        resource_id=f"id-{name}",
        address=f"https://bmc-{name}",
        system_id=None,
        source="map",
        status=state,
        error=None if state == OK else "no answer",
        checked_at=at,
        ok_at=at,
        changed_at=at,
        reading=BmcReading(temperatures=[TemperatureReading("Inlet", celsius, "Intake")]),
    )


def sweep(store, statuses: list[BmcStatus], at: datetime = T0) -> InfraPacks:
    record_hardware(store, statuses, at.timestamp())
    packs = InfraPacks(store)
    packs.run_pack("hardware", at)
    return packs


def open_names(store) -> set[tuple[str, str]]:
    rows, _total = list_findings(store, status="open")
    return {(r["policy"], r["resource_name"]) for r in rows}


def test_a_finding_opens_once_and_resolves_when_a_read_no_longer_sees_it(store):
    sweep(store, [host("cmp1")])
    sweep(store, [host("cmp1")], T0 + timedelta(minutes=1))
    [row] = list_findings(store, status="open")[0]
    assert row["details"]["summary"] == "cmp1: inlet air 37 °C is above 35 °C"
    sweep(store, [host("cmp1", 22.0)], T0 + timedelta(minutes=2))
    assert open_names(store) == set()
    assert list_findings(store, status="resolved")[1] == 1


def test_hosts_a_sweep_did_not_read_keep_their_findings(store):
    sweep(store, [host("cmp1"), host("cmp2")])
    # a scale-out worker's sweep of its own share: cmp1 is not read, its record stays
    sweep(store, [host("cmp2", 22.0)])
    assert open_names(store) == {(INLET, "cmp1")}


def test_hosts_taken_out_of_the_bmc_map_resolve_their_findings(store):
    sweep(store, [host("cmp1"), host("cmp2")])
    still = BmcTarget(
        name="cmp2",
        address="https://bmc-cmp2",
        cloud="prod",
        region="r1",
        kind="hypervisor",
        resource_id="id-cmp2",
    )
    assert retire_hardware(store, [still]) == 1
    sweep(store, [host("cmp2")])
    assert open_names(store) == {(INLET, "cmp2")}


def test_alerts_follow_the_findings_with_stable_fingerprints(store):
    sweep(store, [host("cmp1", 36.2)])
    sweep(store, [host("cmp1", 36.9)], T0 + timedelta(minutes=1))
    [alert] = alert_store.list_alerts(store)
    assert alert["source"] == "hardware"
    assert alert["labels"] == {
        "alertname": INLET,
        "severity": "warning",
        "pack": "hardware",
        "kind": "bmc",
        "resource_id": "id-cmp1",
        "cloud": "prod",
        "region": "r1",
        "host": "cmp1",
        "host_kind": "hypervisor",
    }
    assert alert["fingerprint"] == fingerprint(alert["labels"])
    # the reading moved on: the annotation follows, the alert stays the same one
    assert alert["annotations"]["summary"] == "cmp1: inlet air 36.9 °C is above 35 °C"
    assert "cooling" in alert["annotations"]["description"]
    sweep(store, [host("cmp1", 22.0)], T0 + timedelta(minutes=2))
    assert alert_store.list_alerts(store) == []
    [resolved] = alert_store.list_alerts(store, status="resolved")
    assert resolved["id"] == alert["id"]


def test_running_one_pack_leaves_the_alerts_of_the_others(store):
    packs = sweep(store, [host("cmp1")])
    packs.run_pack("database", T0)
    packs.run_pack("rabbitmq", T0)
    assert [a["alertname"] for a in alert_store.list_alerts(store)] == [INLET]
