"""The simulated Placement, read through openstacksdk's placement proxy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openstack
import pytest

from stackfleet.simulator.generator import FleetConfig
from stackfleet.simulator.server import SimulatorServer
from stackfleet.simulator.services.nova import server_resources
from stackfleet.simulator.state import RegionState

REGION = "RegionOne"
SMALL_FLEET = FleetConfig(
    projects=3,
    hypervisors=6,
    servers=24,
    volumes=4,
    floating_ips=2,
    images=2,
    baremetal_nodes=0,
)

Obj = dict[str, Any]


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SMALL_FLEET) as server:
        yield server


@pytest.fixture
def region(sim: SimulatorServer) -> RegionState:
    return sim.state.regions[REGION]


@pytest.fixture
def admin(sim: SimulatorServer) -> openstack.connection.Connection:
    return openstack.connect(**sim.connect_kwargs())


def get(conn: Any, path: str, version: str = "1.39", **kwargs: Any) -> Any:
    return conn.placement.get(path, microversion=version, raise_exc=False, **kwargs)


def _servers_on(region: RegionState, provider_uuid: str) -> list[Obj]:
    name = region.resource_providers[provider_uuid]["name"]
    return [s for s in region.servers.values() if s["OS-EXT-SRV-ATTR:hypervisor_hostname"] == name]


def test_version_discovery_needs_no_token(sim):
    response = httpx.get(f"{sim.base_url}/{REGION}/placement/")
    assert response.json() == {
        "versions": [
            {
                "id": "v1.0",
                "max_version": "1.39",
                "min_version": "1.0",
                "status": "CURRENT",
                "links": [{"rel": "self", "href": ""}],
            }
        ]
    }
    assert httpx.get(f"{sim.base_url}/{REGION}/placement/resource_providers").status_code == 401


def test_the_negotiated_microversion_is_echoed(admin):
    response = get(admin, "/resource_providers", version="1.26")
    assert response.headers["OpenStack-API-Version"] == "placement 1.26"
    assert response.headers["Vary"] == "openstack-api-version"
    default = admin.placement.get("/resource_providers", raise_exc=False)
    assert default.headers["OpenStack-API-Version"] == "placement 1.0"


def test_an_unsupported_microversion_is_not_acceptable(admin):
    response = admin.placement.get(
        "/resource_providers", headers={"OpenStack-API-Version": "placement 1.99"}, raise_exc=False
    )
    assert response.status_code == 406
    (error,) = response.json()["errors"]
    assert (error["status"], error["title"]) == (406, "Not Acceptable")
    assert "Unacceptable version header: 1.99" in error["detail"]


def test_every_hypervisor_has_a_provider_with_versioned_links(admin, region):
    old = get(admin, "/resource_providers", version="1.0").json()["resource_providers"]
    assert {p["uuid"] for p in old} == set(region.resource_providers)
    assert {h for h in region.hypervisors} <= {p["uuid"] for p in old}
    assert [link["rel"] for link in old[0]["links"]] == ["self", "inventories", "usages"]
    assert "root_provider_uuid" not in old[0]
    new = get(admin, "/resource_providers", version="1.14").json()["resource_providers"][0]
    assert [link["rel"] for link in new["links"]] == [
        "self", "inventories", "usages", "aggregates", "traits", "allocations",
    ]  # fmt: skip
    assert new["links"][0]["href"] == f"/{REGION}/placement/resource_providers/{new['uuid']}"
    assert new["root_provider_uuid"] == new["uuid"]
    assert new["generation"] == region.resource_providers[new["uuid"]]["generation"]


def test_providers_filter_by_name_uuid_and_tree(admin, region):
    provider = next(iter(region.resource_providers.values()))
    by_name = get(admin, f"/resource_providers?name={provider['name']}").json()
    assert [p["uuid"] for p in by_name["resource_providers"]] == [provider["uuid"]]
    by_uuid = get(admin, f"/resource_providers?uuid={provider['uuid']}").json()
    assert [p["uuid"] for p in by_uuid["resource_providers"]] == [provider["uuid"]]
    in_tree = get(admin, f"/resource_providers?in_tree={provider['uuid']}").json()
    assert [p["uuid"] for p in in_tree["resource_providers"]] == [provider["uuid"]]


def test_providers_filter_by_free_capacity(admin, region):
    # enough memory for the biggest single allocation only some providers can take
    free = {}
    for rp_uuid, inventory in region.inventories.items():
        memory = inventory["MEMORY_MB"]
        capacity = (memory["total"] - memory["reserved"]) * memory["allocation_ratio"]
        free[rp_uuid] = capacity - region.usages[rp_uuid]["MEMORY_MB"]
    wanted = sorted(free.values())[len(free) // 2]
    body = get(admin, f"/resource_providers?resources=MEMORY_MB:{int(wanted)}").json()
    expected = {u for u, f in free.items() if f >= int(wanted)}
    assert {p["uuid"] for p in body["resource_providers"]} == expected
    assert 0 < len(expected) < len(free)


def test_an_unknown_resource_class_filter_is_a_bad_request(admin):
    response = get(admin, "/resource_providers?resources=UNOBTAINIUM:1", version="1.26")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["title"] == "Bad Request"
    assert "No such resource class UNOBTAINIUM" in error["detail"]
    assert error["code"] == "placement.undefined_code"
    assert error["request_id"] == response.headers["X-OpenStack-Request-ID"]


def test_unknown_query_parameters_are_refused(admin):
    response = get(admin, "/resource_providers?colour=blue")
    assert response.status_code == 400
    assert "'colour' was unexpected" in response.json()["errors"][0]["detail"]
    # member_of only exists from 1.3
    assert get(admin, f"/resource_providers?member_of={uuid.uuid4()}", "1.2").status_code == 400


def test_providers_filter_by_aggregate_membership(admin, region):
    aggregate = str(uuid.uuid4())
    members = list(region.resource_providers)[:2]
    for provider_uuid in members:
        region.provider_aggregates[provider_uuid] = [aggregate]
    body = get(admin, f"/resource_providers?member_of=in:{aggregate}").json()
    assert sorted(p["uuid"] for p in body["resource_providers"]) == sorted(members)
    outside = get(admin, f"/resource_providers?member_of=!{aggregate}").json()
    assert len(outside["resource_providers"]) == len(region.resource_providers) - 2
    shown = get(admin, f"/resource_providers/{members[0]}/aggregates").json()
    assert shown["aggregates"] == [aggregate]
    assert (
        shown["resource_provider_generation"] == region.resource_providers[members[0]]["generation"]
    )


def test_a_disabled_compute_node_carries_the_status_disabled_trait(admin, region):
    disabled_hosts = {
        s["host"]
        for s in region.compute_services.values()
        if s["binary"] == "nova-compute" and s["status"] == "disabled"
    }
    expected = {
        h["id"] for h in region.hypervisors.values() if h["service"]["host"] in disabled_hosts
    }
    assert expected
    body = get(admin, "/resource_providers?required=COMPUTE_STATUS_DISABLED").json()
    assert {p["uuid"] for p in body["resource_providers"]} == expected
    provider = next(iter(expected))
    traits = get(admin, f"/resource_providers/{provider}/traits").json()
    assert "COMPUTE_STATUS_DISABLED" in traits["traits"]


def test_enabling_the_service_removes_the_trait_and_bumps_the_generation(admin, region):
    service = next(
        s
        for s in region.compute_services.values()
        if s["binary"] == "nova-compute" and s["status"] == "disabled"
    )
    provider = next(
        h["id"] for h in region.hypervisors.values() if h["service"]["host"] == service["host"]
    )
    generation = region.resource_providers[provider]["generation"]
    admin.compute.put(
        f"/os-services/{service['id']}", json={"status": "enabled"}, microversion="2.53"
    )
    traits = get(admin, f"/resource_providers/{provider}/traits").json()
    assert "COMPUTE_STATUS_DISABLED" not in traits["traits"]
    assert traits["resource_provider_generation"] == generation + 1


def test_inventories_and_one_inventory(admin, region):
    provider_uuid, inventory = next(iter(region.inventories.items()))
    generation = region.resource_providers[provider_uuid]["generation"]
    body = get(admin, f"/resource_providers/{provider_uuid}/inventories").json()
    assert body == {"inventories": inventory, "resource_provider_generation": generation}
    vcpu = get(admin, f"/resource_providers/{provider_uuid}/inventories/VCPU").json()
    assert vcpu == {**inventory["VCPU"], "resource_provider_generation": generation}
    missing = get(admin, f"/resource_providers/{provider_uuid}/inventories/VGPU")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["title"] == "Not Found"


def test_an_unknown_provider_is_not_found(admin):
    provider_uuid = str(uuid.uuid4())
    response = get(admin, f"/resource_providers/{provider_uuid}", version="1.20")
    assert response.status_code == 404
    (error,) = response.json()["errors"]
    assert error["status"] == 404
    assert f"No resource provider with uuid {provider_uuid} found" in error["detail"]
    # the error code only exists from 1.23
    assert "code" not in error


def test_provider_usages_add_up_the_servers_on_it(admin, region):
    for provider_uuid in region.resource_providers:
        usages = get(admin, f"/resource_providers/{provider_uuid}/usages").json()["usages"]
        totals: dict[str, int] = {rc: 0 for rc in region.inventories[provider_uuid]}
        for server in _servers_on(region, provider_uuid):
            for rc, amount in server_resources(server).items():
                totals[rc] += amount
        assert usages == totals


def test_allocations_of_a_server_and_of_an_unknown_consumer(admin, region):
    server = next(s for s in region.servers.values() if s["OS-EXT-SRV-ATTR:host"])
    node = server["OS-EXT-SRV-ATTR:hypervisor_hostname"]
    provider = next(u for u, rp in region.resource_providers.items() if rp["name"] == node)
    body = get(admin, f"/allocations/{server['id']}", version="1.38").json()
    assert body == {
        "allocations": {
            provider: {
                "generation": region.resource_providers[provider]["generation"],
                "resources": server_resources(server),
            }
        },
        "project_id": server["tenant_id"],
        "user_id": server["user_id"],
        "consumer_generation": 1,
        "consumer_type": "INSTANCE",
    }
    assert get(admin, f"/allocations/{uuid.uuid4()}").json() == {"allocations": {}}
    on_provider = get(admin, f"/resource_providers/{provider}/allocations").json()
    assert on_provider["allocations"][server["id"]] == {"resources": server_resources(server)}


def test_project_usages_sum_the_project_servers(admin, sim, region):
    project = next(p["id"] for p in sim.state.projects.values() if p["name"] == "alpha-01")
    servers = [
        s
        for s in region.servers.values()
        if s["tenant_id"] == project and s["OS-EXT-SRV-ATTR:host"]
    ]
    totals: dict[str, int] = {}
    for server in servers:
        for rc, amount in server_resources(server).items():
            totals[rc] = totals.get(rc, 0) + amount
    assert get(admin, f"/usages?project_id={project}", "1.9").json() == {"usages": totals}
    grouped = get(admin, f"/usages?project_id={project}", "1.38").json()
    assert grouped == {"usages": {"INSTANCE": {"consumer_count": len(servers), **totals}}}
    assert get(admin, "/usages", "1.9").status_code == 400


def test_a_live_migration_moves_usage_and_bumps_both_generations(admin, region):
    server = next(
        s
        for s in region.servers.values()
        if s["status"] == "ACTIVE" and s["host_status"] == "UP" and not s["server_groups"]
    )
    source = next(
        u
        for u, rp in region.resource_providers.items()
        if rp["name"] == server["OS-EXT-SRV-ATTR:hypervisor_hostname"]
    )
    before = {u: rp["generation"] for u, rp in region.resource_providers.items()}
    source_usage = get(admin, f"/resource_providers/{source}/usages").json()["usages"]
    response = admin.compute.post(
        f"/servers/{server['id']}/action",
        json={"os-migrateLive": {"host": None, "block_migration": "auto"}},
        microversion="2.90",
    )
    assert response.status_code == 202
    allocation = get(admin, f"/allocations/{server['id']}").json()["allocations"]
    (target,) = allocation
    assert target != source
    assert allocation[target]["generation"] == before[target] + 1
    after = get(admin, f"/resource_providers/{source}/usages").json()
    assert after["resource_provider_generation"] == before[source] + 1
    for rc, amount in server_resources(server).items():
        assert after["usages"][rc] == source_usage[rc] - amount


def test_resource_classes_and_traits(admin):
    classes = get(admin, "/resource_classes").json()["resource_classes"]
    assert {"VCPU", "MEMORY_MB", "DISK_GB", "PCPU"} <= {c["name"] for c in classes}
    assert get(admin, "/resource_classes", version="1.1").status_code == 404
    traits = get(admin, "/traits?name=startswith:COMPUTE_STATUS").json()
    assert traits == {"traits": ["COMPUTE_STATUS_DISABLED"]}
    associated = get(admin, "/traits?associated=true").json()["traits"]
    assert "COMPUTE_NODE" in associated and "STORAGE_DISK_SSD" not in associated


def test_a_non_admin_is_forbidden(sim):
    member = openstack.connect(
        auth_url=sim.auth_url,
        username="alpha-01-user",
        password=SMALL_FLEET.user_password,
        project_name="alpha-01",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=REGION,
    )
    response = member.placement.get("/resource_providers", raise_exc=False)
    assert response.status_code == 403
    assert response.json()["errors"][0]["title"] == "Forbidden"
