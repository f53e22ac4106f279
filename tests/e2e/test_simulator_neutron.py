"""The simulator's Neutron, through openstacksdk, raw HTTP and the openstack CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
from support import run_openstack

from stackfleet.simulator.generator import FleetConfig
from stackfleet.simulator.server import SimulatorServer
from stackfleet.simulator.state import RegionState

SMALL = FleetConfig(
    projects=2, hypervisors=4, servers=8, floating_ips=4, volumes=6, images=4, baremetal_nodes=4
)


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SMALL) as running:
        yield running


@pytest.fixture(scope="module")
def conn(server: SimulatorServer) -> openstack.connection.Connection:
    return openstack.connect(**server.connect_kwargs())


@pytest.fixture(scope="module")
def region(server: SimulatorServer) -> RegionState:
    return server.state.regions["RegionOne"]


@pytest.fixture(scope="module")
def http(server: SimulatorServer, conn: openstack.connection.Connection) -> Iterator[httpx.Client]:
    """Raw calls to the region's Neutron with the admin's token."""
    with httpx.Client(
        base_url=f"{server.base_url}/RegionOne/networking",
        headers={"X-Auth-Token": conn.auth_token, "Accept": "application/json"},
    ) as client:
        yield client


def port_owned_by(region: RegionState, owner: str) -> dict[str, Any]:
    return next(p for p in region.ports.values() if p["device_owner"] == owner)


# -- reading ---------------------------------------------------------------------------


def test_sdk_paging_yields_every_port_exactly_once(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    ids = [port.id for port in conn.network.ports(limit=3)]

    assert len(ids) == len(set(ids))
    assert set(ids) == set(region.ports)


def test_pages_link_next_and_previous_like_neutron(http: httpx.Client, region: RegionState) -> None:
    first = http.get("/v2.0/networks", params={"limit": 2}).json()
    links = {link["rel"]: link["href"] for link in first["networks_links"]}
    assert set(links) == {"next", "previous"}
    assert f"marker={first['networks'][-1]['id']}" in links["next"]
    assert "page_reverse=True" in links["previous"]

    last = httpx.get(links["next"], headers=http.headers).json()
    # 3 networks: the second page is short, so it has no next link, only previous.
    assert [link["rel"] for link in last["networks_links"]] == ["previous"]
    seen = [n["id"] for n in first["networks"] + last["networks"]]
    assert sorted(seen) == sorted(region.networks)


def test_page_reverse_walks_backwards_from_the_marker(http: httpx.Client) -> None:
    everything = http.get("/v2.0/ports", params={"sort_key": "id", "sort_dir": "asc"}).json()
    ids = [p["id"] for p in everything["ports"]]

    page = http.get(
        "/v2.0/ports", params={"limit": 2, "marker": ids[5], "page_reverse": "True"}
    ).json()

    assert [p["id"] for p in page["ports"]] == ids[3:5]


def test_attribute_filters_select_matching_objects(http: httpx.Client, region: RegionState) -> None:
    external = http.get("/v2.0/networks", params={"router:external": "True"}).json()["networks"]
    assert [n["name"] for n in external] == ["public"]

    dhcp = http.get("/v2.0/ports", params={"device_owner": "network:dhcp"}).json()["ports"]
    assert {p["id"] for p in dhcp} == {
        p["id"] for p in region.ports.values() if p["device_owner"] == "network:dhcp"
    }

    host = next(p["binding:host_id"] for p in region.ports.values() if p["binding:host_id"])
    on_host = http.get("/v2.0/ports", params={"binding:host_id": host}).json()["ports"]
    assert on_host and all(p["binding:host_id"] == host for p in on_host)


def test_repeating_a_filter_means_or(http: httpx.Client, region: RegionState) -> None:
    owners = ["network:dhcp", "network:router_interface"]
    ports = http.get("/v2.0/ports", params=[("device_owner", o) for o in owners]).json()["ports"]

    assert {p["device_owner"] for p in ports} == set(owners)
    assert len(ports) == sum(1 for p in region.ports.values() if p["device_owner"] in owners)


def test_fields_returns_only_the_asked_attributes(http: httpx.Client) -> None:
    ports = http.get("/v2.0/ports", params=[("fields", "id"), ("fields", "status")]).json()["ports"]

    assert ports and all(set(p) == {"id", "status"} for p in ports)


def test_sort_key_and_dir_order_the_list(http: httpx.Client) -> None:
    rules = http.get(
        "/v2.0/security-group-rules", params={"sort_key": "direction", "sort_dir": "desc"}
    ).json()["security_group_rules"]

    directions = [r["direction"] for r in rules]
    assert directions == sorted(directions, reverse=True)


def test_unknown_filter_is_a_400_neutron_error(http: httpx.Client) -> None:
    response = http.get("/v2.0/ports", params={"no_such_attribute": "x"})

    assert response.status_code == 400
    assert response.json()["NeutronError"]["type"] == "HTTPBadRequest"


def test_missing_port_is_a_404_port_not_found(http: httpx.Client) -> None:
    response = http.get("/v2.0/ports/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404
    assert response.json() == {
        "NeutronError": {
            "type": "PortNotFound",
            "message": "Port 00000000-0000-0000-0000-000000000000 could not be found.",
            "detail": "",
        }
    }


def test_calls_without_a_token_are_refused_but_discovery_is_not(server: SimulatorServer) -> None:
    root = f"{server.base_url}/RegionOne/networking"

    assert httpx.get(f"{root}/v2.0/ports").status_code == 401
    versions = httpx.get(root).json()["versions"]
    assert versions[0]["id"] == "v2.0"
    assert versions[0]["links"][0]["href"] == f"{root}/v2.0/"


def test_extensions_include_what_clients_probe(
    conn: openstack.connection.Connection, http: httpx.Client
) -> None:
    aliases = {e.alias for e in conn.network.extensions()}

    assert {"binding", "router", "agent", "security-group", "external-net",
            "standard-attr-tag", "quotas", "pagination", "sorting",
            "filter-validation"} <= aliases  # fmt: skip
    assert http.get("/v2.0/extensions/router").json()["extension"]["alias"] == "router"
    assert http.get("/v2.0/extensions/no-such-thing").status_code == 404


def test_members_see_their_project_and_shared_networks_only(
    server: SimulatorServer, region: RegionState
) -> None:
    project_id = next(p for p, o in server.state.projects.items() if o["name"] == "alpha-01")
    member = openstack.connect(
        auth_url=server.auth_url,
        username="alpha-01-user",
        password="password",
        project_name="alpha-01",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )

    networks = {n.name for n in member.network.networks()}
    ports = list(member.network.ports())

    assert networks == {"alpha-01-net", "public"}
    assert ports and all(p.project_id == project_id for p in ports)
    assert list(member.network.agents()) == []


def test_quota_shows_the_project_limits(http: httpx.Client, server: SimulatorServer) -> None:
    project_id = next(iter(server.state.projects))

    quota = http.get(f"/v2.0/quotas/{project_id}").json()["quota"]

    assert quota["port"] > 0 and quota["floatingip"] > 0


# -- writing ---------------------------------------------------------------------------


def test_deleting_a_port_removes_it_and_frees_its_floating_ip(
    conn: openstack.connection.Connection, http: httpx.Client, region: RegionState
) -> None:
    fip = next(f for f in region.floatingips.values() if f["port_id"])
    port_id = fip["port_id"]

    conn.network.delete_port(port_id, ignore_missing=False)

    assert http.get(f"/v2.0/ports/{port_id}").status_code == 404
    after = conn.network.get_ip(fip["id"])
    assert (after.port_id, after.fixed_ip_address, after.status) == (None, None, "DOWN")
    assert http.delete(f"/v2.0/ports/{port_id}").status_code == 404


def test_router_interface_port_cannot_be_deleted_directly(
    http: httpx.Client, region: RegionState
) -> None:
    port = port_owned_by(region, "network:router_interface")

    response = http.delete(f"/v2.0/ports/{port['id']}")

    assert response.status_code == 409
    assert response.json()["NeutronError"]["type"] == "ServicePortInUse"
    assert port["id"] in region.ports


def test_floating_ip_can_be_created_associated_and_released(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    external = next(n for n in region.networks.values() if n["router:external"])
    server_port = next(
        p
        for p in region.ports.values()
        if p["device_owner"].startswith("compute:")
        and not any(f["port_id"] == p["id"] for f in region.floatingips.values())
    )

    fip = conn.network.create_ip(floating_network_id=external["id"])
    assert fip.status == "DOWN" and fip.port_id is None
    backing = [p for p in region.ports.values() if p["device_id"] == fip.id]
    assert [p["device_owner"] for p in backing] == ["network:floatingip"]

    associated = conn.network.update_ip(fip, port_id=server_port["id"])
    assert associated.port_id == server_port["id"]
    assert associated.fixed_ip_address == server_port["fixed_ips"][0]["ip_address"]
    assert associated.router_id and associated.status == "ACTIVE"

    released = conn.network.update_ip(fip, port_id=None)
    assert released.port_id is None and released.router_id is None

    conn.network.delete_ip(fip, ignore_missing=False)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.get_ip(fip.id)
    assert not [p for p in region.ports.values() if p["device_id"] == fip.id]


def test_second_floating_ip_on_the_same_fixed_ip_conflicts(
    http: httpx.Client, region: RegionState
) -> None:
    taken = next(f for f in region.floatingips.values() if f["port_id"])
    free = next(f for f in region.floatingips.values() if not f["port_id"])

    body = {"floatingip": {"port_id": taken["port_id"]}}
    response = http.put(f"/v2.0/floatingips/{free['id']}", json=body)

    assert response.status_code == 409
    assert response.json()["NeutronError"]["type"] == "FloatingIPPortAlreadyAssociated"


def test_security_group_rule_delete_takes_effect(
    conn: openstack.connection.Connection, http: httpx.Client, region: RegionState
) -> None:
    rule_id = next(r["id"] for r in region.security_group_rules.values() if r["protocol"] == "tcp")

    conn.network.delete_security_group_rule(rule_id, ignore_missing=False)

    assert rule_id not in {r.id for r in conn.network.security_group_rules()}
    response = http.delete(f"/v2.0/security-group-rules/{rule_id}")
    assert response.status_code == 404
    assert response.json()["NeutronError"]["type"] == "SecurityGroupRuleNotFound"


def test_tags_can_be_added_listed_filtered_and_removed(
    conn: openstack.connection.Connection, http: httpx.Client, region: RegionState
) -> None:
    network_id = next(n["id"] for n in region.networks.values() if not n["router:external"])

    assert http.put(f"/v2.0/networks/{network_id}/tags/keep").status_code == 201
    assert http.get(f"/v2.0/networks/{network_id}/tags").json() == {"tags": ["keep"]}
    tagged = http.get("/v2.0/networks", params={"tags": "keep"}).json()["networks"]
    assert [n["id"] for n in tagged] == [network_id]

    assert http.delete(f"/v2.0/networks/{network_id}/tags/keep").status_code == 204
    assert http.delete(f"/v2.0/networks/{network_id}/tags/keep").status_code == 404
    assert conn.network.get_network(network_id).tags == []


def test_agent_admin_state_can_be_turned_off(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    agent_id = next(iter(region.agents))

    updated = conn.network.update_agent(agent_id, is_admin_state_up=False)

    assert updated.is_admin_state_up is False
    assert conn.network.get_agent(agent_id).is_admin_state_up is False


# -- the openstack CLI -----------------------------------------------------------------


def test_cli_lists_networks_ports_floating_ips_and_rules(
    server: SimulatorServer, region: RegionState, tmp_path: Path
) -> None:
    networks = run_openstack(server, tmp_path, "network", "list", "-c", "ID")
    ports = run_openstack(server, tmp_path, "port", "list", "-c", "ID")
    fips = run_openstack(server, tmp_path, "floating", "ip", "list", "-c", "ID")
    rules = run_openstack(server, tmp_path, "security", "group", "rule", "list", "-c", "ID")

    assert sorted(r[0] for r in networks) == sorted(region.networks)
    assert sorted(r[0] for r in ports) == sorted(region.ports)
    assert sorted(r[0] for r in fips) == sorted(region.floatingips)
    assert sorted(r[0] for r in rules) == sorted(region.security_group_rules)


def test_cli_port_list_filters_by_device_owner(
    server: SimulatorServer, region: RegionState, tmp_path: Path
) -> None:
    rows = run_openstack(
        server, tmp_path, "port", "list", "--device-owner", "network:dhcp", "-c", "ID"
    )

    assert sorted(r[0] for r in rows) == sorted(
        p["id"] for p in region.ports.values() if p["device_owner"] == "network:dhcp"
    )


def test_if_match_revision_refuses_a_release_after_a_change(
    conn: openstack.connection.Connection, http: httpx.Client, region: RegionState
) -> None:
    """Neutron's revision-if-match: a DELETE with `If-Match: revision_number=N` of an
    older revision answers 412 RevisionNumberConstraintFailed; of the current one, 204."""
    fip = next(f for f in region.floatingips.values() if not f["port_id"])
    seen = conn.network.get_ip(fip["id"]).revision_number
    conn.network.update_ip(fip["id"], description="changed by its owner")
    stale = http.delete(
        f"/v2.0/floatingips/{fip['id']}", headers={"If-Match": f"revision_number={seen}"}
    )
    assert stale.status_code == 412
    error = stale.json()["NeutronError"]
    assert error["type"] == "RevisionNumberConstraintFailed"
    assert f"Constrained to {seen}, but current revision is {seen + 1}" in error["message"]
    assert fip["id"] in region.floatingips
    conn.network.delete_ip(fip["id"], if_revision=seen + 1, ignore_missing=False)
    assert fip["id"] not in region.floatingips
