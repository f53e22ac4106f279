"""Inventory end to end: the simulator serves a seeded two-region cloud, a pass collects
it through openstacksdk, and the store, CLI and API show exactly what the generator made
(its ground truth)."""

from __future__ import annotations

import gc
import threading
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from support import run_cli

from stackfleet.api.app import create_app
from stackfleet.engine.collect import collect
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack import ListContext
from stackfleet.sources.openstack.connection import connect
from stackfleet.sources.openstack.listing import ListingError, RequestLog
from stackfleet.sources.openstack.placement import provider_usage
from stackfleet.store import open_store

CLOUD = "sim"

# kind -> the RegionState collection it comes from
COLLECTIONS = {
    "server": "servers",
    "flavor": "flavors",
    "hypervisor": "hypervisors",
    "compute_service": "compute_services",
    "server_group": "server_groups",
    "network": "networks",
    "subnet": "subnets",
    "port": "ports",
    "floating_ip": "floatingips",
    "router": "routers",
    "network_agent": "agents",
    "security_group": "security_groups",
    "security_group_rule": "security_group_rules",
    "volume": "volumes",
    "block_storage_service": "volume_services",
    "storage_pool": "pools",
    "image": "images",
    "baremetal_node": "nodes",
}


@pytest.fixture(scope="module")
def collected(two_region_cloud, tmp_path_factory):
    server, clouds = two_region_cloud
    db = tmp_path_factory.mktemp("store") / "stackfleet.db"
    url = f"sqlite:///{db}"
    store = open_store(url)
    results = collect(store, CLOUD, config_files=[str(clouds)])
    yield server, clouds, store, url, results
    store.close()


def test_every_region_is_collected_completely(collected):
    server, _, _, _, results = collected
    assert sorted(r.region for r in results) == sorted(server.state.regions)
    assert all(r.status == "complete" for r in results), [r.error for r in results]


def test_store_holds_every_resource_of_every_kind(collected):
    server, _, store, _, _ = collected
    for region_name, region in server.state.regions.items():
        for kind_name, attr in COLLECTIONS.items():
            expected = len(getattr(region, attr))
            _, total = store.list_resources(kind_name, region=region_name)
            assert total == expected, (region_name, kind_name)
    _, projects = store.list_resources("project")
    assert projects == len(server.state.projects) * len(server.state.regions)


def test_list_calls_are_paged_not_per_resource(collected):
    _, _, _, _, results = collected
    for result in results:
        per_resource = {k: n for k, n in result.requests.items() if "{" in k}
        # only Placement's per-provider reads are per resource (no bulk API exists), and
        # what each L3 / DHCP agent hosts (no bulk API either; agents are few)
        assert all(
            k.startswith("placement") or k.startswith("network GET /agents/{uuid}/")
            for k in per_resource
        ), per_resource


def test_server_fields_match_nova(collected):
    server, _, store, _, _ = collected
    region_name, region = next(iter(server.state.regions.items()))
    rows, _ = store.list_resources("server", region=region_name)
    by_id = {r["id"]: r for r in rows}
    for sid, nova in region.servers.items():
        record = by_id[sid]
        assert record["status"] == nova["status"]
        assert record["host"] == nova["OS-EXT-SRV-ATTR:host"]
        assert record["project_id"] == nova["tenant_id"]
        assert record["flavor_name"] == nova["flavor"]["original_name"]


def test_hypervisor_usage_comes_from_placement(collected):
    server, _, store, _, _ = collected
    region_name, region = next(iter(server.state.regions.items()))
    rows, _ = store.list_resources("hypervisor", region=region_name)
    for row in rows:
        usage = region.usages[row["id"]]
        inventory = region.inventories[row["id"]]["VCPU"]
        assert row["vcpu_used"] == usage.get("VCPU", 0)
        assert row["vcpu_capacity"] == int(
            (inventory["total"] - inventory["reserved"]) * inventory["allocation_ratio"]
        )


def test_down_hosts_and_error_servers_match_ground_truth(collected):
    server, _, store, _, _ = collected
    for region_name, truth in server.state.ground_truth.items():
        down, _ = store.list_resources("hypervisor", {"state": "down"}, region=region_name)
        assert sorted(h["id"] for h in down) == truth["down_hypervisors"]
        errors, _ = store.list_resources("server", {"status": "ERROR"}, region=region_name)
        assert sorted(s["id"] for s in errors) == truth["error_servers"]


def test_relations_link_a_server_to_its_ports_and_host(collected):
    server, _, store, _, _ = collected
    region_name, region = next(iter(server.state.regions.items()))
    nova = next(s for s in region.servers.values() if s["status"] == "ACTIVE")
    detail = store.get_resource("server", nova["id"], region=region_name)
    ports = sorted(p["id"] for p in region.ports.values() if p["device_id"] == nova["id"])
    assert sorted(p["id"] for p in detail["relations"]["ports"]) == ports
    [hypervisor] = detail["relations"]["hypervisor"]
    assert hypervisor["name"] == nova["OS-EXT-SRV-ATTR:hypervisor_hostname"]


def test_a_floating_ip_relates_to_the_server_behind_its_port(collected):
    server, _, store, _, _ = collected
    region_name, region = next(iter(server.state.regions.items()))
    fip = next(
        f
        for f in region.floatingips.values()
        if f.get("port_id")
        and region.ports[f["port_id"]].get("device_owner", "").startswith("compute:")
    )
    nova_id = region.ports[fip["port_id"]]["device_id"]
    detail = store.get_resource("floating_ip", fip["id"], region=region_name)
    assert [s["id"] for s in detail["relations"]["server"]] == [nova_id]
    nova = store.get_resource("server", nova_id, region=region_name)
    assert fip["id"] in {f["id"] for f in nova["relations"]["floating_ips"]}
    unattached = next(f for f in region.floatingips.values() if not f.get("port_id"))
    free = store.get_resource("floating_ip", unattached["id"], region=region_name)
    assert free["server_id"] is None and free["relations"]["server"] == []


