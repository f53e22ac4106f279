"""Policies end to end against the simulated cloud: the built-in packs find the mess the
generator seeded (its ground truth), `--execute` changes the cloud through openstacksdk
with audit entries, and an incomplete pass blocks actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from support import run_cli

from stackfleet.core.times import parse_time
from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.policies import PolicyRunner
from stackfleet.policy import load_files, load_text
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store
from stackfleet.store.metrics import Sample, record_samples

# openstacksdk warns about its own internals on every call
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One collected small cloud (ages relative to now), evaluated by all packs."""
    workdir = tmp_path_factory.mktemp("packs")
    with SimulatorServer(preset("small", now=NOW)) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        store = open_store(f"sqlite:///{workdir / 'store.db'}")
        collect(store, CLOUD, config_files=[str(clouds)])
        policies = load_files(["pack:waste", "pack:security", "pack:ha"])
        report = PolicyRunner(store, connections=Connections([str(clouds)])).run(policies)
        matched = {p.policy.name: sorted(r["id"] for r in p.matched) for p in report.policies}
        yield server, store, matched
        store.close()


@pytest.fixture
def cloud(tmp_path):
    """A fresh small cloud (actions change it) and the environment for the CLI."""
    with SimulatorServer(preset("small", now=NOW)) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        env = {
            "STACKFLEET_DB_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_CONFIG": str(tmp_path / "none.yaml"),
        }
        (tmp_path / "none.yaml").write_text("{}\n")
        yield server, clouds, env


def truth(server: SimulatorServer, scenario: str) -> list[str]:
    return server.state.ground_truth["RegionOne"][scenario]


def older_than(objects: dict, ids: list[str], field: str, days: int) -> list[str]:
    return sorted(i for i in ids if parse_time(objects[i][field]) < NOW - timedelta(days=days))


def test_waste_pack_finds_servers_shutoff_for_over_30_days(seeded):
    server, _store, matched = seeded
    assert matched["shutoff-servers"] == truth(server, "long_shutoff_servers")
    assert not set(matched["shutoff-servers"]) & set(truth(server, "recent_shutoff_servers"))


def test_waste_pack_finds_floating_ips_unattached_for_over_7_days(seeded):
    server, _store, matched = seeded
    region = server.state.regions["RegionOne"]
    expected = older_than(
        region.floatingips, truth(server, "unattached_floating_ips"), "updated_at", 7
    )
    assert expected
    assert matched["unattached-floating-ips"] == expected


def test_waste_pack_finds_volumes_available_for_over_30_days(seeded):
    server, _store, matched = seeded
    assert matched["available-volumes"] == truth(server, "long_available_volumes")
    assert not set(matched["available-volumes"]) & set(truth(server, "recent_available_volumes"))


def test_waste_pack_finds_down_unbound_ports(seeded):
    server, _store, matched = seeded
    assert matched["down-unbound-ports"] == truth(server, "down_unbound_ports")


def test_waste_pack_finds_images_unused_for_90_days(seeded):
    server, _store, matched = seeded
    region = server.state.regions["RegionOne"]
    unused = [i for i in truth(server, "unused_images") if not region.images[i]["protected"]]
    assert matched["unused-images"] == older_than(region.images, unused, "created_at", 90)


def test_security_pack_finds_ssh_open_to_the_world(seeded):
    server, _store, matched = seeded
    assert matched["ssh-open-to-world"] == truth(server, "open_ssh_security_group_rules")


def test_ha_pack_finds_nearly_full_hypervisors_and_servers_on_down_hosts(seeded):
    server, _store, matched = seeded
    assert matched["hypervisors-over-allocated"] == truth(server, "nearly_full_hypervisors")
    assert matched["servers-on-down-hosts"] == truth(server, "servers_on_down_hosts")


def test_ha_pack_finds_routers_and_networks_on_one_or_on_dead_agents(seeded):
    server, _store, matched = seeded
    assert matched["router-on-dead-l3-agent"] == truth(server, "routers_on_dead_l3_agents")
    assert matched["router-on-one-l3-agent"] == truth(server, "single_l3_agent_routers")
    assert matched["network-on-one-dhcp-agent"] == truth(server, "single_dhcp_agent_networks")
    assert matched["network-on-dead-dhcp-agent"] == []
    # the generator's scenarios: a dead L3 agent with routers, a network with two DHCP
    # agents (left out) and one without DHCP (the public network, left out)
    assert matched["router-on-dead-l3-agent"]
    region = server.state.regions["RegionOne"]
    with_dhcp_port = {
        p["network_id"] for p in region.ports.values() if p["device_owner"] == "network:dhcp"
    }
    assert set(matched["network-on-one-dhcp-agent"]) < with_dhcp_port < set(region.networks)


