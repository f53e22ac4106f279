"""The simulator's list caches: pages stay right when the state changes behind them.

Proposed as tests/unit/test_simulator_listcache.py (the simulator-performance task may
not add files outside src/stackfleet/simulator/).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stackfleet.simulator.generator import FleetConfig
from stackfleet.simulator.http import json_response
from stackfleet.simulator.listcache import EncodedObjects, OrderCache
from stackfleet.simulator.server import SimulatorServer
from stackfleet.simulator.state import RegionState

SMALL = FleetConfig(
    projects=2, hypervisors=4, servers=12, floating_ips=4, volumes=6, images=4, baremetal_nodes=2
)


# -- the caches on their own -------------------------------------------------------------


def _by_name(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objects, key=lambda o: o["name"])


def test_order_is_reused_while_objects_and_sort_fields_are_unchanged() -> None:
    cache = OrderCache()
    objects = [{"id": "a", "name": "b"}, {"id": "b", "name": "a"}]
    calls: list[int] = []

    def sort(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        calls.append(1)
        return _by_name(items)

    first = cache.order("k", objects, ["name"], sort)
    again = cache.order("k", list(objects), ["name"], sort)

    assert again is first and len(calls) == 1
    assert [o["id"] for o in first.items] == ["b", "a"]
    assert first.position("a") == 1


def test_order_follows_an_in_place_edit_of_a_sort_field() -> None:
    cache = OrderCache()
    objects = [{"id": "a", "name": "b"}, {"id": "b", "name": "a"}]
    cache.order("k", objects, ["name"], _by_name)

    objects[0]["name"] = "0"

    assert [o["id"] for o in cache.order("k", objects, ["name"], _by_name).items] == ["a", "b"]


def test_order_follows_added_removed_and_replaced_objects() -> None:
    cache = OrderCache()
    objects = [{"id": "a", "name": "b"}, {"id": "b", "name": "a"}]
    cache.order("k", objects, ["name"], _by_name)

    grown = [*objects, {"id": "c", "name": "0"}]
    assert [o["id"] for o in cache.order("k", grown, ["name"], _by_name).items] == ["c", "b", "a"]
    replaced = [objects[0], {"id": "b", "name": "z"}]
    assert [o["id"] for o in cache.order("k", replaced, ["name"], _by_name).items] == ["a", "b"]


def test_encoded_objects_match_plain_encoding_and_follow_nested_edits() -> None:
    cache = EncodedObjects()
    objects = [{"id": "a", "tags": ["x"]}, {"id": "b", "tags": []}]

    def encoded() -> bytes:
        body = {"items": cache.encode("view", objects, dict, population=2), "n": 2}
        return bytes(json_response(body).body)

    assert encoded() == json.dumps({"items": objects, "n": 2}, separators=(",", ":")).encode()
    objects[0]["tags"].append("y")
    assert json.loads(encoded())["items"][0]["tags"] == ["x", "y"]


def test_encoded_objects_follow_their_render_context() -> None:
    cache = EncodedObjects()
    status = {"a": "UP"}
    obj = {"id": "a"}

    def encode() -> Any:
        fragments = cache.encode(
            "view", [obj], lambda o: {**o, "status": status[o["id"]]}, lambda o: status[o["id"]]
        )
        return json.loads(b"[" + b",".join(fragments.fragments) + b"]")

    assert encode() == [{"id": "a", "status": "UP"}]
    status["a"] = "DOWN"
    assert encode() == [{"id": "a", "status": "DOWN"}]


# -- through the simulated APIs -------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SMALL) as running:
        yield running


@pytest.fixture(scope="module")
def region(server: SimulatorServer) -> RegionState:
    return server.state.regions["RegionOne"]


@pytest.fixture(scope="module")
def token(server: SimulatorServer) -> str:
    entry = server.cloud_entry()
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": "admin", "domain": {"name": "Default"}, "password": entry.password}
            },
        },
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
    }
    response = httpx.post(f"{entry.auth_url}/v3/auth/tokens", json={"auth": auth})
    return response.headers["X-Subject-Token"]


def _get(server: SimulatorServer, token: str, path: str, **headers: str) -> Any:
    response = httpx.get(
        f"{server.base_url}/RegionOne{path}", headers={"X-Auth-Token": token, **headers}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_port_list_shows_a_nested_field_edited_directly_in_the_state(
    server: SimulatorServer, region: RegionState, token: str
) -> None:
    _get(server, token, "/networking/v2.0/ports?limit=100")  # served once: cached
    port = next(p for p in region.ports.values() if p["fixed_ips"])
    port["fixed_ips"][0]["ip_address"] = "192.0.2.99"

    ports = _get(server, token, "/networking/v2.0/ports?limit=100")["ports"]

    assert next(p for p in ports if p["id"] == port["id"])["fixed_ips"][0]["ip_address"] == (
        "192.0.2.99"
    )


def test_port_deleted_directly_leaves_the_list_and_its_pages(
    server: SimulatorServer, region: RegionState, token: str
) -> None:
    first = _get(server, token, "/networking/v2.0/ports?limit=3")
    removed = first["ports"][1]["id"]
    del region.ports[removed]

    seen: list[str] = []
    url = "/networking/v2.0/ports?limit=3"
    while url:
        body = _get(server, token, url)
        seen += [p["id"] for p in body["ports"]]
        nxt = [lnk["href"] for lnk in body["ports_links"] if lnk["rel"] == "next"]
        url = nxt[0].split("/RegionOne", 1)[1] if nxt and body["ports"] else ""
    assert removed not in seen
    assert sorted(seen) == sorted(region.ports)


def test_sorting_by_status_follows_a_status_edited_in_place(
    server: SimulatorServer, region: RegionState, token: str
) -> None:
    path = "/networking/v2.0/ports?sort_key=status&sort_dir=asc&sort_key=id&sort_dir=asc"
    _get(server, token, path)
    port = next(iter(region.ports.values()))
    port["status"] = "AAA-FIRST"

    assert _get(server, token, path)["ports"][0]["id"] == port["id"]


def test_server_list_follows_the_host_status_of_a_compute_service(
    server: SimulatorServer, region: RegionState, token: str
) -> None:
    nova = {"OpenStack-API-Version": "compute 2.90"}
    path = "/compute/v2.1/servers/detail?all_tenants=True"
    listed = _get(server, token, path, **nova)["servers"]
    host = next(s["OS-EXT-SRV-ATTR:host"] for s in listed if s["host_status"] == "UP")
    service = next(
        s
        for s in region.compute_services.values()
        if s["host"] == host and s["binary"] == "nova-compute"
    )
    service["state"] = "down"

    after = _get(server, token, path, **nova)["servers"]

    assert {s["host_status"] for s in after if s["OS-EXT-SRV-ATTR:host"] == host} == {"UNKNOWN"}
