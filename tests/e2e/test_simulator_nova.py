"""The simulated Nova, driven through openstacksdk and the openstack CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest

from stackfleet.simulator.generator import FleetConfig
from stackfleet.simulator.server import SimulatorServer
from stackfleet.simulator.services.nova import MAX_VERSION, server_resources
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
OPENSTACK_CLI = Path(sys.executable).with_name("openstack")
LATEST = f"{MAX_VERSION[0]}.{MAX_VERSION[1]}"

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


def _member_login(sim: SimulatorServer, project_name: str) -> openstack.connection.Connection:
    """A connection as the member user the generator makes for a tenant project."""
    return openstack.connect(
        auth_url=sim.auth_url,
        username=f"{project_name}-user",
        password=SMALL_FLEET.user_password,
        project_name=project_name,
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=REGION,
        identity_api_version=3,
    )


def _project_id(sim: SimulatorServer, name: str) -> str:
    return next(p["id"] for p in sim.state.projects.values() if p["name"] == name)


def get(conn: Any, path: str, version: str = LATEST, **kwargs: Any) -> Any:
    """A raw GET on the compute endpoint at a microversion (errors are returned)."""
    return conn.compute.get(path, microversion=version, raise_exc=False, **kwargs)


def action(conn: Any, server_id: str, body: Obj, version: str = LATEST) -> Any:
    return conn.compute.post(
        f"/servers/{server_id}/action", json=body, microversion=version, raise_exc=False
    )


def _server_on_up_host(region: RegionState, status: str = "ACTIVE") -> Obj:
    return next(
        s
        for s in region.servers.values()
        if s["status"] == status and s["host_status"] == "UP" and not s["server_groups"]
    )


def _compute_service(region: RegionState, host: str) -> Obj:
    return next(
        s
        for s in region.compute_services.values()
        if s["host"] == host and s["binary"] == "nova-compute"
    )


# -- listing ----------------------------------------------------------------------------


def test_paging_through_all_servers_returns_each_server_exactly_once(admin, region):
    seen: list[str] = []
    url = "/servers/detail?all_tenants=True&limit=5"
    pages = 0
    while url:
        body = get(admin, url).json()
        pages += 1
        seen += [s["id"] for s in body["servers"]]
        links = [link["href"] for link in body.get("servers_links", []) if link["rel"] == "next"]
        url = links[0] if links else ""
    assert sorted(seen) == sorted(region.servers)
    assert len(seen) == len(set(seen))
    assert pages == -(-len(region.servers) // 5)


def test_servers_are_listed_newest_first(admin, region):
    body = get(admin, "/servers/detail?all_tenants=1").json()
    created = [s["created"] for s in body["servers"]]
    assert created == sorted(created, reverse=True)


def test_next_link_repeats_the_query_with_the_last_id_as_marker(admin, sim):
    body = get(admin, "/servers/detail?limit=3&all_tenants=True&status=ACTIVE").json()
    last = body["servers"][-1]["id"]
    assert body["servers_links"] == [
        {
            "rel": "next",
            "href": f"{sim.base_url}/{REGION}/compute/v2.1/servers/detail"
            f"?all_tenants=True&limit=3&status=ACTIVE&marker={last}",
        }
    ]


def test_a_full_last_page_still_has_a_next_link_and_the_page_after_is_empty(admin, region):
    total = len(region.servers)
    body = get(admin, f"/servers?all_tenants=True&limit={total}").json()
    assert len(body["servers"]) == total
    following = get(admin, body["servers_links"][0]["href"]).json()
    assert following == {"servers": []}


def test_sdk_lists_every_server_of_every_project(admin, region):
    ids = [s.id for s in admin.compute.servers(all_projects=True, limit=7)]
    assert sorted(ids) == sorted(region.servers)


def test_without_all_tenants_an_admin_sees_only_the_admin_project(admin, sim, region):
    admin_project = _project_id(sim, "admin")
    body = get(admin, "/servers").json()
    expected = [s["id"] for s in region.servers.values() if s["tenant_id"] == admin_project]
    assert sorted(s["id"] for s in body["servers"]) == sorted(expected)


def test_a_member_sees_the_servers_of_their_project_only(sim, region):
    member = _member_login(sim, "alpha-01")
    project = _project_id(sim, "alpha-01")
    body = get(member, "/servers/detail").json()
    expected = sorted(s["id"] for s in region.servers.values() if s["tenant_id"] == project)
    assert expected
    assert sorted(s["id"] for s in body["servers"]) == expected
    assert all("OS-EXT-SRV-ATTR:host" not in s for s in body["servers"])


def test_a_member_asking_for_all_tenants_is_forbidden(sim):
    member = _member_login(sim, "alpha-01")
    response = get(member, "/servers/detail?all_tenants=True")
    assert response.status_code == 403
    assert response.json() == {
        "forbidden": {
            "code": 403,
            "message": "Policy doesn't allow os_compute_api:servers:detail:get_all_tenants "
            "to be performed.",
        }
    }


def test_status_filter_selects_servers_by_vm_state(admin, region):
    body = get(admin, "/servers/detail?all_tenants=True&status=SHUTOFF").json()
    expected = [s["id"] for s in region.servers.values() if s["OS-EXT-STS:vm_state"] == "stopped"]
    assert expected
    assert sorted(s["id"] for s in body["servers"]) == sorted(expected)


def test_host_and_name_filters(admin, region):
    server = _server_on_up_host(region)
    host = server["OS-EXT-SRV-ATTR:host"]
    by_host = get(admin, f"/servers?all_tenants=True&host={host}").json()["servers"]
    assert sorted(s["id"] for s in by_host) == sorted(
        s["id"] for s in region.servers.values() if s["OS-EXT-SRV-ATTR:host"] == host
    )
    # name is a regular expression
    pattern = "^" + server["name"][:-3]
    by_name = get(admin, f"/servers?all_tenants=True&name={pattern}").json()["servers"]
    assert server["id"] in [s["id"] for s in by_name]
    assert all(s["name"].startswith(server["name"][:-3]) for s in by_name)


def test_changes_since_returns_servers_updated_after_it(admin, region):
    server = _server_on_up_host(region)
    assert action(admin, server["id"], {"os-stop": None}).status_code == 202
    body = get(admin, "/servers?all_tenants=True&changes-since=2026-01-01T00:00:00Z").json()
    assert [s["id"] for s in body["servers"]] == [server["id"]]


def test_an_unknown_marker_is_a_bad_request(admin):
    response = get(admin, "/servers/detail?marker=no-such-server", version="2.1")
    assert response.status_code == 400
    assert response.json() == {
        "badRequest": {"code": 400, "message": "marker [no-such-server] not found"}
    }


def test_an_unknown_server_is_item_not_found(admin):
    response = get(admin, "/servers/7e0d1ec0-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json() == {
        "itemNotFound": {
            "code": 404,
            "message": "Instance 7e0d1ec0-0000-4000-8000-000000000000 could not be found.",
        }
    }


def test_calls_without_a_token_are_refused_but_version_discovery_is_not(sim):
    base = f"{sim.base_url}/{REGION}/compute"
    assert httpx.get(f"{base}/v2.1/servers").status_code == 401
    versions = httpx.get(f"{base}/").json()["versions"]
    assert versions[0]["id"] == "v2.1"
    assert versions[0]["version"] == LATEST
    doc = httpx.get(f"{base}/v2.1").json()["version"]
    assert (doc["min_version"], doc["version"]) == ("2.1", LATEST)


# -- microversions ----------------------------------------------------------------------


def test_no_version_header_means_2_1(admin):
    response = admin.compute.get("/flavors", raise_exc=False)
    assert response.headers["OpenStack-API-Version"] == "compute 2.1"
    assert response.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert "OpenStack-API-Version" in response.headers["Vary"]


def test_latest_and_the_legacy_header_are_understood(admin):
    latest = get(admin, "/flavors", headers={"OpenStack-API-Version": "compute latest"})
    assert latest.headers["OpenStack-API-Version"] == f"compute {LATEST}"
    legacy = admin.compute.get(
        "/flavors", headers={"X-OpenStack-Nova-API-Version": "2.60"}, raise_exc=False
    )
    assert legacy.headers["X-OpenStack-Nova-API-Version"] == "2.60"


def test_a_version_out_of_range_is_not_acceptable(admin):
    response = admin.compute.get(
        "/servers", headers={"OpenStack-API-Version": "compute 2.500"}, raise_exc=False
    )
    assert response.status_code == 406
    assert response.json() == {
        "computeFault": {
            "code": 406,
            "message": f"Version 2.500 is not supported by the API. Minimum is 2.1 and "
            f"maximum is {LATEST}.",
        }
    }
    assert response.headers["OpenStack-API-Version"] == "compute 2.500"


def test_a_malformed_version_is_a_bad_request(admin):
    response = admin.compute.get(
        "/servers", headers={"OpenStack-API-Version": "compute two"}, raise_exc=False
    )
    assert response.status_code == 400
    assert "badRequest" in response.json()


def test_server_shape_follows_the_microversion(admin, region):
    server = next(s for s in region.servers.values() if s["server_groups"])
    path = f"/servers/{server['id']}"
    old = get(admin, path, version="2.1").json()["server"]
    assert set(old["flavor"]) == {"id", "links"}
    flavor = region.flavors[old["flavor"]["id"]]
    assert flavor["name"] == server["flavor"]["original_name"]
    for field in ("locked", "tags", "description", "server_groups", "host_status"):
        assert field not in old
    assert get(admin, path, version="2.9").json()["server"]["locked"] is False
    assert "tags" in get(admin, path, version="2.26").json()["server"]
    new = get(admin, path, version="2.47").json()["server"]
    assert new["flavor"]["original_name"] == server["flavor"]["original_name"]
    assert "id" not in new["flavor"]
    latest = get(admin, path).json()["server"]
    assert latest["server_groups"] == server["server_groups"]
    listed = get(admin, f"/servers/detail?all_tenants=1&uuid={server['id']}").json()["servers"]
    assert "server_groups" not in listed[0]


# -- actions ----------------------------------------------------------------------------


def test_stop_then_start_shows_in_the_next_get(admin, region):
    server = _server_on_up_host(region)
    assert action(admin, server["id"], {"os-stop": None}).status_code == 202
    stopped = get(admin, f"/servers/{server['id']}").json()["server"]
    assert stopped["status"] == "SHUTOFF"
    assert stopped["OS-EXT-STS:vm_state"] == "stopped"
    assert stopped["OS-EXT-STS:power_state"] == 4
    assert stopped["OS-EXT-STS:task_state"] is None
    assert stopped["updated"] > server["created"]
    assert action(admin, server["id"], {"os-start": None}).status_code == 202
    assert get(admin, f"/servers/{server['id']}").json()["server"]["status"] == "ACTIVE"


def test_with_an_action_delay_the_task_state_shows_until_the_action_completes(admin, sim, region):
    sim.sim.action_delay = 0.3  # type: ignore[attr-defined]
    server = _server_on_up_host(region)
    assert action(admin, server["id"], {"os-stop": None}).status_code == 202
    during = get(admin, f"/servers/{server['id']}").json()["server"]
    assert (during["status"], during["OS-EXT-STS:task_state"]) == ("ACTIVE", "powering-off")
    assert action(admin, server["id"], {"os-start": None}).status_code == 409
    deadline = time.monotonic() + 5
    while get(admin, f"/servers/{server['id']}").json()["server"]["status"] != "SHUTOFF":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_stopping_a_stopped_server_is_a_conflict(admin, region):
    server = next(s for s in region.servers.values() if s["status"] == "SHUTOFF")
    response = action(admin, server["id"], {"os-stop": None})
    assert response.status_code == 409
    assert response.json() == {
        "conflictingRequest": {
            "code": 409,
            "message": f"Cannot 'stop' instance {server['id']} while it is in vm_state stopped",
        }
    }


def test_a_locked_server_refuses_its_owner_but_not_an_admin(admin, sim, region):
    project = _project_id(sim, "alpha-01")
    server = next(
        s for s in region.servers.values() if s["tenant_id"] == project and s["status"] == "ACTIVE"
    )
    member = _member_login(sim, "alpha-01")
    assert action(member, server["id"], {"lock": {"locked_reason": "audit"}}).status_code == 202
    shown = get(member, f"/servers/{server['id']}").json()["server"]
    assert (shown["locked"], shown["locked_reason"]) == (True, "audit")
    refused = action(member, server["id"], {"reboot": {"type": "SOFT"}})
    assert refused.status_code == 409
    assert refused.json()["conflictingRequest"]["message"] == f"Instance {server['id']} is locked"
    assert action(admin, server["id"], {"reboot": {"type": "HARD"}}).status_code == 202
    assert action(member, server["id"], {"unlock": None}).status_code == 202
    assert action(member, server["id"], {"reboot": {"type": "SOFT"}}).status_code == 202


def test_evacuate_is_refused_while_the_source_compute_service_is_up(admin, region):
    server = _server_on_up_host(region)
    response = action(admin, server["id"], {"evacuate": {}})
    assert response.status_code == 400
    host = server["OS-EXT-SRV-ATTR:host"]
    assert response.json()["badRequest"]["message"] == f"Compute service of {host} is still in use."


def _force_down(admin: Any, region: RegionState, host: str) -> None:
    service = _compute_service(region, host)
    response = admin.compute.put(
        f"/os-services/{service['id']}", json={"forced_down": True}, microversion="2.53"
    )
    assert response.json()["service"]["state"] == "down"


def test_evacuate_from_a_forced_down_host_moves_server_ports_and_usage(admin, region):
    server = _server_on_up_host(region)
    source = server["OS-EXT-SRV-ATTR:host"]
    source_rp = next(h["id"] for h in region.hypervisors.values() if h["service"]["host"] == source)
    before = dict(region.usages[source_rp])
    _force_down(admin, region, source)
    assert action(admin, server["id"], {"evacuate": {}}, version="2.95").status_code == 200
    moved = get(admin, f"/servers/{server['id']}").json()["server"]
    target = moved["OS-EXT-SRV-ATTR:host"]
    assert target != source
    # from 2.95 an evacuated server arrives stopped
    assert (moved["status"], moved["OS-EXT-STS:power_state"]) == ("SHUTOFF", 4)
    ports = [p for p in region.ports.values() if p["device_id"] == server["id"]]
    assert ports and all(p["binding:host_id"] == target for p in ports)
    resources = server_resources(server)
    after = region.usages[source_rp]
    assert all(after[rc] == before[rc] - amount for rc, amount in resources.items())
    target_rp = next(h["id"] for h in region.hypervisors.values() if h["service"]["host"] == target)
    allocation = admin.placement.get(f"/allocations/{server['id']}", microversion="1.12").json()
    assert list(allocation["allocations"]) == [target_rp]


def test_evacuate_before_2_95_keeps_a_running_server_running(admin, region):
    server = _server_on_up_host(region)
    _force_down(admin, region, server["OS-EXT-SRV-ATTR:host"])
    assert action(admin, server["id"], {"evacuate": {}}, version="2.94").status_code == 200
    assert get(admin, f"/servers/{server['id']}").json()["server"]["status"] == "ACTIVE"


def test_cold_migration_waits_for_confirm_resize_and_holds_the_source(admin, region):
    server = _server_on_up_host(region)
    source_node = server["OS-EXT-SRV-ATTR:hypervisor_hostname"]
    source_rp = next(
        h["id"] for h in region.hypervisors.values() if h["hypervisor_hostname"] == source_node
    )
    before = dict(region.usages[source_rp])
    assert action(admin, server["id"], {"migrate": None}).status_code == 202
    resized = get(admin, f"/servers/{server['id']}").json()["server"]
    assert resized["status"] == "VERIFY_RESIZE"
    assert resized["OS-EXT-SRV-ATTR:hypervisor_hostname"] != source_node
    assert region.usages[source_rp] == before
    assert action(admin, server["id"], {"confirmResize": None}).status_code == 204
    assert get(admin, f"/servers/{server['id']}").json()["server"]["status"] == "ACTIVE"
    resources = server_resources(server)
    assert all(region.usages[source_rp][rc] == before[rc] - n for rc, n in resources.items())
    migrations = get(admin, f"/os-migrations?instance_uuid={server['id']}").json()["migrations"]
    assert [(m["migration_type"], m["status"]) for m in migrations] == [("migration", "confirmed")]
    again = action(admin, server["id"], {"confirmResize": None})
    assert again.status_code == 409


def test_live_migration_to_a_named_host(admin, region):
    server = _server_on_up_host(region)
    target = next(
        s["host"]
        for s in region.compute_services.values()
        if s["binary"] == "nova-compute"
        and s["state"] == "up"
        and s["status"] == "enabled"
        and s["host"] != server["OS-EXT-SRV-ATTR:host"]
    )
    body = {"os-migrateLive": {"host": target, "block_migration": "auto"}}
    assert action(admin, server["id"], body).status_code == 202
    moved = get(admin, f"/servers/{server['id']}").json()["server"]
    assert (moved["OS-EXT-SRV-ATTR:host"], moved["status"]) == (target, "ACTIVE")


def test_create_image_adds_a_snapshot_image(admin, region):
    server = _server_on_up_host(region)
    response = action(admin, server["id"], {"createImage": {"name": "nightly"}})
    assert response.status_code == 202
    image = region.images[response.json()["image_id"]]
    assert (image["name"], image["status"], image["owner"]) == (
        "nightly",
        "active",
        server["tenant_id"],
    )
    assert image["instance_uuid"] == server["id"]


def test_delete_removes_the_server_and_its_ports(admin, region):
    server = _server_on_up_host(region)
    response = admin.compute.delete(f"/servers/{server['id']}", microversion=LATEST)
    assert response.status_code == 204
    assert get(admin, f"/servers/{server['id']}").status_code == 404
    assert not [p for p in region.ports.values() if p["device_id"] == server["id"]]


def test_metadata_and_tags_are_changed_in_place(admin, region):
    server = _server_on_up_host(region)
    path = f"/servers/{server['id']}"
    put = admin.compute.put(f"{path}/metadata", json={"metadata": {"team": "ops"}})
    assert put.json() == {"metadata": {"team": "ops"}}
    post = admin.compute.post(f"{path}/metadata", json={"metadata": {"tier": "gold"}})
    assert post.json() == {"metadata": {"team": "ops", "tier": "gold"}}
    added = admin.compute.put(f"{path}/tags/blue", microversion="2.26")
    assert added.status_code == 201
    assert admin.compute.put(f"{path}/tags/blue", microversion="2.26").status_code == 204
    shown = get(admin, path).json()["server"]
    assert shown["metadata"] == {"team": "ops", "tier": "gold"}
    assert "blue" in shown["tags"]
    assert admin.compute.delete(f"{path}/tags/blue", microversion="2.26").status_code == 204
    assert "blue" not in get(admin, path).json()["server"]["tags"]


def test_an_unknown_action_is_a_bad_request(admin, region):
    server = _server_on_up_host(region)
    response = action(admin, server["id"], {"fly": None})
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == "There is no such action: fly"


# -- flavors, hypervisors, services, groups ----------------------------------------------


def test_flavor_list_detail_and_extra_specs(admin, region):
    listed = get(admin, "/flavors?limit=3", version="2.1").json()
    assert [f["id"] for f in listed["flavors"]] == sorted(region.flavors)[:3]
    assert set(listed["flavors"][0]) == {"id", "name", "links"}
    assert "flavors_links" in listed
    detail = get(admin, "/flavors/detail?is_public=None").json()["flavors"]
    assert {f["id"] for f in detail} == set(region.flavors)
    pinned = next(f for f in region.flavors.values() if f["extra_specs"])
    specs = get(admin, f"/flavors/{pinned['id']}/os-extra_specs").json()
    assert specs == {"extra_specs": pinned["extra_specs"]}
    assert get(admin, "/flavors/nope").json() == {
        "itemNotFound": {"code": 404, "message": "Flavor nope could not be found."}
    }


def test_hypervisors_before_2_88_report_statistics_from_their_servers(admin, region):
    hypervisors = get(admin, "/os-hypervisors/detail", version="2.87").json()["hypervisors"]
    assert len(hypervisors) == len(region.hypervisors)
    for hypervisor in hypervisors:
        node = hypervisor["hypervisor_hostname"]
        servers = [
            s for s in region.servers.values() if s["OS-EXT-SRV-ATTR:hypervisor_hostname"] == node
        ]
        assert hypervisor["running_vms"] == len(servers)
        assert hypervisor["vcpus_used"] == sum(s["flavor"]["vcpus"] for s in servers)
        assert hypervisor["memory_mb"] == region.inventories[hypervisor["id"]]["MEMORY_MB"]["total"]
    latest = get(admin, "/os-hypervisors/detail").json()["hypervisors"][0]
    assert "vcpus" not in latest and "running_vms" not in latest
    assert "uptime" in latest


def test_hypervisor_ids_are_integers_before_2_53_and_uuids_after(admin, region):
    old = get(admin, "/os-hypervisors", version="2.52").json()["hypervisors"]
    assert [h["id"] for h in old] == list(range(1, len(region.hypervisors) + 1))
    assert (
        get(admin, "/os-hypervisors/1", version="2.52").json()["hypervisor"]["hypervisor_hostname"]
        == old[0]["hypervisor_hostname"]
    )
    new = get(admin, "/os-hypervisors", version="2.53").json()["hypervisors"]
    assert [h["id"] for h in new] == list(region.hypervisors)


def test_hypervisor_paging_and_servers(admin, region):
    first = get(admin, "/os-hypervisors?limit=4", version="2.53").json()
    href = first["hypervisors_links"][0]["href"]
    rest = get(admin, href, version="2.53").json()
    ids = [h["id"] for h in first["hypervisors"] + rest["hypervisors"]]
    assert ids == list(region.hypervisors)
    hypervisor_id = ids[0]
    node = region.hypervisors[hypervisor_id]["hypervisor_hostname"]
    shown = get(admin, f"/os-hypervisors/{hypervisor_id}?with_servers=true").json()
    expected = {
        s["id"] for s in region.servers.values() if s["OS-EXT-SRV-ATTR:hypervisor_hostname"] == node
    }
    assert {s["uuid"] for s in shown["hypervisor"]["servers"]} == expected
    assert get(admin, "/os-hypervisors/not-a-uuid").status_code == 400


def test_disabling_and_forcing_down_a_service_changes_its_hypervisor(admin, region):
    hypervisor = next(h for h in region.hypervisors.values() if h["state"] == "up")
    service = _compute_service(region, hypervisor["service"]["host"])
    path = f"/os-services/{service['id']}"
    disabled = admin.compute.put(
        path, json={"status": "disabled", "disabled_reason": "drain"}, microversion="2.53"
    ).json()["service"]
    assert (disabled["status"], disabled["disabled_reason"]) == ("disabled", "drain")
    admin.compute.put(path, json={"forced_down": True}, microversion="2.53")
    shown = get(admin, f"/os-hypervisors/{hypervisor['id']}").json()["hypervisor"]
    assert (shown["status"], shown["state"]) == ("disabled", "down")
    assert shown["service"]["disabled_reason"] == "drain"
    services = get(admin, f"/os-services?host={service['host']}").json()["services"]
    assert [(s["state"], s["forced_down"]) for s in services] == [("down", True)]
    conflict = admin.compute.put(
        path,
        json={"status": "enabled", "disabled_reason": "x"},
        microversion="2.53",
        raise_exc=False,
    )
    assert conflict.status_code == 400


def test_a_server_forced_onto_a_disabled_host_gets_no_valid_host(admin, region):
    """As Nova since Train: `zone:host` skips the scheduler's filters but not Placement,
    which is asked for compute nodes without COMPUTE_STATUS_DISABLED (measured on the
    real testbed: a canary forced onto a drained host went to ERROR, NoValidHost)."""
    hypervisor = next(h for h in region.hypervisors.values() if h["state"] == "up")
    host = hypervisor["service"]["host"]
    service = _compute_service(region, host)
    path = f"/os-services/{service['id']}"
    flavor = min(region.flavors.values(), key=lambda f: f["ram"])
    image = next(iter(region.images))

    def boot(name: str) -> Obj:
        body = {
            "name": name,
            "flavorRef": flavor["id"],
            "imageRef": image,
            "availability_zone": f"{service['zone']}:{host}",
            "networks": "none",
        }
        created = admin.compute.post("/servers", json={"server": body}, microversion="2.37")
        assert created.status_code == 202
        return get(admin, f"/servers/{created.json()['server']['id']}").json()["server"]

    admin.compute.put(
        path, json={"status": "disabled", "disabled_reason": "drain"}, microversion="2.53"
    )
    refused = boot("forced-on-disabled")
    assert refused["status"] == "ERROR"
    assert refused["fault"]["message"].startswith("No valid host was found.")
    assert refused["OS-EXT-SRV-ATTR:host"] is None
    admin.compute.put(path, json={"status": "enabled"}, microversion="2.53")
    placed = boot("forced-on-enabled")
    assert (placed["status"], placed["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", host)


def test_services_list_filters_by_binary(admin, region):
    services = get(admin, "/os-services?binary=nova-compute").json()["services"]
    assert len(services) == len(region.hypervisors)
    assert {s["binary"] for s in services} == {"nova-compute"}
    old = get(admin, "/os-services", version="2.1").json()["services"]
    assert all(isinstance(s["id"], int) and "forced_down" not in s for s in old)


def test_server_groups_all_projects_and_shape(admin, sim, region):
    mine = get(admin, "/os-server-groups").json()["server_groups"]
    assert mine == []
    everything = get(admin, "/os-server-groups?all_projects=True").json()["server_groups"]
    assert {g["id"] for g in everything} == set(region.server_groups)
    page = get(admin, "/os-server-groups?all_projects=True&limit=1&offset=1").json()
    assert [g["id"] for g in page["server_groups"]] == list(region.server_groups)[1:2]
    group = everything[0]
    old = get(admin, f"/os-server-groups/{group['id']}", version="2.1").json()["server_group"]
    assert old["policies"] == [group["policy"]] and "policy" not in old


def test_availability_zones_limits_and_quotas(admin, sim):
    zones = get(admin, "/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]
    detail = get(admin, "/os-availability-zone/detail").json()["availabilityZoneInfo"]
    assert {z["zoneName"] for z in detail} == {"internal", "nova"}
    project = _project_id(sim, "alpha-01")
    usage = get(admin, f"/limits?tenant_id={project}").json()["limits"]["absolute"]
    servers = [s for s in sim.state.regions[REGION].servers.values() if s["tenant_id"] == project]
    assert usage["totalInstancesUsed"] == len(servers)
    quota = get(admin, f"/os-quota-sets/{project}/detail").json()["quota_set"]
    assert quota["instances"]["in_use"] == len(servers)


# -- the openstack CLI ------------------------------------------------------------------


@pytest.fixture
def cli(sim: SimulatorServer, tmp_path: Path):
    clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml", cloud_name="sim")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds), "OS_CLOUD": "sim"}

    def run(*args: str) -> str:
        result = subprocess.run(
            [str(OPENSTACK_CLI), *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run


def test_cli_server_list_all_projects(cli, region):
    output = cli("server", "list", "--all-projects", "-f", "value", "-c", "ID")
    assert sorted(output.split()) == sorted(region.servers)


def test_cli_hypervisor_and_compute_service_lists(cli, region):
    hypervisors = cli("hypervisor", "list", "-f", "value", "-c", "Hypervisor Hostname")
    assert sorted(hypervisors.split()) == sorted(
        h["hypervisor_hostname"] for h in region.hypervisors.values()
    )
    services = cli("compute", "service", "list", "-f", "value", "-c", "ID")
    assert sorted(services.split()) == sorted(region.compute_services)


def test_cli_flavor_list(cli, region):
    names = cli("flavor", "list", "-f", "value", "-c", "Name").split()
    assert sorted(names) == sorted(f["name"] for f in region.flavors.values())


def test_cli_server_stop_and_start(cli, region):
    server = _server_on_up_host(region)
    cli("server", "stop", server["id"])
    assert cli("server", "show", server["id"], "-f", "value", "-c", "status").strip() == "SHUTOFF"
    cli("server", "start", server["id"])
    assert region.servers[server["id"]]["status"] == "ACTIVE"
