"""Incidents (issue 11 §5): a dead compute host pages once, with the alerts it explains
(its nova-compute, its servers) listed on that page and inhibited on their own — in the
webhook payload, `stackfleet alerts incidents` and `GET /v1/incidents` — on the
simulated cloud with a failed host; and the same grouping from the store's relations for
an L3 agent's routers and a Cinder back end's volumes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from health_rig import CLOUD, REGION, Rig, running_rig, stackfleet
from sinks import Capture

from stackfleet.alerts import operations
from stackfleet.alerts.dispatch import dispatch
from stackfleet.alerts.lifecycle import ingest
from stackfleet.alerts.routing import Receiver
from stackfleet.api.app import create_app
from stackfleet.core.delivery import NotifySettings
from stackfleet.engine.policies import PolicyRunner
from stackfleet.policy.loader import load_files, load_text
from stackfleet.simulator.hosts import HEARTBEAT
from stackfleet.store import alerts as alert_store

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from running_rig(tmp_path)


@pytest.fixture
def capture() -> Iterator[Capture]:
    sink = Capture()
    yield sink
    sink.close()


def _receiver(capture: Capture) -> Receiver:
    return Receiver(
        name="ops",
        type="webhook",
        url=capture.url,
        group_by=["alertname"],
        group_wait="0s",
        group_interval="1s",
    )


def test_a_dead_host_pages_once_naming_its_servers(
    rig: Rig, capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HEARTBEAT, "service_down_time", 3.0)  # Nova's "down", sooner
    victim = rig.healthy_hosts()[0]
    on_victim = set(rig.servers_on(victim))
    assert on_victim, "the preset puts servers on every healthy host"
    rig.server.sim.hosts.fail(REGION, victim, "host")
    deadline = time.monotonic() + 30
    while True:  # until Nova itself reports the host down, as the health pack reads it
        rig.collect()
        [hypervisor] = rig.store.list_resources("hypervisor", {"host": victim})[0]
        if hypervisor["state"] == "down":
            break
        assert time.monotonic() < deadline, "Nova never reported the host down"
        time.sleep(0.5)
    # the per-server alert a tenant-facing pack would raise (any policy on servers is
    # grouped: the relation, not the alert's name, decides)
    servers_policy = load_text(
        "policies:\n"
        "  - name: test/server-on-host\n"
        "    resource: server\n"
        "    severity: warning\n"
        f"    filters: [{{host: {victim}}}]\n",
        "servers.yaml",
    )
    health = [p for p in load_files(["pack:health"]) if p.name.endswith("-down")]
    PolicyRunner(rig.store).run([*health, *servers_policy])
    firing = alert_store.list_alerts(rig.store, "firing", None)
    # the preset has hosts down of its own: the victim's alerts are on its records
    service_id = rig.store.list_resources(
        "compute_service", {"host": victim, "binary": "nova-compute"}
    )[0][0]["id"]
    mine = {hypervisor["id"], service_id}
    by_name = {a["alertname"]: a for a in firing if a["labels"]["resource_id"] in mine}
    assert {"health/host-down", "health/compute-service-down"} <= set(by_name)
    server_alerts = [a for a in firing if a["alertname"] == "test/server-on-host"]
    assert {a["labels"]["resource_id"] for a in server_alerts} == on_victim

    dispatch(rig.store, [_receiver(capture)], NotifySettings())
    # one page: the host's; the others are its consequences, not notified on their own
    assert [body["groupLabels"]["alertname"] for _, body in capture.posts] == ["health/host-down"]
    [(_, body)] = capture.posts
    [page] = [a for a in body["alerts"] if a["labels"]["resource_id"] == hypervisor["id"]]
    note = page["annotations"]["incident"]
    assert f"compute host {victim} is down" in note
    assert f"explains {len(on_victim) + 1} other alert(s)" in note

    cause_id = by_name["health/host-down"]["id"]
    stated = {a["id"]: a for a in operations.with_state(rig.store, firing, datetime.now(UTC))}
    assert stated[cause_id]["state"] == "firing"
    assert sorted(stated[cause_id]["consequences"]) == sorted(
        [by_name["health/compute-service-down"]["id"], *(a["id"] for a in server_alerts)]
    )
    for alert in server_alerts:
        assert stated[alert["id"]]["state"] == f"inhibited (by #{cause_id})"
        assert stated[alert["id"]]["caused_by"] == cause_id

    env = rig.cli_env()
    listed = stackfleet("alerts", "incidents", "-f", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    [row] = [r for r in json.loads(listed.stdout) if r["cause_id"] == cause_id]
    assert row["cause_id"] == cause_id and row["count"] == len(on_victim) + 1

    api = TestClient(create_app(rig.store))
    incidents = api.get("/v1/incidents").json()["items"]
    [incident] = [i for i in incidents if i["cause"]["id"] == cause_id]
    assert {c["labels"]["resource_id"] for c in incident["consequences"]} >= on_victim
    items = api.get("/v1/alerts").json()["items"]
    assert {i["id"]: i["caused_by"] for i in items}[server_alerts[0]["id"]] == cause_id


def _record(store, kind: str, record: dict) -> None:
    store.upsert_resource(CLOUD, REGION, kind, {"name": record["id"], **record})


def _alert(name: str, kind: str, resource_id: str) -> dict:
    labels = {"alertname": name, "severity": "warning", "cloud": CLOUD, "region": REGION}
    return {"labels": {**labels, "kind": kind, "resource_id": resource_id}}


def test_an_l3_agent_and_a_cinder_back_end_explain_their_routers_and_volumes(tmp_path):
    """From the store's relations alone (records as a pass stores them), no cloud."""
    from stackfleet.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'incidents.db'}")
    _record(store, "network_agent", {
        "id": "l3-a", "agent_type": "L3 agent", "binary": "neutron-l3-agent", "host": "net1",
        "alive": False, "hosted_router_ids": ["r1", "r2"],
    })  # fmt: skip
    _record(store, "router", {"id": "r1"})
    _record(store, "router", {"id": "r2"})
    _record(store, "router", {"id": "r3"})
    _record(store, "block_storage_service", {
        "id": "cinder-volume@st1@lvm", "binary": "cinder-volume", "host": "st1@lvm",
        "state": "down",
    })  # fmt: skip
    _record(store, "volume", {"id": "v1", "backend_host": "st1@lvm#pool0"})
    _record(store, "volume", {"id": "v2", "backend_host": "st1@lvmx#pool0"})  # another
    ingest(
        store,
        [
            _alert("agent-down", "network_agent", "l3-a"),
            _alert("router-ha-degraded", "router", "r1"),
            _alert("router-ha-degraded", "router", "r3"),  # not on that agent
            _alert("backend-down", "block_storage_service", "cinder-volume@st1@lvm"),
            _alert("volume-unavailable", "volume", "v1"),
            _alert("volume-unavailable", "volume", "v2"),
        ],
        "api",
        datetime.now(UTC),
    )
    found = {i["reason"]: i for i in operations.incidents(store)}
    assert set(found) == {"L3 agent net1 is down", "Cinder back end st1@lvm is down"}
    routers = found["L3 agent net1 is down"]["consequences"]
    assert [c["labels"]["resource_id"] for c in routers] == ["r1"]
    volumes = found["Cinder back end st1@lvm is down"]["consequences"]
    assert [c["labels"]["resource_id"] for c in volumes] == ["v1"]
