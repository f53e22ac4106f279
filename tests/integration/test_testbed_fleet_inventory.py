"""StackFleet's inventory, run unchanged against a real OpenStack (the testbed), sees
exactly the fleet the tests created there through openstacksdk — in the store, through
the CLI and through the API."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support import run_cli
from testbed_fleet import COMPUTE_HOSTS, FLAVOR, PREFIX

from stackfleet.api.app import create_app
from stackfleet.sources.openstack import LISTERS

pytestmark = pytest.mark.integration

# The testbed runs no Zun: a pass skips containers, saying why
NOT_IN_CATALOG = "skipped: container: service not in the catalog"
# The fake virt driver's host: 1000 vCPU at allocation ratio 4.0 (testbed/README.md)
FAKE_HOST_VCPUS = 1000


def _ours(collected: Any, kind: str) -> dict[str, dict[str, Any]]:
    """The records of `kind` the tests created (named with the prefix), by name."""
    rows, _ = collected.store.list_resources(kind, cloud=collected.cloud, limit=10_000)
    return {row["name"]: row for row in rows if (row["name"] or "").startswith(PREFIX)}


def _record(collected: Any, kind: str, resource_id: str) -> dict[str, Any]:
    return dict(collected.store.get_resource(kind, resource_id, cloud=collected.cloud))


@pytest.fixture(scope="module")
def admin(testbed: Any) -> Any:
    return testbed.connect(testbed.admin_cloud)


def test_a_pass_over_the_testbed_lists_every_kind_completely(collected: Any) -> None:
    result = collected.result
    assert result.status == "complete", result.error
    assert set(result.listings) == set(LISTERS)
    skipped = {k: str(listing.error) for k, listing in result.listings.items() if listing.skipped}
    # the system-scoped cloud was given: only what the testbed does not run (Zun) may be
    # skipped, and for that reason
    assert skipped == {"container": NOT_IN_CATALOG}, skipped


def test_servers_are_seen_on_both_compute_hosts(collected: Any) -> None:
    fleet = collected.fleet
    servers = _ours(collected, "server")
    assert {s["id"] for s in servers.values()} == set(fleet.servers.values())
    for host, server_id in fleet.servers.items():
        record = _record(collected, "server", server_id)
        assert record["status"] == "ACTIVE"
        assert record["host"] == host
        assert record["hypervisor_hostname"] == host
        assert record["project_id"] == fleet.project_id
        assert record["flavor_name"] == FLAVOR["name"]
        assert (record["vcpus"], record["ram_mb"], record["disk_gb"]) == (
            FLAVOR["vcpus"],
            FLAVOR["ram"],
            FLAVOR["disk"],
        )
        assert record["image_id"] == fleet.image_id


def test_a_server_is_related_to_its_host_port_and_volume(collected: Any) -> None:
    fleet = collected.fleet
    server_id = fleet.attached_server_id
    detail = _record(collected, "server", server_id)
    relations = detail["relations"]
    assert [h["name"] for h in relations["hypervisor"]] == ["cmp2"]
    assert [p["id"] for p in relations["ports"]] == [fleet.server_ports[server_id]]
    assert [v["id"] for v in relations["volumes"]] == [fleet.volume_attached_id]


def test_server_ports_are_bound_on_their_hosts_and_the_spare_port_is_not(
    collected: Any, admin: Any
) -> None:
    fleet = collected.fleet
    for host, server_id in fleet.servers.items():
        port = _record(collected, "port", fleet.server_ports[server_id])
        assert port["device_id"] == server_id
        assert port["binding_host"] == host
        assert port["binding_vif_type"] == "ovs"
        assert port["status"] == "ACTIVE"
        real = admin.network.get_port(fleet.server_ports[server_id])
        assert port["fixed_ips"] == [ip["ip_address"] for ip in real.fixed_ips]
    spare = _record(collected, "port", fleet.spare_port_id)
    assert spare["status"] == "DOWN"
    assert not spare["device_id"]
    assert spare["binding_vif_type"] == "unbound"


def test_floating_ips_are_seen_attached_and_unattached(collected: Any, admin: Any) -> None:
    fleet = collected.fleet
    server_port = fleet.server_ports[fleet.fip_server_id]
    attached = _record(collected, "floating_ip", fleet.fip_attached_id)
    free = _record(collected, "floating_ip", fleet.fip_free_id)
    assert attached["port_id"] == server_port
    real_port = admin.network.get_port(server_port)
    assert attached["fixed_ip_address"] == real_port.fixed_ips[0]["ip_address"]
    assert attached["router_id"] == fleet.router_id
    assert [p["id"] for p in attached["relations"]["port"]] == [server_port]
    assert [s["id"] for s in attached["relations"]["server"]] == [fleet.fip_server_id]
    assert free["server_id"] is None
    assert free["port_id"] is None
    assert free["fixed_ip_address"] is None
    for record in (attached, free):
        real = admin.network.get_ip(record["id"])
        assert record["floating_ip_address"] == real.floating_ip_address
        assert record["status"] == real.status
        assert record["floating_network_id"] == fleet.external_network_id


def test_volumes_are_seen_attached_and_available(collected: Any) -> None:
    fleet = collected.fleet
    volumes = _ours(collected, "volume")
    assert {v["id"] for v in volumes.values()} == {fleet.volume_attached_id, fleet.volume_free_id}
    attached = _record(collected, "volume", fleet.volume_attached_id)
    free = _record(collected, "volume", fleet.volume_free_id)
    assert attached["status"] == "in-use"
    assert attached["attached_server_ids"] == [fleet.attached_server_id]
    assert free["status"] == "available"
    assert free["attached_server_ids"] == []
    assert attached["backend_host"] == free["backend_host"] == "testbed-control@fake#fake"


def test_networks_subnets_and_the_router_gateway_are_seen(collected: Any) -> None:
    fleet = collected.fleet
    networks = _ours(collected, "network")
    assert {n["id"] for n in networks.values()} == {fleet.network_id, fleet.external_network_id}
    assert networks[f"{PREFIX}external"]["external"] is True
    assert networks[f"{PREFIX}net"]["external"] is False
    assert networks[f"{PREFIX}net"]["subnet_ids"] == [fleet.subnet_id]
    router = _record(collected, "router", fleet.router_id)
    assert router["external_network_id"] == fleet.external_network_id
    subnet = _record(collected, "subnet", fleet.subnet_id)
    assert subnet["cidr"] == "10.77.0.0/24"


def test_images_are_seen_with_their_status(collected: Any) -> None:
    fleet = collected.fleet
    uploaded = _record(collected, "image", fleet.image_id)
    assert uploaded["name"] == collected.testbed.info["image"]
    assert uploaded["status"] == "active"
    assert _record(collected, "image", fleet.queued_image_id)["status"] == "queued"


def test_server_groups_are_seen_with_their_members(collected: Any) -> None:
    fleet = collected.fleet
    groups = _ours(collected, "server_group")
    assert {g["id"] for g in groups.values()} == set(fleet.server_group_ids)
    assert sorted(groups[f"{PREFIX}group"]["members"]) == sorted(fleet.servers.values())
    assert groups[f"{PREFIX}group"]["policy"] == "soft-anti-affinity"
    assert groups[f"{PREFIX}group-empty"]["members"] == []


def test_baremetal_nodes_are_seen_through_the_system_scope(collected: Any, testbed: Any) -> None:
    fleet = collected.fleet
    nodes = _ours(collected, "baremetal_node")
    assert {n["id"] for n in nodes.values()} == set(fleet.node_ids)
    system = testbed.connect(testbed.system_cloud)
    for record in nodes.values():
        real = system.baremetal.get_node(record["id"])
        assert record["driver"] == "fake-hardware"
        assert record["provision_state"] == real.provision_state
        assert record["power_state"] == real.power_state
    assert nodes[f"{PREFIX}node-1"]["provision_state"] == "available"
    assert nodes[f"{PREFIX}node-1"]["power_state"] == "power off"
    assert nodes[f"{PREFIX}node-2"]["provision_state"] == "enroll"


def test_compute_services_are_up_on_every_host(collected: Any) -> None:
    rows, _ = collected.store.list_resources("compute_service", cloud=collected.cloud)
    states = {row["name"]: (row["state"], row["enabled"]) for row in rows}
    for host in COMPUTE_HOSTS:
        assert states[f"nova-compute@{host}"] == ("up", "enabled")
    control = collected.testbed.info["control_host"]
    assert states[f"nova-conductor@{control}"][0] == "up"
    assert states[f"nova-scheduler@{control}"][0] == "up"


def test_hypervisor_usage_is_the_sum_of_the_flavors_of_its_servers(
    collected: Any, admin: Any
) -> None:
    # What Nova says runs where, every project's servers (the smoke fleet's too).
    used: dict[str, Counter[str]] = {host: Counter() for host in COMPUTE_HOSTS}
    for server in admin.compute.servers(all_projects=True):
        if server.compute_host in used:
            flavor = server.flavor
            used[server.compute_host].update(
                vcpu=flavor.vcpus, memory_mb=flavor.ram, disk_gb=flavor.disk
            )
    rows, _ = collected.store.list_resources("hypervisor", cloud=collected.cloud)
    hypervisors = {row["name"]: row for row in rows}
    assert set(hypervisors) == set(COMPUTE_HOSTS)
    for host, expected in used.items():
        row = hypervisors[host]
        assert row["state"] == "up"
        assert expected["vcpu"] >= FLAVOR["vcpus"]
        assert row["vcpu_used"] == expected["vcpu"], host
        assert row["memory_mb_used"] == expected["memory_mb"], host
        assert row["disk_gb_used"] == expected["disk_gb"], host
        assert row["vcpu_total"] == FAKE_HOST_VCPUS
        assert row["vcpu_capacity"] == int(
            (row["vcpu_total"] - row["vcpu_reserved"]) * row["vcpu_allocation_ratio"]
        )


def test_the_cli_collects_the_testbed_and_lists_its_servers(collected: Any, tmp_path: Any) -> None:
    testbed, fleet = collected.testbed, collected.fleet
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"OS_CLIENT_CONFIG_FILE": str(testbed.clouds_yaml)}
    result = run_cli(
        "--db-url",
        url,
        "collect",
        "--os-cloud",
        testbed.admin_cloud,
        "--system-cloud",
        testbed.system_cloud,
        "-f",
        "json",
        env=env,
    )
    assert result.code == 0, result.stderr
    listed = {row["kind"]: row for row in result.json()}
    incomplete = {k: row["error"] for k, row in listed.items() if not row["complete"]}
    assert incomplete == {"container": NOT_IN_CATALOG}, listed
    result = run_cli("--db-url", url, "servers", "list", "-f", "json", env=env)
    assert result.code == 0, result.stderr
    ours = {row["id"]: row for row in result.json() if row["name"].startswith(PREFIX)}
    assert {sid: row["host"] for sid, row in ours.items()} == {
        sid: host for host, sid in fleet.servers.items()
    }
    assert all(row["status"] == "ACTIVE" for row in ours.values())
    result = run_cli("--db-url", url, "servers", "list", "--host", "cmp1", "-f", "json", env=env)
    assert fleet.servers["cmp1"] in {row["id"] for row in result.json()}
    assert fleet.servers["cmp2"] not in {row["id"] for row in result.json()}


def test_the_api_serves_what_the_pass_saw(collected: Any) -> None:
    fleet = collected.fleet
    client = TestClient(create_app(collected.store))
    page = client.get("/v1/resources", params={"kind": "server", "host": "cmp2", "limit": 500})
    assert page.status_code == 200
    assert fleet.servers["cmp2"] in {item["id"] for item in page.json()["items"]}
    fip = client.get(f"/v1/resources/floating_ip/{fleet.fip_free_id}")
    assert fip.status_code == 200
    assert fip.json()["port_id"] is None
    volume = client.get(f"/v1/resources/volume/{fleet.volume_attached_id}").json()
    assert volume["attached_server_ids"] == [fleet.attached_server_id]
    summary = client.get("/v1/summary").json()
    assert summary["servers_by_status"].get("ACTIVE", 0) >= len(fleet.servers)
    down = client.get("/v1/resources", params={"kind": "hypervisor", "state": "down"})
    assert down.json()["total"] == 0
