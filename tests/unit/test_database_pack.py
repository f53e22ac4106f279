"""Database servers are resources and their thresholds are a policy pack: the sweep
records each server (`database_server`), the policy engine runs the database pack over
the records, and its findings and alerts keep the names and labels operators route on.
A server that cannot be read keeps its other findings; findings resolve when a reading
no longer crosses the line."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from stackfleet.api.app import create_app
from stackfleet.engine.infra_monitor import judge, pack_policies, record_server
from stackfleet.engine.infra_packs import InfraPacks
from stackfleet.policy.loader import load_text
from stackfleet.sources.database import DatabaseReading, DatabaseTarget
from stackfleet.store import alerts as alert_store
from stackfleet.store.findings import list_findings

TARGET = DatabaseTarget("db1.example.org", 3306, name="db1", cloud="prod", region="r1")
HIGH = "database/connections-high"


def read(store, ratio: float) -> None:
    values = {"connections_used_ratio": ratio, "uptime_seconds": 86400.0}
    reading = DatabaseReading(TARGET, time.time(), "10.11", values, True, False)
    record_server(store, TARGET, reading.ts, reading=reading)


def unreachable(store) -> None:
    record_server(store, TARGET, time.time(), error="db1.example.org:3306: cannot connect")


def open_names(store) -> set[str]:
    return {f["policy"] for f in list_findings(store, status="open")[0]}


def test_the_pack_loads_and_names_its_policies_like_the_findings():
    names = {p.name for p in pack_policies("database")}
    assert {HIGH, "database/unreachable", "database/galera-not-ready"} <= names
    assert all(p.kind == "database_server" for p in pack_policies("database"))


def test_a_crossed_threshold_opens_a_finding_and_an_alert_with_its_labels(store):
    read(store, 0.93)
    InfraPacks(store).run_pack("database")
    [finding] = list_findings(store, status="open", policy=HIGH)[0]
    assert (finding["resource_id"], finding["resource_name"]) == ("db1.example.org:3306", "db1")
    [alert] = alert_store.list_alerts(store)
    assert alert["source"] == "database"
    assert alert["labels"] == {
        "alertname": HIGH,
        "severity": "warning",
        "pack": "database",
        "kind": "database_server",
        "resource_id": "db1.example.org:3306",
        "cloud": "prod",
        "region": "r1",
        "instance": "db1",
    }
    assert alert["annotations"]["summary"] == "db1: 93.0% of max_connections in use (> 80 %)"
    assert "max_pool_size" in alert["annotations"]["description"]


def test_the_summary_follows_the_reading_and_the_alert_stays_the_same(store):
    read(store, 0.85)
    InfraPacks(store).run_pack("database")
    read(store, 0.95)
    InfraPacks(store).run_pack("database")
    [alert] = alert_store.list_alerts(store)
    assert alert["annotations"]["summary"].startswith("db1: 95.0%")


def test_the_finding_resolves_when_a_reading_no_longer_crosses_the_line(store):
    read(store, 0.93)
    InfraPacks(store).run_pack("database")
    read(store, 0.10)
    InfraPacks(store).run_pack("database")
    assert open_names(store) == set()
    assert alert_store.list_alerts(store) == []


def test_an_unreachable_server_keeps_its_other_findings(store):
    read(store, 0.93)
    InfraPacks(store).run_pack("database")
    unreachable(store)
    InfraPacks(store).run_pack("database")
    # no reading is no evidence the connections were given back
    assert open_names(store) == {HIGH, "database/unreachable"}
    firing = {a["alertname"]: a for a in alert_store.list_alerts(store)}
    assert set(firing) == {HIGH, "database/unreachable"}
    assert firing["database/unreachable"]["labels"]["instance"] == "db1"
    assert "cannot connect" in firing["database/unreachable"]["annotations"]["summary"]
    # it answers again, with few connections in use: both resolve
    read(store, 0.10)
    InfraPacks(store).run_pack("database")
    assert open_names(store) == set()


def test_an_unreachable_server_opens_no_threshold_finding_from_its_old_reading(store):
    read(store, 0.10)
    unreachable(store)
    InfraPacks(store).run_pack("database")
    assert open_names(store) == {"database/unreachable"}


def test_an_operator_copy_of_a_policy_replaces_the_pack_one(store, tmp_path):
    copy = tmp_path / "database.yaml"
    copy.write_text(
        "policies:\n"
        f"  - name: {HIGH}\n"
        "    resource: database_server\n"
        "    labels: {pack: database}\n"
        "    filters:\n"
        "      - {type: value, key: metrics.connections_used_ratio, op: gt, value: 0.95}\n"
    )
    policies = pack_policies("database", [copy])
    assert [p.source for p in policies if p.name == HIGH] == [str(copy)]
    read(store, 0.93)
    InfraPacks(store, policies={"database": policies}).run_pack("database")
    assert open_names(store) == set()


def test_the_servers_are_listed_as_resources_with_their_reading(store):
    read(store, 0.5)
    body = TestClient(create_app(store)).get("/v1/resources", params={"kind": "database_server"})
    [item] = body.json()["items"]
    assert item["id"] == "db1.example.org:3306" and item["name"] == "db1"
    assert item["reachable"] is True and item["status"] == "up"
    assert item["metrics"]["connections_used_ratio"] == 0.5


def test_policy_names_may_carry_a_pack_prefix():
    [policy] = load_text("policies:\n  - name: database/x\n    resource: database_server\n", "<t>")
    assert policy.name == "database/x"


def test_a_condition_that_must_last_is_pending_first_and_no_finding(store):
    values = {"wsrep_ready": 0.0, "wsrep_local_state": 4.0, "galera": 1.0}
    reading = DatabaseReading(TARGET, time.time(), "10.11", values, True, True, "Joined")
    record_server(store, TARGET, reading.ts, reading=reading)
    verdicts = {
        v.rule: v
        for v in judge(store, pack_policies("database"), "database_server")[TARGET.resource_id]
    }
    not_ready = verdicts["database/galera-not-ready"]
    assert not_ready.state == "pending" and "(pending" in not_ready.message
    InfraPacks(store).run_pack("database")
    assert "database/galera-not-ready" not in open_names(store)