def test_cli_lists_servers_by_status_as_json(collected):
    server, _, _, url, _ = collected
    result = run_cli("--db-url", url, "servers", "list", "--status", "error", "-f", "json")
    assert result.code == 0, result.stderr
    expected = sorted(i for t in server.state.ground_truth.values() for i in t["error_servers"])
    assert sorted(r["id"] for r in result.json()) == expected


def test_cli_lists_servers_of_a_project_given_by_name_or_id(collected):
    server, _, store, url, _ = collected
    project = next(p for p in store.list_resources("project")[0] if p["name"] != "admin")
    expected = sorted(
        s["id"]
        for r in server.state.regions.values()
        for s in r.servers.values()
        if s["tenant_id"] == project["id"]
    )
    assert expected
    for given in (project["name"], project["id"]):
        result = run_cli("--db-url", url, "servers", "list", "--project", given, "-f", "json")
        assert result.code == 0, result.stderr
        assert sorted(r["id"] for r in result.json()) == expected


def test_cli_hypervisors_list_csv_has_a_row_per_host(collected):
    server, _, _, url, _ = collected
    result = run_cli("--db-url", url, "hypervisors", "list", "-f", "csv")
    assert result.code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("name,state,enabled")
    assert len(lines) - 1 == sum(len(r.hypervisors) for r in server.state.regions.values())


def test_cli_summary_counts_servers_by_status(collected):
    server, _, _, url, _ = collected
    result = run_cli("--db-url", url, "summary", "-f", "json")
    assert result.code == 0, result.stderr
    expected = Counter(
        s["status"] for r in server.state.regions.values() for s in r.servers.values()
    )
    assert result.json()["servers_by_status"] == dict(expected)


def test_api_filters_and_pages_resources(collected):
    server, _, store, _, _ = collected
    client = TestClient(create_app(store))
    truth = server.state.ground_truth
    region_name = next(iter(truth))
    response = client.get(
        "/v1/resources", params={"kind": "hypervisor", "state": "down", "region": region_name}
    )
    assert response.status_code == 200
    assert (
        sorted(h["id"] for h in response.json()["items"]) == truth[region_name]["down_hypervisors"]
    )
    page = client.get("/v1/resources", params={"kind": "port", "limit": 7}).json()
    assert len(page["items"]) == 7 and page["total"] == sum(
        len(r.ports) for r in server.state.regions.values()
    )


def test_api_summary_and_metrics_report_the_fleet(collected):
    server, _, store, _, _ = collected
    client = TestClient(create_app(store))
    summary = client.get("/v1/summary").json()
    hosts = sum(len(r.hypervisors) for r in server.state.regions.values())
    assert summary["hypervisors"]["total"] == hosts
    metrics = client.get("/metrics").text
    assert "stackfleet_hypervisor_vcpus_used" in metrics


def test_community_images_of_other_projects_are_collected(tmp_path):
    """Glance leaves other projects' community images out of a plain image list."""
    with SimulatorServer(preset("small", images=24)) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        try:
            [result] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["image"])
            rows, _ = store.list_resources("image")
        finally:
            store.close()
    [region] = server.state.regions.values()
    assert any(i["visibility"] == "community" for i in region.images.values())
    assert result.status == "complete"
    assert {r["id"] for r in rows} == set(region.images)


def test_placement_reads_stop_once_cancelled(two_region_cloud):
    """A failed Nova hypervisor listing cancels the Placement reads running beside it:
    no provider is read after that."""
    _, clouds = two_region_cloud
    [target] = connect(CLOUD, "RegionOne", config_files=[str(clouds)])
    ctx = ListContext(target, RequestLog())
    cancelled = threading.Event()
    cancelled.set()

    with pytest.raises(ListingError, match="cancelled"):
        provider_usage(ctx, {}, cancelled)

    assert dict(ctx.log.counts) == {"placement GET /resource_providers": 1}


def test_a_pass_pauses_the_garbage_collector_and_restores_it(two_region_cloud, tmp_path):
    """The cyclic garbage collector is off while a pass holds its records, and back in
    the state the pass found it in afterwards (a serving process must not be left
    without it)."""
    _, clouds = two_region_cloud
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    during: list[bool] = []
    try:
        assert gc.isenabled()
        collect(
            store,
            CLOUD,
            config_files=[str(clouds)],
            kinds=["flavor"],
            progress=lambda target, listing: during.append(gc.isenabled()),
        )
        assert during and not any(during)
        assert gc.isenabled()
        gc.disable()
        collect(store, CLOUD, config_files=[str(clouds)], kinds=["flavor"])
        assert not gc.isenabled()
    finally:
        gc.enable()
        store.close()


def test_a_pass_that_drops_stored_records_keeps_their_counts(two_region_cloud, tmp_path):
    """What the daemon and the CLI run: each kind's records leave the pass result once
    stored (a pass holds one kind's records at a time), the store holds them all, and
    the result still says how many were listed."""
    server, clouds = two_region_cloud
    store = open_store(f"sqlite:///{tmp_path / 'lean.db'}")
    try:
        results = collect(store, CLOUD, config_files=[str(clouds)], keep_records=False)
        for result in results:
            region = server.state.regions[result.region]
            assert result.status == "complete", result.error
            for kind_name, attr in COLLECTIONS.items():
                listing = result.listings[kind_name]
                assert listing.records == []
                assert listing.count == len(getattr(region, attr)), kind_name
                _, total = store.list_resources(kind_name, region=result.region)
                assert total == listing.count, kind_name
    finally:
        store.close()
