"""The seeded fleet generator: determinism, cross-service consistency, ground truth."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from stackfleet.simulator.generator import SCENARIOS, FleetConfig, generate, preset
from stackfleet.simulator.state import CloudState, RegionState

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _dump(state: CloudState) -> str:
    """Everything the generator produced, as one JSON text (order included)."""
    keystone = {
        "domains": state.domains,
        "projects": state.projects,
        "users": state.users,
        "roles": state.roles,
        "passwords": state.passwords,
        "assignments": [[list(k), v] for k, v in state.assignments.items()],
    }
    regions = {
        name: {key: value for key, value in vars(region).items()}
        for name, region in state.regions.items()
    }
    return json.dumps([keystone, regions, state.ground_truth])


@pytest.fixture(scope="module")
def small() -> CloudState:
    return generate(FleetConfig(now=NOW))


@pytest.fixture(scope="module")
def region(small: CloudState) -> RegionState:
    return small.regions["RegionOne"]


@pytest.fixture(scope="module")
def truth(small: CloudState) -> dict[str, list[str]]:
    return small.ground_truth["RegionOne"]


def _age_days(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (NOW - moment) / timedelta(days=1)


# -- determinism ----------------------------------------------------------------------------


def test_same_seed_and_now_give_byte_identical_state() -> None:
    config = FleetConfig(seed=7, now=NOW)
    assert _dump(generate(config)) == _dump(generate(config))


def test_another_seed_gives_another_fleet() -> None:
    first = generate(FleetConfig(seed=1, now=NOW)).regions["RegionOne"]
    second = generate(FleetConfig(seed=2, now=NOW)).regions["RegionOne"]
    assert set(first.servers).isdisjoint(second.servers)


def test_now_anchors_every_age() -> None:
    later = NOW + timedelta(days=10)
    early = generate(FleetConfig(now=NOW)).regions["RegionOne"]
    shifted = generate(FleetConfig(now=later)).regions["RegionOne"]
    server_id = next(iter(early.servers))
    created_early = datetime.fromisoformat(early.servers[server_id]["created"])
    created_later = datetime.fromisoformat(shifted.servers[server_id]["created"])
    assert created_later - created_early == timedelta(days=10)


# -- sizes and presets -----------------------------------------------------------------------


def test_small_preset_has_the_requested_sizes(region: RegionState) -> None:
    assert len(region.hypervisors) == 12
    assert len(region.servers) == 60
    assert len(region.floatingips) == 20
    assert len(region.volumes) == 40
    assert len(region.images) == 8
    assert len(region.nodes) == 6


def test_benchmark_preset_generates_the_scale_target_in_seconds() -> None:
    started = time.perf_counter()
    state = generate(preset("benchmark", now=NOW))
    elapsed = time.perf_counter() - started
    region = state.regions["RegionOne"]
    assert (
        len(region.hypervisors),
        len(region.servers),
        len(region.ports),
        len(region.floatingips),
        len(region.volumes),
        len(region.images),
    ) == (1000, 20_000, 40_000, 10_000, 20_000, 2_000)
    assert elapsed < 20, f"benchmark fleet took {elapsed:.1f} s to generate"


def test_two_region_preset_shares_keystone_and_separates_resources() -> None:
    state = generate(preset("two-region", now=NOW))
    one, two = state.regions["RegionOne"], state.regions["RegionTwo"]
    assert set(one.servers).isdisjoint(two.servers)
    assert {s["OS-EXT-AZ:availability_zone"] for s in one.servers.values()} >= {"az1", "az2"}
    for region in (one, two):
        assert {s["tenant_id"] for s in region.servers.values()} <= set(state.projects)
    assert set(state.ground_truth) == {"RegionOne", "RegionTwo"}


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="small"):
        preset("huge")


def test_config_rejects_a_fleet_without_regions() -> None:
    with pytest.raises(ValidationError):
        FleetConfig(regions=())


def test_more_servers_than_the_hypervisors_hold_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="raise `hypervisors`"):
        generate(FleetConfig(hypervisors=4, servers=5000, now=NOW))


# -- Keystone ----------------------------------------------------------------------------------


def test_keystone_has_default_domain_admin_and_service_project(small: CloudState) -> None:
    assert small.domains["default"]["name"] == "Default"
    names = {p["name"]: p["id"] for p in small.projects.values()}
    assert {"admin", "service"} <= set(names)
    admin = next(u for u in small.users.values() if u["name"] == "admin")
    assert small.passwords[admin["id"]] == "secret"
    assert small.assignments[(admin["id"], names["admin"])] == ["admin"]
    assert small.assignments[(admin["id"], "system")] == ["admin"]


def test_every_tenant_project_has_a_member_user(small: CloudState) -> None:
    tenants = [p for p in small.projects.values() if p["name"] not in ("admin", "service")]
    assert len(tenants) == 4
    for project in tenants:
        roles = [r for (_, target), r in small.assignments.items() if target == project["id"]]
        assert ["member"] in roles


# -- consistency across services ---------------------------------------------------------------


def test_ids_are_unique_within_each_collection(region: RegionState) -> None:
    for name in ("servers", "ports", "floatingips", "volumes", "images", "hypervisors", "nodes"):
        collection: dict[str, Any] = getattr(region, name)
        ids = [obj.get("id", obj.get("uuid")) for obj in collection.values()]
        assert len(ids) == len(set(ids)) == len(collection)


def test_servers_ports_are_bound_to_the_servers_host(region: RegionState) -> None:
    ports_by_device: dict[str, list[dict[str, Any]]] = {}
    for port in region.ports.values():
        ports_by_device.setdefault(port["device_id"], []).append(port)
    for server in region.servers.values():
        ports = ports_by_device.get(server["id"], [])
        host = server["OS-EXT-SRV-ATTR:host"]
        if host is None:
            assert ports == [], "an unscheduled server has no ports"
            continue
        assert ports, f"server {server['id']} has no port"
        assert {p["binding:host_id"] for p in ports} == {host}
        fixed = {
            a["addr"]
            for addrs in server["addresses"].values()
            for a in addrs
            if a["OS-EXT-IPS:type"] == "fixed"
        }
        assert fixed == {ip["ip_address"] for p in ports for ip in p["fixed_ips"]}


def test_compute_ports_point_at_existing_servers(region: RegionState) -> None:
    for port in region.ports.values():
        if port["device_owner"].startswith("compute:"):
            assert port["device_id"] in region.servers


def test_fixed_ips_are_unique_per_network(region: RegionState) -> None:
    seen = Counter(
        (port["network_id"], ip["ip_address"])
        for port in region.ports.values()
        for ip in port["fixed_ips"]
    )
    assert max(seen.values()) == 1


def test_ports_reference_existing_networks_subnets_and_security_groups(
    region: RegionState,
) -> None:
    for port in region.ports.values():
        assert port["network_id"] in region.networks
        assert port["project_id"] == port["tenant_id"]
        for ip in port["fixed_ips"]:
            assert region.subnets[ip["subnet_id"]]["network_id"] == port["network_id"]
        for group in port["security_groups"]:
            assert group in region.security_groups


def test_floating_ips_point_at_real_ports_and_show_on_the_server(region: RegionState) -> None:
    for fip in region.floatingips.values():
        if fip["port_id"] is None:
            assert fip["fixed_ip_address"] is None and fip["router_id"] is None
            continue
        port = region.ports[fip["port_id"]]
        assert fip["fixed_ip_address"] in [ip["ip_address"] for ip in port["fixed_ips"]]
        assert fip["router_id"] in region.routers
        server = region.servers[port["device_id"]]
        floating = [
            a["addr"]
            for addrs in server["addresses"].values()
            for a in addrs
            if a["OS-EXT-IPS:type"] == "floating"
        ]
        assert fip["floating_ip_address"] in floating


def test_attached_volumes_appear_on_both_sides(region: RegionState) -> None:
    from_volumes = {
        (a["server_id"], v["id"]) for v in region.volumes.values() for a in v["attachments"]
    }
    from_servers = {
        (s["id"], attached["id"])
        for s in region.servers.values()
        for attached in s["os-extended-volumes:volumes_attached"]
    }
    assert from_volumes == from_servers
    assert from_volumes, "the small fleet has attached volumes"
    for volume in region.volumes.values():
        assert (volume["status"] == "in-use") == bool(volume["attachments"])
        for attachment in volume["attachments"]:
            server = region.servers[attachment["server_id"]]
            assert attachment["host_name"] == server["OS-EXT-SRV-ATTR:host"]
            assert volume["os-vol-tenant-attr:tenant_id"] == server["tenant_id"]


def test_placement_usage_is_the_sum_of_the_flavors_on_each_provider(region: RegionState) -> None:
    expected: dict[str, Counter[str]] = {}
    by_hostname = {h["hypervisor_hostname"]: h["id"] for h in region.hypervisors.values()}
    for server in region.servers.values():
        hostname = server["OS-EXT-SRV-ATTR:hypervisor_hostname"]
        if hostname is None:
            continue
        flavor = server["flavor"]
        pinned = flavor["extra_specs"].get("hw:cpu_policy") == "dedicated"
        usage = expected.setdefault(by_hostname[hostname], Counter())
        usage["PCPU" if pinned else "VCPU"] += flavor["vcpus"]
        usage["MEMORY_MB"] += flavor["ram"]
        usage["DISK_GB"] += flavor["disk"]
    assert set(region.resource_providers) == set(region.hypervisors)
    for provider_id, used in region.usages.items():
        wanted = expected.get(provider_id, Counter())
        assert {rc: n for rc, n in used.items() if n} == {rc: n for rc, n in wanted.items() if n}
        assert set(used) == set(region.inventories[provider_id])


def test_hypervisors_match_their_compute_services(region: RegionState) -> None:
    for hypervisor in region.hypervisors.values():
        service = region.compute_services[hypervisor["service"]["id"]]
        assert service["binary"] == "nova-compute"
        assert service["host"] == hypervisor["service"]["host"]
        assert service["state"] == hypervisor["state"]
        assert service["status"] == hypervisor["status"]
        provider = region.resource_providers[hypervisor["id"]]
        assert provider["name"] == hypervisor["hypervisor_hostname"]


def test_cinder_pools_account_for_their_volumes(region: RegionState) -> None:
    sizes: Counter[str] = Counter()
    for volume in region.volumes.values():
        if volume["os-vol-host-attr:host"]:
            sizes[volume["os-vol-host-attr:host"]] += volume["size"]
    pools = {pool["name"]: pool["capabilities"] for pool in region.pools}
    assert set(sizes) <= set(pools)
    for name, capabilities in pools.items():
        assert capabilities["allocated_capacity_gb"] == sizes[name]
    volume_hosts = {s["host"] for s in region.volume_services if s["binary"] == "cinder-volume"}
    assert {name.split("#")[0] for name in pools} == volume_hosts


def test_server_groups_hold_servers_of_their_project_on_the_right_hosts(
    region: RegionState,
) -> None:
    assert region.server_groups
    for group in region.server_groups.values():
        members = [region.servers[m] for m in group["members"]]
        assert {m["tenant_id"] for m in members} == {group["project_id"]}
        hosts = [m["OS-EXT-SRV-ATTR:host"] for m in members]
        if group["policy"] == "anti-affinity":
            assert len(set(hosts)) == len(hosts)
        else:
            assert len(set(hosts)) == 1
        for member in members:
            assert member["server_groups"] == [group["id"]]


# -- ground truth ----------------------------------------------------------------------------------


def test_small_fleet_holds_every_scenario(truth: dict[str, list[str]]) -> None:
    assert set(truth) == set(SCENARIOS)
    assert [name for name, ids in truth.items() if not ids] == []


def test_shutoff_scenarios_are_told_apart_by_age(
    region: RegionState, truth: dict[str, list[str]]
) -> None:
    for server_id in truth["long_shutoff_servers"]:
        server = region.servers[server_id]
        assert server["status"] == "SHUTOFF" and server["OS-EXT-STS:power_state"] == 4
        assert _age_days(server["updated"]) > 90
    for server_id in truth["recent_shutoff_servers"]:
        assert _age_days(region.servers[server_id]["updated"]) < 30
    shutoff = {s["id"] for s in region.servers.values() if s["status"] == "SHUTOFF"}
    assert shutoff == set(truth["long_shutoff_servers"]) | set(truth["recent_shutoff_servers"])


def test_idle_servers_are_active_and_distinct_from_other_scenarios(
    region: RegionState, truth: dict[str, list[str]]
) -> None:
    idle = set(truth["idle_servers"])
    assert all(region.servers[s]["status"] == "ACTIVE" for s in idle)
    assert idle.isdisjoint(truth["servers_on_down_hosts"])


def test_error_servers_carry_a_fault(region: RegionState, truth: dict[str, list[str]]) -> None:
    for server_id in truth["error_servers"]:
        server = region.servers[server_id]
        assert server["status"] == "ERROR"
        assert server["fault"]["code"] == 500


def test_available_volume_scenarios_are_told_apart_by_age(
    region: RegionState, truth: dict[str, list[str]]
) -> None:
    for volume_id in truth["long_available_volumes"]:
        volume = region.volumes[volume_id]
        assert volume["status"] == "available"
        assert _age_days(volume["updated_at"]) > 30
    for volume_id in truth["recent_available_volumes"]:
        assert _age_days(region.volumes[volume_id]["updated_at"]) < 7


def test_down_host_is_down_everywhere(region: RegionState, truth: dict[str, list[str]]) -> None:
    [service_id] = truth["down_compute_services"]
    [hypervisor_id] = truth["down_hypervisors"]
    service = region.compute_services[service_id]
    assert service["state"] == "down"
    assert region.hypervisors[hypervisor_id]["service"]["id"] == service_id
    # besides the down host's OVS agent, the L3 agent of the last network node is dead
    [agent_id] = [
        a for a in truth["dead_network_agents"] if region.agents[a]["agent_type"] != "L3 agent"
    ]
    assert region.agents[agent_id]["host"] == service["host"]
    for server_id in truth["servers_on_down_hosts"]:
        server = region.servers[server_id]
        assert server["OS-EXT-SRV-ATTR:host"] == service["host"]
        assert server["host_status"] == "UNKNOWN"


def test_disabled_service_says_why(region: RegionState, truth: dict[str, list[str]]) -> None:
    [service_id] = truth["disabled_compute_services"]
    service = region.compute_services[service_id]
    assert service["status"] == "disabled" and service["state"] == "up"
    assert service["disabled_reason"]


def test_open_ssh_rule_is_ingress_tcp_22_from_anywhere(
    region: RegionState, truth: dict[str, list[str]]
) -> None:
    open_rules = {
        r["id"]
        for r in region.security_group_rules.values()
        if r["direction"] == "ingress"
        and r["protocol"] == "tcp"
        and r["port_range_min"] is not None
        and r["port_range_min"] <= 22 <= r["port_range_max"]
        and r["remote_ip_prefix"] == "0.0.0.0/0"
    }
    assert open_rules == set(truth["open_ssh_security_group_rules"])
    groups = {region.security_group_rules[r]["security_group_id"] for r in open_rules}
    assert groups == set(truth["open_ssh_security_groups"])


def test_nearly_full_hypervisors_are_exactly_those_at_90_percent(
    region: RegionState, truth: dict[str, list[str]]
) -> None:
    def share(provider_id: str, resource_class: str) -> float:
        inventory = region.inventories[provider_id][resource_class]
        capacity = (inventory["total"] - inventory["reserved"]) * inventory["allocation_ratio"]
        return region.usages[provider_id][resource_class] / capacity

    full = {
        rp for rp in region.inventories if max(share(rp, "VCPU"), share(rp, "MEMORY_MB")) >= 0.9
    }
    assert full == set(truth["nearly_full_hypervisors"])


def test_unattached_floating_ips_and_down_unbound_ports_match_the_api_fields(
    region: RegionState, truth: dict[str, list[str]]
) -> None:
    assert set(truth["unattached_floating_ips"]) == {
        f["id"] for f in region.floatingips.values() if f["port_id"] is None
    }
    for port_id in truth["down_unbound_ports"]:
        port = region.ports[port_id]
        assert port["status"] == "DOWN"
        assert port["binding:vif_type"] == "unbound" and port["device_owner"] == ""


def test_some_baremetal_nodes_are_redfish_managed(region: RegionState) -> None:
    redfish = [n for n in region.nodes.values() if n["driver"] == "redfish"]
    assert redfish
    for node in redfish:
        assert node["driver_info"]["redfish_address"].startswith("https://")
        assert node["driver_info"]["redfish_system_id"].startswith("/redfish/v1/Systems/")


def test_security_groups_show_exactly_their_rules(region: RegionState) -> None:
    for group in region.security_groups.values():
        embedded = {rule["id"] for rule in group["security_group_rules"]}
        owned = {
            r["id"]
            for r in region.security_group_rules.values()
            if r["security_group_id"] == group["id"]
        }
        assert embedded == owned


def test_snapshots_belong_to_volumes_of_the_same_project(
    region: RegionState, truth: dict[str, list[str]]
) -> None:
    assert region.snapshots
    for snapshot in region.snapshots.values():
        volume = region.volumes[snapshot["volume_id"]]
        project = snapshot["os-extended-snapshot-attributes:project_id"]
        assert project == volume["os-vol-tenant-attr:tenant_id"]
        assert snapshot["created_at"] >= volume["created_at"]
    old = {s["id"] for s in region.snapshots.values() if _age_days(s["created_at"]) > 180}
    assert old == set(truth["old_volume_snapshots"])


def test_volumes_name_the_volume_types_that_exist(region: RegionState) -> None:
    types = {t["name"]: t["id"] for t in region.volume_types.values()}
    for volume in region.volumes.values():
        assert types[volume["volume_type"]] == volume["volume_type_id"]
