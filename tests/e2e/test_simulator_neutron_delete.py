"""The simulated Neutron's and Keystone's deletions a purge makes, as openstacksdk makes
them, with the refusals worded as the services word them."""

from __future__ import annotations

import openstack
import openstack.exceptions
import pytest

from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture
def sim():
    with SimulatorServer(preset("small")) as server:
        conn = openstack.connect(**server.connect_kwargs())
        yield conn, server.state.regions["RegionOne"], server
        conn.close()


def _project(server, name):
    return next(p["id"] for p in server.state.projects.values() if p["name"] == name)


def test_a_router_with_interfaces_is_in_use_until_they_are_removed(sim):
    conn, region, server = sim
    router = next(r for r in region.routers.values())
    interfaces = [
        p for p in region.ports.values()
        if p["device_id"] == router["id"] and p["device_owner"] == "network:router_interface"
    ]  # fmt: skip
    assert interfaces
    with pytest.raises(openstack.exceptions.ConflictException, match="still has ports"):
        conn.network.delete_router(router["id"], ignore_missing=False)
    fips = [f for f in region.floatingips.values() if f.get("router_id") == router["id"]]
    if fips:
        with pytest.raises(openstack.exceptions.ConflictException, match="floating IPs"):
            for port in interfaces:
                conn.network.remove_interface_from_router(router["id"], port_id=port["id"])
        for fip in fips:
            conn.network.delete_ip(fip["id"])
    for port in interfaces:
        answer = conn.network.remove_interface_from_router(router["id"], port_id=port["id"])
        assert answer["port_id"] == port["id"]
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.remove_interface_from_router(router["id"], port_id=interfaces[0]["id"])
    conn.network.delete_router(router["id"], ignore_missing=False)
    assert router["id"] not in region.routers
    assert not [p for p in region.ports.values() if p["device_id"] == router["id"]]


def test_a_network_with_ports_is_in_use_and_goes_with_its_subnets(sim):
    conn, region, server = sim
    network = next(n for n in region.networks.values() if n["name"] == "alpha-01-net")
    with pytest.raises(openstack.exceptions.ConflictException, match="ports still in use"):
        conn.network.delete_network(network["id"], ignore_missing=False)
    for port_id, port in list(region.ports.items()):
        if port["network_id"] == network["id"] and port["device_owner"] != "network:dhcp":
            del region.ports[port_id]
    conn.network.delete_network(network["id"], ignore_missing=False)
    assert network["id"] not in region.networks
    assert not [s for s in region.subnets.values() if s["network_id"] == network["id"]]


def test_a_security_group_in_use_is_refused(sim):
    conn, region, server = sim
    used = next(
        g for g in region.security_groups.values()
        if any(g["id"] in (p.get("security_groups") or []) for p in region.ports.values())
    )  # fmt: skip
    with pytest.raises(openstack.exceptions.ConflictException, match="in use"):
        conn.network.delete_security_group(used["id"], ignore_missing=False)
    spare = dict(used, id="spare-group", name="spare", security_group_rules=[])
    region.security_groups["spare-group"] = spare
    conn.network.delete_security_group("spare-group", ignore_missing=False)
    assert "spare-group" not in region.security_groups


def test_deleting_a_project_needs_admin_and_keeps_its_resources(sim):
    conn, region, server = sim
    alpha = _project(server, "alpha-01")
    user_id = next(u for (u, p), roles in server.state.assignments.items()
                   if p == alpha and "admin" not in roles)  # fmt: skip
    kwargs = server.connect_kwargs()
    kwargs.update(
        username=server.state.users[user_id]["name"],
        password=server.state.passwords[user_id],
        project_name="alpha-01",
    )
    member = openstack.connect(**kwargs)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        member.identity.delete_project(alpha)
    member.close()
    servers = sum(1 for s in region.servers.values() if s["tenant_id"] == alpha)
    conn.identity.delete_project(alpha)
    assert alpha not in server.state.projects
    assert not [k for k in server.state.assignments if k[1] == alpha]
    assert sum(1 for s in region.servers.values() if s["tenant_id"] == alpha) == servers
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.identity.delete_project(alpha, ignore_missing=False)
