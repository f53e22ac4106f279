"""GET /v1/overview keeps its inventory part (hosts, server count) between requests,
and reads it again as soon as the inventory moves without a pass: a hypervisor an event
adds, or a history field (its status) an event changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from stackfleet.api.app import create_app
from stackfleet.store import open_store


def hypervisor(name: str, status: str = "up", vcpus_used: int = 8) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "host": name,
        "status": status,
        "state": status,
        "vcpu_used": vcpus_used,
        "vcpu_capacity": 32,
    }


def hosts(client: TestClient) -> dict[str, tuple[str, float]]:
    answer = client.get("/v1/overview", params={"hosts": "columns"})
    assert answer.status_code == 200, answer.text
    columns = answer.json()["host_columns"]
    return {
        host: (state, cpu)
        for host, state, cpu in zip(columns["host"], columns["state"], columns["cpu"], strict=True)
    }


def test_an_event_that_adds_or_changes_a_host_shows_at_once(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'fleet.db'}")
    store.upsert_resource("c1", "r1", "hypervisor", hypervisor("cmp1"))
    client = TestClient(create_app(store))
    assert hosts(client) == {"cmp1": ("up", 25.0)}
    # a new hypervisor (a new resource row)
    store.upsert_resource("c1", "r1", "hypervisor", hypervisor("cmp2", vcpus_used=16))
    assert hosts(client) == {"cmp1": ("up", 25.0), "cmp2": ("up", 50.0)}
    # a host going down (a recorded change of its status)
    store.upsert_resource("c1", "r1", "hypervisor", hypervisor("cmp1", status="down"))
    assert hosts(client)["cmp1"] == ("down", 25.0)


def test_the_records_form_still_answers_one_object_per_host(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'fleet.db'}")
    store.upsert_resource("c1", "r1", "hypervisor", hypervisor("cmp1"))
    body = TestClient(create_app(store)).get("/v1/overview").json()
    [host] = body["hosts"]
    assert host["host"] == "cmp1" and host["cpu"] == 25.0 and host["cpu_util"] is None
    assert body["host_columns"] is None
    bad = TestClient(create_app(store)).get("/v1/overview", params={"hosts": "rows"})
    assert bad.status_code == 400
