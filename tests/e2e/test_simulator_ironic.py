"""The simulator's Ironic, through openstacksdk and raw HTTP.

The ``openstack baremetal`` commands need python-ironicclient, which is not installed,
so there is no CLI test here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openstack
import pytest

from stackfleet.simulator.generator import FleetConfig
from stackfleet.simulator.server import SimulatorServer
from stackfleet.simulator.state import RegionState

SMALL = FleetConfig(
    projects=2, hypervisors=4, servers=8, floating_ips=4, volumes=4, images=4, baremetal_nodes=10
)
LATEST = {"X-OpenStack-Ironic-API-Version": "1.96"}


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SMALL) as running:
        yield running


@pytest.fixture(scope="module")
def conn(server: SimulatorServer) -> openstack.connection.Connection:
    """A system-scoped admin: Ironic lists every node only to system scope."""
    return openstack.connect(**server.connect_kwargs(system_scope=True))


@pytest.fixture(scope="module")
def region(server: SimulatorServer) -> RegionState:
    return server.state.regions["RegionOne"]


@pytest.fixture(scope="module")
def http(server: SimulatorServer, conn: openstack.connection.Connection) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{server.base_url}/RegionOne/baremetal",
        headers={"X-Auth-Token": conn.auth_token, "Accept": "application/json"},
    ) as client:
        yield client


def fault(response: httpx.Response) -> dict[str, Any]:
    """Ironic's error: a JSON document inside the error_message string."""
    parsed: dict[str, Any] = json.loads(response.json()["error_message"])
    return parsed


def node_where(region: RegionState, **wanted: Any) -> dict[str, Any]:
    return next(n for n in region.nodes.values() if all(n.get(k) == v for k, v in wanted.items()))


# -- reading ---------------------------------------------------------------------------


