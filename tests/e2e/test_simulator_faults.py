"""Fault injection and request counting on a running simulator, seen from clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from stackfleet.simulator.faults import parse_fault_spec
from stackfleet.simulator.server import SimulatorServer

PORTS = "/RegionOne/networking/v2.0/ports"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer() as running:
        yield running


@pytest.fixture(scope="module")
def token(server: SimulatorServer) -> str:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": "secret"}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    response = requests.post(f"{server.auth_url}/v3/auth/tokens", json=body, timeout=10)
    return str(response.headers["X-Subject-Token"])


@pytest.fixture(autouse=True)
def no_faults(server: SimulatorServer) -> Iterator[None]:
    requests.delete(f"{server.base_url}/_sim/faults", timeout=10)
    yield
    requests.delete(f"{server.base_url}/_sim/faults", timeout=10)


def _get(server: SimulatorServer, token: str, path: str) -> requests.Response:
    return requests.get(f"{server.base_url}{path}", headers={"X-Auth-Token": token}, timeout=30)


def _set_faults(server: SimulatorServer, *rules: dict[str, Any]) -> list[dict[str, Any]]:
    response = requests.put(
        f"{server.base_url}/_sim/faults", json={"faults": list(rules)}, timeout=10
    )
    assert response.status_code == 200, response.text
    return list(response.json()["faults"])


def test_latency_delays_only_the_matching_calls(server: SimulatorServer, token: str) -> None:
    _set_faults(server, {"method": "GET", "path": r"/v2\.0/networks$", "latency_ms": 400})
    started = time.perf_counter()
    assert _get(server, token, "/RegionOne/networking/v2.0/networks").status_code == 200
    slow = time.perf_counter() - started
    started = time.perf_counter()
    assert _get(server, token, PORTS).status_code == 200
    fast = time.perf_counter() - started
    assert slow >= 0.4
    assert fast < 0.3


def test_fail_always_answers_with_novas_error_body(server: SimulatorServer, token: str) -> None:
    _set_faults(server, {"path": "/servers/detail", "fail_always": True, "error_status": 503})
    for _ in range(3):
        response = _get(server, token, "/RegionOne/compute/v2.1/servers/detail")
        assert response.status_code == 503
        assert response.json()["serviceUnavailable"]["code"] == 503
    assert _get(server, token, "/RegionOne/compute/v2.1/os-hypervisors/detail").ok


@pytest.mark.parametrize(
    ("path", "check"),
    [
        ("/identity/v3/projects", lambda r: r.json()["error"]["code"] == 500),
        ("/RegionOne/compute/v2.1/flavors/detail", lambda r: "computeFault" in r.json()),
        (PORTS, lambda r: r.json()["NeutronError"]["type"] == "HTTPInternalServerError"),
        (
            "/RegionOne/placement/resource_providers",
            lambda r: r.json()["errors"][0]["status"] == 500,
        ),
        ("/RegionOne/baremetal/v1/nodes", lambda r: "faultstring" in r.json()["error_message"]),
        ("/RegionOne/image/v2/images", lambda r: "<h1>500 Internal Server Error</h1>" in r.text),
    ],
)
def test_injected_errors_have_each_services_own_shape(
    server: SimulatorServer, token: str, path: str, check: Any
) -> None:
    _set_faults(
        server, {"path": path.split("?")[0] + "$", "fail_always": True, "error_status": 500}
    )
    response = _get(server, token, path)
    assert response.status_code == 500
    assert check(response)


def test_error_rate_fails_some_calls_and_not_others(server: SimulatorServer, token: str) -> None:
    _set_faults(server, {"path": r"/v2\.0/ports$", "error_rate": 0.5})
    statuses = [_get(server, token, PORTS).status_code for _ in range(40)]
    failures = statuses.count(503)
    assert 5 < failures < 35
    assert set(statuses) == {200, 503}


def test_times_limits_a_fault_to_the_first_calls(server: SimulatorServer, token: str) -> None:
    _set_faults(server, {"path": r"/v2\.0/ports$", "fail_always": True, "times": 2})
    statuses = [_get(server, token, PORTS).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert requests.get(f"{server.base_url}/_sim/faults", timeout=10).json() == {"faults": []}


def test_drop_next_link_makes_a_page_look_like_the_last(
    server: SimulatorServer, token: str
) -> None:
    normal = _get(server, token, f"{PORTS}?limit=5").json()
    assert any(link["rel"] == "next" for link in normal["ports_links"])
    _set_faults(server, {"path": r"/v2\.0/ports$", "drop_next_link": True})
    truncated = _get(server, token, f"{PORTS}?limit=5").json()
    assert [p["id"] for p in truncated["ports"]] == [p["id"] for p in normal["ports"]]
    assert not any(link["rel"] == "next" for link in truncated.get("ports_links", []))


def test_max_items_cuts_a_page(server: SimulatorServer, token: str) -> None:
    _set_faults(server, {"path": "/v3/projects$", "max_items": 2})
    response = _get(server, token, "/identity/v3/projects")
    assert response.status_code == 200
    assert len(response.json()["projects"]) == 2
    assert int(response.headers["content-length"]) == len(response.content)


def test_faults_are_managed_at_runtime(server: SimulatorServer) -> None:
    url = f"{server.base_url}/_sim/faults"
    created = requests.post(url, json={"fault": {"path": "/images", "latency_ms": 5}}, timeout=10)
    assert created.status_code == 201
    rule_id = created.json()["fault"]["id"]
    assert [r["id"] for r in requests.get(url, timeout=10).json()["faults"]] == [rule_id]
    assert requests.delete(f"{url}/{rule_id}", timeout=10).status_code == 204
    assert requests.get(url, timeout=10).json()["faults"] == []
    assert requests.delete(f"{url}/{rule_id}", timeout=10).status_code == 404


def test_an_invalid_rule_is_refused_with_the_reason(server: SimulatorServer) -> None:
    response = requests.put(
        f"{server.base_url}/_sim/faults",
        json={"faults": [{"path": "(unclosed", "fail_always": True}]},
        timeout=10,
    )
    assert response.status_code == 400
    assert "invalid path pattern" in response.json()["error"]["message"]


def test_requests_are_counted_per_route_template(server: SimulatorServer, token: str) -> None:
    counts_url = f"{server.base_url}/_sim/requests"
    assert requests.delete(counts_url, timeout=10).status_code == 204
    for _ in range(3):
        _get(server, token, PORTS)
    first, second = list(server.state.regions["RegionOne"].servers)[:2]
    _get(server, token, f"/RegionOne/compute/v2.1/servers/{first}")
    _get(server, token, f"/RegionOne/compute/v2.1/servers/{second}")
    counts = requests.get(counts_url, timeout=10).json()
    assert counts["requests"][f"GET {PORTS}"] == 3
    server_keys = [
        k for k in counts["requests"] if k.startswith("GET /RegionOne/compute/v2.1/servers/")
    ]
    assert len(server_keys) == 1 and counts["requests"][server_keys[0]] == 2
    assert first not in server_keys[0]
    assert counts["total"] == 5


def test_faults_given_at_start_apply_from_the_first_call() -> None:
    rule = parse_fault_spec("GET /v2.0/ports$;fail_always;error_status=500")
    with SimulatorServer(faults=[rule]) as running:
        listing = requests.get(f"{running.base_url}{PORTS}", timeout=10)
        assert listing.status_code == 500


def test_fault_spec_parses_method_pattern_and_options() -> None:
    rule = parse_fault_spec("get /servers/detail;error_rate=0.25;latency_ms=100;drop_next_link")
    assert (rule.method, rule.path, rule.error_rate, rule.latency_ms, rule.drop_next_link) == (
        "GET",
        "/servers/detail",
        0.25,
        100.0,
        True,
    )
    assert parse_fault_spec("/v2/images;max_items=3").method == "*"


def test_fault_spec_errors_name_the_spec() -> None:
    with pytest.raises(ValueError, match="error_rate=2"):
        parse_fault_spec("/servers;error_rate=2")
