"""Capacity planning end to end: a pass and a quota sweep over the simulated cloud, then
the CLI and the API report what the generator made — a nearly exhausted public network,
a project near its cores quota, PCPU apart from VCPU, the L3/DHCP agents' hosting."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support import run_cli

from stackfleet.api.app import create_app
from stackfleet.engine.collect import collect
from stackfleet.engine.loop import CloudSpec
from stackfleet.engine.quota_sweep import QuotaSweepLoop, sweep_cloud
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer, write_clouds_yaml
from stackfleet.store import open_store

CLOUD = "capsim"


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Any:
    workdir = tmp_path_factory.mktemp("capacity")
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        url = f"sqlite:///{workdir / 'stackfleet.db'}"
        store = open_store(url)
        [result] = collect(store, CLOUD, config_files=[str(clouds)])
        assert result.status == "complete", result.error
        sweeps = sweep_cloud(store, CloudSpec(CLOUD, config_files=[str(clouds)]))
        yield server, clouds, store, url, sweeps
        store.close()


def _region(server: SimulatorServer) -> Any:
    return server.state.regions["RegionOne"]


def _truth(server: SimulatorServer, scenario: str) -> list[str]:
    return server.state.ground_truth["RegionOne"][scenario]


def _cli_json(url: str, *args: str) -> Any:
    result = run_cli("--db-url", url, "capacity", *args, "-f", "json")
    assert result.code == 0, result.stderr
    return result.json()


def test_the_quota_sweep_reads_three_services_for_each_project_with_resources(swept) -> None:
    server, _, _, _, [sweep] = swept
    owners = {s["tenant_id"] for s in _region(server).servers.values()}
    assert sweep.projects >= len(owners)
    assert sweep.failed == []
    assert sweep.requests == 3 * sweep.projects


def test_a_second_sweep_within_the_interval_reads_nothing(swept) -> None:
    _, clouds, store, _, [first] = swept
    [again] = sweep_cloud(store, CloudSpec(CLOUD, config_files=[str(clouds)]))
    assert (again.projects, again.skipped, again.requests) == (0, first.projects, 0)


def test_the_serve_loop_sweeps_only_what_is_due(swept) -> None:
    _, clouds, store, _, [first] = swept
    loop = QuotaSweepLoop(store, [CloudSpec(CLOUD, config_files=[str(clouds)])])
    [result] = loop.run_once()
    assert (result.projects, result.skipped) == (0, first.projects)


def test_a_quota_interval_beyond_the_sample_retention_is_refused(swept) -> None:
    _, _, _, url, _ = swept
    result = run_cli(
        "--db-url", url, "capacity", "sweep", "--os-cloud", CLOUD, "--quota-interval", "86400"
    )
    assert result.code != 0
    assert "quota_interval" in result.stderr and "Traceback" not in result.stderr


def test_ip_pools_show_the_nearly_exhausted_public_network(swept) -> None:
    server, _, _, url, _ = swept
    region = _region(server)
    [network_id] = _truth(server, "nearly_exhausted_external_networks")
    subnet = next(s for s in region.subnets.values() if s["network_id"] == network_id)
    pool = subnet["allocation_pools"][0]
    total = int(ipaddress.ip_address(pool["end"])) - int(ipaddress.ip_address(pool["start"])) + 1
    used = sum(
        1
        for port in region.ports.values()
        for ip in port["fixed_ips"]
        if ip["subnet_id"] == subnet["id"]
    )
    rows = {r["network_id"]: r for r in _cli_json(url, "ips")}
    assert set(rows) == {n["id"] for n in region.networks.values() if n["router:external"]}
    assert (rows[network_id]["used"], rows[network_id]["total"]) == (used, total)
    assert rows[network_id]["state"] == "high"
    [detail] = rows[network_id]["subnets"]
    assert (detail["subnet_id"], detail["used"], detail["total"]) == (subnet["id"], used, total)


def test_quotas_show_the_project_near_its_cores_quota(swept) -> None:
    server, _, _, url, _ = swept
    region = _region(server)
    [project] = _truth(server, "projects_near_cores_quota")
    cores = sum(s["flavor"]["vcpus"] for s in region.servers.values() if s["tenant_id"] == project)
    rows = {r["resource"]: r for r in _cli_json(url, "quotas", "--project", project)}
    assert rows["cores"]["used"] == cores
    assert rows["cores"]["limit"] == region.quotas["compute"][project]["cores"]
    assert rows["cores"]["state"] == "high"
    # the simulator's Nova reports instances and RAM unlimited
    assert rows["instances"]["state"] == "unlimited"
    # Cinder's default of 10 volumes is a number, not unknown
    assert rows["volumes"]["limit"] == 10


def _placement_free(region: Any, rp: str, rc: str) -> int:
    inventory = region.inventories[rp].get(rc)
    if not inventory:
        return 0
    capacity = int((inventory["total"] - inventory["reserved"]) * inventory["allocation_ratio"])
    return capacity - region.usages[rp].get(rc, 0)


def _usable(region: Any) -> list[str]:
    return [
        h["id"]
        for h in region.hypervisors.values()
        if h["state"] == "up" and h["status"] == "enabled"
    ]


def test_flavor_fit_matches_placement_of_the_usable_hosts(swept) -> None:
    server, _, _, url, _ = swept
    region = _region(server)
    rows = {r["flavor"]: r for r in _cli_json(url, "flavors")}
    for flavor in region.flavors.values():
        cpu = "PCPU" if flavor["extra_specs"].get("hw:cpu_policy") == "dedicated" else "VCPU"
        demand = {cpu: flavor["vcpus"], "MEMORY_MB": flavor["ram"], "DISK_GB": flavor["disk"]}
        expected = sum(
            min(_placement_free(region, rp, rc) // amount for rc, amount in demand.items())
            for rp in _usable(region)
        )
        assert rows[flavor["name"]]["fits"] == expected, flavor["name"]
    assert rows["c1.pinned-8"]["cpu"] == "dedicated"


def test_the_report_counts_pcpu_apart_and_survives_losing_a_host(swept) -> None:
    server, _, _, url, _ = swept
    region = _region(server)
    [row] = _cli_json(url, "report")
    pcpu = sum(region.inventories[rp].get("PCPU", {}).get("total", 0) for rp in _usable(region))
    assert row["pcpu_capacity"] == pcpu > 0
    assert row["usable_hosts"] == len(_usable(region))
    assert row["n1_survives"] is True
    assert row["n1_unplaced_servers"] == []


@pytest.mark.parametrize(
    "command",
    [
        ["report"],
        ["report", "--hosts"],
        ["flavors", "--zones"],
        ["quotas"],
        ["ips", "--all-networks"],
        ["network"],
        ["network", "--single"],
        ["storage"],
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("fmt", ["table", "csv", "yaml"])
def test_every_capacity_view_prints_in_every_format(swept, command, fmt) -> None:
    _, _, _, url, _ = swept
    result = run_cli("--db-url", url, "capacity", *command, "-f", fmt)
    assert result.code == 0, result.stderr
    assert "RegionOne" in result.stdout


def test_single_agent_view_lists_the_networks_one_dhcp_agent_serves(swept) -> None:
    server, _, _, url, _ = swept
    region = _region(server)
    # the generator gives every tenant network one DHCP port, on one network node (the
    # first gets a second one, on another node)
    ports = [p["network_id"] for p in region.ports.values() if p["device_owner"] == "network:dhcp"]
    dhcp = {n for n in ports if ports.count(n) == 1}
    assert len(dhcp) < len(set(ports))
    rows = _cli_json(url, "network", "--single")
    assert {r["id"] for r in rows if r["kind"] == "network"} == dhcp
    assert all(r["agents"] == 1 for r in rows)


def test_nodes_show_a_network_node_with_what_its_agents_host(swept) -> None:
    server, _, _, url, _ = swept
    region = _region(server)
    result = run_cli("--db-url", url, "nodes", "show", "net01", "-f", "json")
    assert result.code == 0, result.stderr
    agents = {a["agent"].split(" (")[0]: a for a in result.json()["network_agents"]}
    routed = {
        region.routers[p["device_id"]]["name"]
        for p in region.ports.values()
        if p["binding:host_id"] == "net01" and p["device_owner"] == "network:router_gateway"
    }
    assert set(agents["L3 agent"]["routers"]) == routed
    assert agents["DHCP agent"]["networks"]


def test_nodes_show_a_storage_host_with_its_pools(swept) -> None:
    server, _, _, url, _ = swept
    region = _region(server)
    pool = region.pools[0]
    host = pool["name"].split("@")[0]
    result = run_cli("--db-url", url, "nodes", "show", host, "-f", "json")
    assert result.code == 0, result.stderr
    [shown] = [p for p in result.json()["storage_pools"] if p["pool"] == pool["name"]]
    volumes = sum(1 for v in region.volumes.values() if v["os-vol-host-attr:host"] == pool["name"])
    assert shown["volumes"] == volumes


def test_the_api_and_metrics_give_the_same_answers(swept) -> None:
    server, _, store, url, _ = swept
    client = TestClient(create_app(store))
    [network_id] = _truth(server, "nearly_exhausted_external_networks")
    ips = client.get("/v1/capacity/ips").json()["items"]
    assert [r["network_id"] for r in ips if r["state"] == "high"] == [network_id]
    report = client.get("/v1/capacity").json()["regions"]
    assert report[0]["n_plus_one"]["survives"] is True
    flavors = {r["flavor"]: r["fits"] for r in client.get("/v1/capacity/flavors").json()["items"]}
    [project] = _truth(server, "projects_near_cores_quota")
    quotas = client.get("/v1/capacity/quotas", params={"project": project}).json()["items"]
    assert {r["resource"]: r["state"] for r in quotas}["cores"] == "high"
    metrics = client.get("/metrics").text
    labels = f'cloud="{CLOUD}",flavor="m1.tiny",region="RegionOne"'
    assert f"stackfleet_capacity_flavor_fit{{{labels}}} {float(flavors['m1.tiny'])}" in metrics
    assert f'network_id="{network_id}"' in metrics
    assert "stackfleet_quota_limit{" in metrics
    assert "stackfleet_capacity_n_plus_one_survives{" in metrics


def test_quotas_a_member_may_not_read_are_unknown_not_zero(swept, tmp_path) -> None:
    """A later failed read (403 to a member) makes the earlier limits unknown: in a
    store of its own, so the other tests keep the admin's readings."""
    server, admin_clouds, _, _, _ = swept
    state = server.state
    member = next(u for u in state.users.values() if u["name"].endswith("-user"))
    own = member["default_project_id"]
    other = next(s["tenant_id"] for s in _region(server).servers.values() if s["tenant_id"] != own)
    entry = dataclasses.replace(
        server.cloud_entry(),
        username=member["name"],
        password=state.passwords[member["id"]],
        project_name=state.projects[own]["name"],
    )
    # (its system-scoped twin under another name: a member has no system role)
    member_clouds = write_clouds_yaml(
        entry, tmp_path / "clouds.yaml", CLOUD, system_scope_name="member-system"
    )
    url = f"sqlite:///{tmp_path / 'member.db'}"
    store = open_store(url)
    try:
        [first] = sweep_cloud(
            store, CloudSpec(CLOUD, config_files=[str(admin_clouds)]), projects=[other]
        )
        assert first.failed == []
        before = {r["resource"]: r for r in _cli_json(url, "quotas", "--project", other)}
        assert before["volumes"]["limit"] == 10
        [second] = sweep_cloud(
            store,
            CloudSpec(CLOUD, config_files=[str(member_clouds)]),
            projects=[other],
            force=True,
        )
    finally:
        store.close()
    assert len(second.failed) == 3 and all("403" in f for f in second.failed)
    rows = _cli_json(url, "quotas", "--project", other)
    assert rows and {r["state"] for r in rows} == {"unknown"}
    assert all(r["limit"] is None and "failed" in r["error"] for r in rows)