def test_idle_servers_are_found_from_cpu_samples_and_silent_ones_are_not(seeded):
    server, store, _matched = seeded
    region = server.state.regions["RegionOne"]
    idle = set(truth(server, "idle_servers"))
    active = [s for s in region.servers.values() if s["status"] == "ACTIVE"]
    samples = []
    for s in active[: len(active) - 3]:  # the last three have no samples at all
        level = 0.5 if s["id"] in idle else 35.0
        for hour in range(0, 14 * 24, 6):
            ts = (NOW - timedelta(hours=hour)).timestamp()
            samples.append(Sample(CLOUD, "RegionOne", "server", s["id"], "cpu_util", ts, level))
    record_samples(store, samples)
    [policy] = [p for p in load_files(["pack:waste"]) if p.name == "idle-servers"]
    report = PolicyRunner(store).run([policy], record_findings=False)
    sampled = {s["id"] for s in active[: len(active) - 3]}
    expected = sorted(
        i
        for i in idle & sampled
        if parse_time(region.servers[i]["created"]) < NOW - timedelta(days=14)
    )
    assert sorted(r["id"] for r in report.policies[0].matched) == expected


def test_execute_releases_a_floating_ip_and_stops_a_server_and_audits_both(cloud, tmp_path):
    server, _clouds, env = cloud
    region = server.state.regions["RegionOne"]
    fip = truth(server, "unattached_floating_ips")[0]
    target = next(
        s["id"]
        for s in region.servers.values()
        if s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"]
    )
    policy = tmp_path / "act.yaml"
    policy.write_text(
        f"""policies:
  - name: release-this-ip
    resource: floating_ip
    filters: [{{id: {fip}}}, {{type: relation, relation: port, absent: true}}]
    actions: [release]
    safety: {{max_percent: 100}}
  - name: stop-this-server
    resource: server
    filters: [{{id: {target}}}, {{status: ACTIVE}}]
    actions: [stop]
    safety: {{max_percent: 100}}
"""
    )
    assert run_cli("collect", "--os-cloud", CLOUD, env=env).code == 0

    dry = run_cli("policy", "run", str(policy), env=env)
    assert dry.code == 0, dry.stderr
    assert (
        "dry-run" in dry.stdout
        and "-status: ACTIVE" in dry.stdout
        and "+status: SHUTOFF" in dry.stdout
    )
    assert fip in region.floatingips and region.servers[target]["status"] == "ACTIVE"

    done = run_cli("policy", "run", str(policy), "--execute", env=env)
    assert done.code == 0, done.stdout + done.stderr
    assert fip not in region.floatingips
    assert region.servers[target]["status"] == "SHUTOFF"

    audit = run_cli("audit", "list", "-f", "json", env=env).json()
    completed = {
        (e["policy"], e["target"].rsplit("/", 1)[1])
        for e in audit
        if e["event"] == "action.completed"
    }
    assert completed == {("release-this-ip", fip), ("stop-this-server", target)}
    assert all(e["details"]["verified"] for e in audit if e["event"] == "action.completed")
    assert {e["event"] for e in audit} == {"action.started", "action.completed"}
    assert run_cli("audit", "verify", env=env).code == 0

    # before the next pass the store still shows the old state: nothing is repeated
    again = run_cli("policy", "run", str(policy), "--execute", "-f", "json", env=env).json()
    assert {a["verdict"] for p in again["policies"] for a in p["planned"]} == {"done"}
    assert len(run_cli("audit", "list", "-f", "json", env=env).json()) == len(audit)


def test_an_incomplete_pass_for_a_kind_blocks_actions_on_it(cloud, tmp_path):
    server, clouds, env = cloud
    region = server.state.regions["RegionOne"]
    store = open_store(env["STACKFLEET_DB_URL"])
    collect(store, CLOUD, config_files=[str(clouds)])
    response = httpx.post(
        f"{server.base_url}/_sim/faults",
        json={"fault": {"method": "GET", "path": "/v2.0/floatingips", "fail_always": True}},
    )
    assert response.status_code in (200, 201)
    [result] = collect(store, CLOUD, config_files=[str(clouds)])
    assert not result.listings["floating_ip"].complete
    [policy] = load_text(
        """policies:
  - name: release
    resource: floating_ip
    filters: [{type: relation, relation: port, absent: true}]
    actions: [release]
    safety: {max_percent: 100}
"""
    )
    report = PolicyRunner(store, connections=Connections([str(clouds)])).run([policy], execute=True)
    verdicts = {c.verdict for c in report.policies[0].candidates}
    assert verdicts == {"blocked"}
    assert "incomplete for floating_ip" in report.policies[0].candidates[0].reason
    assert set(truth(server, "unattached_floating_ips")) <= set(region.floatingips)
    store.close()


def test_a_resource_changed_since_the_pass_is_left_alone(cloud):
    server, clouds, env = cloud
    region = server.state.regions["RegionOne"]
    store = open_store(env["STACKFLEET_DB_URL"])
    collect(store, CLOUD, config_files=[str(clouds)])
    target = next(
        s for s in region.servers.values() if s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"]
    )
    [policy] = load_text(
        f"policies:\n  - name: stop\n    resource: server\n    filters: [{{id: {target['id']}}}]\n"
        "    actions: [stop]\n    safety: {max_percent: 100}\n"
    )
    # the owner stops it between the pass and the run
    target["status"], target["OS-EXT-STS:vm_state"], target["OS-EXT-STS:power_state"] = (
        "SHUTOFF",
        "stopped",
        4,
    )
    report = PolicyRunner(store, connections=Connections([str(clouds)])).run([policy], execute=True)
    [candidate] = report.policies[0].candidates
    assert candidate.verdict == "skipped"
    assert "status is now 'SHUTOFF'" in candidate.reason
    store.close()
