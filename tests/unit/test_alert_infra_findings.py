"""Infrastructure findings in the findings table and as alerts: stable names, opened
and resolved only on evidence (a resource that was read), alerts with stable
fingerprints that follow them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stackfleet.alerts.model import fingerprint
from stackfleet.engine.infra_alerts import (
    InfraFinding,
    Judged,
    record,
    record_findings,
    rule_name,
)
from stackfleet.store import alerts as alert_store
from stackfleet.store.findings import list_findings

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def hot(host: str, severity: str = "warning", celsius: float = 37.0) -> InfraFinding:
    return InfraFinding(
        name="hardware/inlet-temperature-high",
        pack="hardware",
        severity=severity,
        cloud="prod",
        region="r1",
        kind="hypervisor",
        resource_id=f"id-{host}",
        resource_name=host,
        summary=f"{host}: inlet air {celsius:g} °C is above 35 °C",
        advice="check the cooling",
        labels={
            "pack": "hardware",
            "kind": "hypervisor",
            "resource_id": f"id-{host}",
            "cloud": "prod",
            "region": "r1",
            "host": host,
        },
    )


def unreachable(host: str) -> InfraFinding:
    item = hot(host)
    item.name, item.summary = "hardware/bmc-unreachable", f"{host}: BMC did not answer"
    return item


def read(host: str, failed: bool = False) -> Judged:
    return Judged("prod", "r1", f"id-{host}", availability_only=failed)


def open_names(store) -> set[tuple[str, str]]:
    rows, _total = list_findings(store, status="open")
    return {(r["policy"], r["resource_name"]) for r in rows}


def test_names_are_the_pack_and_the_rule_without_its_prefix():
    assert rule_name("hardware", "inlet_temperature_high") == "hardware/inlet-temperature-high"
    assert rule_name("database", "db_connections_high") == "database/connections-high"
    assert rule_name("database", "galera_not_ready") == "database/galera-not-ready"
    assert rule_name("rabbitmq", "mq_queue_no_consumer") == "rabbitmq/queue-no-consumer"


def test_a_finding_opens_once_and_resolves_when_a_read_no_longer_sees_it(store):
    first = record_findings(store, "hardware", [hot("cmp1")], [read("cmp1")], T0)
    again = record_findings(store, "hardware", [hot("cmp1")], [read("cmp1")], T0)
    assert (first.opened, again.opened, again.still_open) == (1, 0, 1)
    [row] = list_findings(store, status="open")[0]
    assert row["details"]["summary"] == "cmp1: inlet air 37 °C is above 35 °C"
    assert row["details"]["advice"] == "check the cooling"
    done = record_findings(store, "hardware", [], [read("cmp1")], T0 + timedelta(minutes=1))
    assert done.resolved == 1 and open_names(store) == set()


def test_a_host_that_could_not_be_read_keeps_its_findings(store):
    record_findings(store, "hardware", [hot("cmp1")], [read("cmp1")], T0)
    record_findings(store, "hardware", [unreachable("cmp1")], [read("cmp1", failed=True)], T0)
    assert open_names(store) == {
        ("hardware/inlet-temperature-high", "cmp1"),
        ("hardware/bmc-unreachable", "cmp1"),
    }
    # it answers again, cooled down: both resolve
    record_findings(store, "hardware", [], [read("cmp1")], T0)
    assert open_names(store) == set()


def test_hosts_a_sweep_did_not_read_keep_their_findings(store):
    record_findings(store, "hardware", [hot("cmp1"), hot("cmp2")], [read("cmp1"), read("cmp2")], T0)
    record_findings(store, "hardware", [], [read("cmp2")], T0)
    assert open_names(store) == {("hardware/inlet-temperature-high", "cmp1")}


def test_a_broker_read_judges_its_queues_and_a_vhost_read_only_that_vhost(store):
    def queue(vhost: str, name: str) -> InfraFinding:
        rid = f"mq1:15672/{vhost}/{name}"
        return InfraFinding(
            "rabbitmq/queue-no-consumer",
            "rabbitmq",
            "warning",
            "",
            "",
            "queue",
            rid,
            name,
            f"queue {name} has no consumer",
            "",
            {"pack": "rabbitmq", "kind": "queue", "resource_id": rid, "queue": name},
        )

    broker = Judged("", "", "mq1:15672", subtree=True)
    record_findings(store, "rabbitmq", [queue("a", "q1"), queue("b", "q2")], [broker], T0)
    # a sweep of vhost a only: q2 in vhost b is not judged
    record_findings(store, "rabbitmq", [], [Judged("", "", "mq1:15672/a", subtree=True)], T0)
    assert open_names(store) == {("rabbitmq/queue-no-consumer", "q2")}
    record_findings(store, "rabbitmq", [], [broker], T0)
    assert open_names(store) == set()


def test_alerts_follow_the_findings_with_stable_fingerprints(store):
    record(store, "hardware", [hot("cmp1", celsius=36.2)], [read("cmp1")], T0)
    record(
        store, "hardware", [hot("cmp1", celsius=36.9)], [read("cmp1")], T0 + timedelta(minutes=1)
    )
    [alert] = alert_store.list_alerts(store)
    assert alert["source"] == "hardware"
    assert alert["labels"] == {
        "alertname": "hardware/inlet-temperature-high",
        "severity": "warning",
        "pack": "hardware",
        "kind": "hypervisor",
        "resource_id": "id-cmp1",
        "cloud": "prod",
        "region": "r1",
        "host": "cmp1",
    }
    assert alert["fingerprint"] == fingerprint(alert["labels"])
    # the reading moved on: the annotation follows, the alert stays the same one
    assert alert["annotations"]["summary"] == "cmp1: inlet air 36.9 °C is above 35 °C"
    assert alert["annotations"]["description"] == "check the cooling"
    record(store, "hardware", [], [read("cmp1")], T0 + timedelta(minutes=2))
    assert alert_store.list_alerts(store) == []
    [resolved] = alert_store.list_alerts(store, status="resolved")
    assert resolved["id"] == alert["id"]


def test_a_severity_change_resolves_one_alert_and_fires_another(store):
    record(store, "hardware", [hot("cmp1")], [read("cmp1")], T0)
    changes = record(store, "hardware", [hot("cmp1", "critical", 41)], [read("cmp1")], T0).alerts
    assert changes is not None and (changes.fired, changes.resolved) == (1, 1)
    [alert] = alert_store.list_alerts(store)
    assert alert["severity"] == "critical"


def test_recording_one_pack_leaves_the_alerts_of_the_others(store):
    record(store, "hardware", [hot("cmp1")], [read("cmp1")], T0)
    record(store, "database", [], [Judged("", "", "db1:3306")], T0)
    assert [a["alertname"] for a in alert_store.list_alerts(store)] == [
        "hardware/inlet-temperature-high"
    ]