def test_sdk_paging_yields_every_node_exactly_once(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    ids = [node.id for node in conn.baremetal.nodes(details=True, limit=3)]

    assert len(ids) == len(set(ids))
    assert set(ids) == set(region.nodes)


def test_next_is_an_absolute_url_with_limit_and_marker(
    server: SimulatorServer, http: httpx.Client
) -> None:
    page = http.get("/v1/nodes/detail", params={"limit": 3}, headers=LATEST).json()

    marker = page["nodes"][-1]["uuid"]
    assert page["next"] == (
        f"{server.base_url}/RegionOne/baremetal/v1/nodes/detail"
        f"?sort_key=id&sort_dir=asc&limit=3&marker={marker}"
    )


def test_passwords_in_driver_info_are_masked(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    node = node_where(region, driver="redfish")
    node["driver_info"]["redfish_password"] = "hunter2"

    served = conn.baremetal.get_node(node["uuid"])

    assert served.driver_info["redfish_password"] == "******"
    assert served.driver_info["redfish_username"] == node["driver_info"]["redfish_username"]


def test_without_a_version_header_ironic_serves_1_1(http: httpx.Client) -> None:
    response = http.get("/v1/nodes")

    assert response.headers["X-OpenStack-Ironic-API-Version"] == "1.1"
    assert response.headers["X-OpenStack-Ironic-API-Maximum-Version"] == "1.96"
    assert "name" not in response.json()["nodes"][0]
    assert "name" in http.get("/v1/nodes", headers=LATEST).json()["nodes"][0]


def test_fields_are_gated_by_microversion(http: httpx.Client) -> None:
    old = http.get("/v1/nodes/detail", headers={"X-OpenStack-Ironic-API-Version": "1.40"})
    picked = http.get("/v1/nodes", params={"fields": "uuid,owner"}, headers=LATEST)
    too_new = http.get(
        "/v1/nodes",
        params={"fields": "uuid,owner"},
        headers={"X-OpenStack-Ironic-API-Version": "1.49"},
    )

    assert "owner" not in old.json()["nodes"][0] and "fault" not in old.json()["nodes"][0]
    assert set(picked.json()["nodes"][0]) == {"uuid", "owner", "links"}
    assert too_new.status_code == 406


def test_unsupported_version_is_refused(http: httpx.Client) -> None:
    response = http.get("/v1/nodes", headers={"X-OpenStack-Ironic-API-Version": "1.999"})

    assert response.status_code == 406
    assert "[1.1, 1.96]" in fault(response)["faultstring"]


def test_filters_select_nodes(http: httpx.Client, region: RegionState) -> None:
    in_maintenance = http.get("/v1/nodes", params={"maintenance": "true"}, headers=LATEST).json()[
        "nodes"
    ]
    active = http.get("/v1/nodes", params={"provision_state": "active"}, headers=LATEST).json()
    ipmi = http.get("/v1/nodes", params={"driver": "ipmi"}, headers=LATEST).json()["nodes"]

    assert {n["uuid"] for n in in_maintenance} == {
        n["uuid"] for n in region.nodes.values() if n["maintenance"]
    }
    assert {n["uuid"] for n in active["nodes"]} == {
        n["uuid"] for n in region.nodes.values() if n["provision_state"] == "active"
    }
    assert {n["uuid"] for n in ipmi} == {
        n["uuid"] for n in region.nodes.values() if n["driver"] == "ipmi"
    }


def test_node_is_found_by_name_or_uuid(http: httpx.Client, region: RegionState) -> None:
    node = next(iter(region.nodes.values()))

    by_name = http.get(f"/v1/nodes/{node['name']}", headers=LATEST).json()
    by_uuid = http.get(f"/v1/nodes/{node['uuid']}", headers=LATEST).json()

    assert by_name["uuid"] == by_uuid["uuid"] == node["uuid"]


def test_missing_node_is_ironics_404(http: httpx.Client) -> None:
    response = http.get("/v1/nodes/no-such-node", headers=LATEST)

    assert response.status_code == 404
    assert fault(response) == {
        "faultstring": "Node no-such-node could not be found.",
        "faultcode": "Client",
        "debuginfo": None,
    }


def test_project_scope_sees_only_owned_nodes(server: SimulatorServer, region: RegionState) -> None:
    owner = next(n["owner"] for n in region.nodes.values() if n["owner"])
    project_name = server.state.projects[owner]["name"]
    member = openstack.connect(
        auth_url=server.auth_url,
        username="admin",
        password="secret",
        project_name=project_name,
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )

    ids = {node.id for node in member.baremetal.nodes()}

    assert ids == {n["uuid"] for n in region.nodes.values() if n["owner"] == owner}


def test_version_discovery_needs_no_token(server: SimulatorServer) -> None:
    root = httpx.get(f"{server.base_url}/RegionOne/baremetal").json()

    assert root["default_version"]["min_version"] == "1.1"
    assert root["default_version"]["version"] == "1.96"
    assert httpx.get(f"{server.base_url}/RegionOne/baremetal/v1/nodes").status_code == 401


# -- writing ---------------------------------------------------------------------------


def test_power_off_and_on(
    conn: openstack.connection.Connection, http: httpx.Client, region: RegionState
) -> None:
    node = node_where(region, provision_state="active")

    response = http.put(
        f"/v1/nodes/{node['uuid']}/states/power", json={"target": "power off"}, headers=LATEST
    )
    assert response.status_code == 202
    assert response.headers["Location"].endswith(f"/v1/nodes/{node['uuid']}/states")
    assert conn.baremetal.get_node(node["uuid"]).power_state == "power off"

    conn.baremetal.set_node_power_state(node["uuid"], "power on")
    assert conn.baremetal.get_node(node["uuid"]).power_state == "power on"


def test_unknown_power_target_is_a_400(http: httpx.Client, region: RegionState) -> None:
    node_id = next(iter(region.nodes))

    response = http.put(
        f"/v1/nodes/{node_id}/states/power", json={"target": "explode"}, headers=LATEST
    )

    assert response.status_code == 400
    assert "can not be performed" in fault(response)["faultstring"]


def test_manage_then_provide_moves_an_enrolled_node_to_available(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    node = node_where(region, provision_state="enroll")

    conn.baremetal.set_node_provision_state(node["uuid"], "manage")
    assert conn.baremetal.get_node(node["uuid"]).provision_state == "manageable"
    conn.baremetal.set_node_provision_state(node["uuid"], "provide")
    assert conn.baremetal.get_node(node["uuid"]).provision_state == "available"


def test_deploying_from_the_wrong_state_is_refused(http: httpx.Client, region: RegionState) -> None:
    node = node_where(region, provision_state="manageable", maintenance=False)

    response = http.put(
        f"/v1/nodes/{node['uuid']}/states/provision", json={"target": "active"}, headers=LATEST
    )

    assert response.status_code == 400
    assert 'while it is in state "manageable"' in fault(response)["faultstring"]
    assert node["provision_state"] == "manageable"


def test_maintenance_can_be_set_and_cleared(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    node = node_where(region, maintenance=False)

    conn.baremetal.set_node_maintenance(node["uuid"], reason="disk swap")
    marked = conn.baremetal.get_node(node["uuid"])
    conn.baremetal.unset_node_maintenance(node["uuid"])
    cleared = conn.baremetal.get_node(node["uuid"])

    assert (marked.is_maintenance, marked.maintenance_reason) == (True, "disk swap")
    assert (cleared.is_maintenance, cleared.maintenance_reason) == (False, None)
