"""Capacity computations over small hand-made fleets with known answers."""

from __future__ import annotations

from typing import Any

from stackfleet.engine.capacity import (
    Fleet,
    capacity_report,
    flavor_demand,
    flavor_fit,
    ip_pool_rows,
    quota_rows,
    single_agent_rows,
    storage_pool_rows,
)

R = {"cloud": "c", "region": "r"}


def hypervisor(
    host: str,
    vcpus: int = 16,
    ram: int = 65536,
    disk: int = 1000,
    used: tuple[int, int, int] = (0, 0, 0),
    pcpus: int = 0,
    pcpu_used: int = 0,
    ratio: float = 1.0,
    enabled: str = "enabled",
    state: str = "up",
) -> dict[str, Any]:
    record: dict[str, Any] = {
        **R,
        "id": f"id-{host}",
        "name": host,
        "host": host,
        "hypervisor_hostname": host,
        "enabled": enabled,
        "state": state,
    }
    for rc, total, use, rat in (
        ("vcpu", vcpus, used[0], ratio),
        ("memory_mb", ram, used[1], 1.0),
        ("disk_gb", disk, used[2], 1.0),
        ("pcpu", pcpus, pcpu_used, 1.0),
    ):
        if total:
            record.update(
                {
                    f"{rc}_total": total,
                    f"{rc}_reserved": 0,
                    f"{rc}_allocation_ratio": rat,
                    f"{rc}_used": use,
                    f"{rc}_capacity": int(total * rat),
                }
            )
    return record


def flavor(name: str, vcpus: int, ram: int, disk: int, **specs: str) -> dict[str, Any]:
    return {**R, "id": name, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
            "ephemeral": 0, "swap": "", "extra_specs": dict(specs)}  # fmt: skip


def server(
    name: str, host: str, flavor_name: str, vcpus: int, ram: int, disk: int
) -> dict[str, Any]:
    return {**R, "id": name, "name": name, "project_id": "p1", "host": host,
            "hypervisor_hostname": host, "flavor_name": flavor_name, "vcpus": vcpus,
            "ram_mb": ram, "disk_gb": disk, "image_id": "img"}  # fmt: skip


def fit_of(fleet: Fleet, name: str) -> int:
    [row] = [r for r in flavor_fit(fleet) if r["flavor"] == name and r["zone"] is None]
    return int(row["fits"])


def test_a_flavor_fits_as_often_as_its_scarcest_resource_allows_on_each_host() -> None:
    # host a: 16 vCPU, 64 GiB -> RAM allows 8 of 8 GiB, vCPU 8 of 2: 8
    # host b: 4 vCPU free -> 2
    fleet = Fleet(
        {
            "hypervisor": [hypervisor("a"), hypervisor("b", used=(12, 0, 0))],
            "flavor": [flavor("m", 2, 8192, 10)],
        }
    )
    assert fit_of(fleet, "m") == 8 + 2


def test_disabled_and_down_hosts_take_no_new_servers() -> None:
    fleet = Fleet(
        {
            "hypervisor": [
                hypervisor("a"),
                hypervisor("off", enabled="disabled"),
                hypervisor("dead", state="down"),
            ],
            "flavor": [flavor("m", 2, 8192, 10)],
        }
    )
    assert fit_of(fleet, "m") == 8


def test_allocation_ratio_multiplies_vcpu_capacity() -> None:
    fleet = Fleet(
        {
            "hypervisor": [hypervisor("a", vcpus=4, ram=1 << 20, ratio=4.0)],
            "flavor": [flavor("m", 2, 1024, 1)],
        }
    )
    assert fit_of(fleet, "m") == 8


def test_dedicated_flavors_count_against_pcpu_not_vcpu() -> None:
    fleet = Fleet(
        {
            "hypervisor": [
                hypervisor("shared", vcpus=64),
                hypervisor("pinned", vcpus=8, pcpus=8, pcpu_used=4),
            ],
            "flavor": [flavor("p", 2, 1024, 1, **{"hw:cpu_policy": "dedicated"})],
        }
    )
    assert flavor_demand(fleet.of("flavor")[0]) == {"pcpu": 2, "memory_mb": 1024, "disk_gb": 1}
    # only the 4 free PCPUs of the pinned host count; the 64 shared VCPUs do not
    assert fit_of(fleet, "p") == 2
    [row] = capacity_report(fleet)
    assert row["pcpu_capacity"] == 8 and row["pcpu_used"] == 4 and row["pcpu_percent"] == 50.0
    assert row["vcpu_capacity"] == 72 and row["vcpu_used"] == 0


def test_swap_and_ephemeral_count_as_disk() -> None:
    demand = flavor_demand({**flavor("m", 1, 512, 10), "ephemeral": 5, "swap": 1536})
    assert demand["disk_gb"] == 10 + 5 + 2


def test_the_cloud_survives_losing_its_largest_host_when_its_servers_fit_elsewhere() -> None:
    fleet = Fleet(
        {
            "hypervisor": [
                hypervisor("big", used=(4, 16384, 20)),
                hypervisor("b", used=(0, 0, 0)),
            ],
            "flavor": [flavor("m", 2, 8192, 10)],
            "server": [server(f"s{i}", "big", "m", 2, 8192, 10) for i in range(2)],
        }
    )
    [row] = capacity_report(fleet)
    verdict = row["n_plus_one"]
    assert verdict["lost_host"] == "big"
    assert verdict["survives"] is True
    assert verdict["servers_to_move"] == 2
    assert verdict["memory_mb_headroom"] == 65536 - 16384


def test_n_plus_one_fails_and_names_the_servers_that_would_not_fit() -> None:
    fleet = Fleet(
        {
            "hypervisor": [
                hypervisor("big", used=(8, 49152, 30)),
                hypervisor("small", ram=32768, used=(0, 16384, 0)),
            ],
            "flavor": [flavor("l", 4, 16384, 10), flavor("m", 2, 8192, 10)],
            "server": [
                server("l1", "big", "l", 4, 16384, 10),
                server("l2", "big", "l", 4, 16384, 10),
                server("m1", "big", "m", 2, 8192, 10),
                server("m2", "big", "m", 2, 8192, 10),
            ],
        }
    )
    [row] = capacity_report(fleet)
    verdict = row["n_plus_one"]
    # 16 GiB free on the survivor: one large server fits, the rest does not
    assert verdict["survives"] is False
    assert verdict["unplaced_servers"] == ["l2", "m1", "m2"]
    assert verdict["memory_mb_headroom"] == 0


def test_n_plus_one_is_undecided_with_a_single_usable_host() -> None:
    fleet = Fleet({"hypervisor": [hypervisor("a"), hypervisor("b", state="down")]})
    [row] = capacity_report(fleet)
    assert row["n_plus_one"]["survives"] is None
    assert row["n_plus_one"]["reason"]


def test_unlimited_and_unknown_quotas_are_not_numbers() -> None:
    fleet = Fleet(
        {
            "server": [server("s1", "a", "m", 4, 1024, 10), server("s2", "a", "m", 4, 1024, 10)],
            "project": [{**R, "id": "p1", "name": "alpha"}],
        },
        quota_limits={
            ("c", "r", "p1"): {
                "cores": (10, None),
                "instances": (-1, None),
                "ram_mb": (None, "reading the compute quota failed"),
            }
        },
    )
    rows = {r["resource"]: r for r in quota_rows(fleet, "alpha")}
    assert (rows["cores"]["used"], rows["cores"]["limit"], rows["cores"]["state"]) == (
        8,
        10,
        "high",
    )
    assert rows["cores"]["percent"] == 80.0
    assert rows["instances"]["state"] == "unlimited" and rows["instances"]["percent"] is None
    assert rows["ram_mb"]["state"] == "unknown" and rows["ram_mb"]["limit"] is None
    assert "failed" in rows["ram_mb"]["error"]
    # never read at all: unknown too, not zero
    assert rows["volumes"]["state"] == "unknown" and rows["volumes"]["limit"] is None


def test_ip_pools_show_external_networks_and_unknown_availability() -> None:
    fleet = Fleet(
        {
            "network": [
                {**R, "id": "n1", "name": "public", "external": True, "ip_total": 10,
                 "ip_used": 9, "ip_subnets": []},
                {**R, "id": "n2", "name": "other-ext", "external": True, "ip_total": None,
                 "ip_used": None},
                {**R, "id": "n3", "name": "tenant", "external": False, "ip_total": 250,
                 "ip_used": 3},
            ]
        }
    )  # fmt: skip
    rows = {r["network"]: r for r in ip_pool_rows(fleet)}
    assert set(rows) == {"public", "other-ext"}
    assert (rows["public"]["free"], rows["public"]["percent"], rows["public"]["state"]) == (
        1,
        90.0,
        "high",
    )
    assert rows["other-ext"]["state"] == "unknown"


def test_routers_on_one_agent_or_only_dead_agents_are_listed() -> None:
    def agent(agent_id: str, host: str, routers: list[str], alive: bool = True) -> dict[str, Any]:
        return {**R, "id": agent_id, "host": host, "agent_type": "L3 agent", "alive": alive,
                "admin_state_up": True, "hosted_router_ids": routers}  # fmt: skip

    fleet = Fleet(
        {
            "network_agent": [
                agent("a1", "net1", ["r1", "r2", "r3"]),
                agent("a2", "net2", ["r2"]),
                agent("a3", "net3", ["r3"], alive=False),
            ],
            "router": [{**R, "id": f"r{i}", "name": f"router-{i}"} for i in (1, 2, 3)],
        }
    )
    rows = {r["name"]: r for r in single_agent_rows(fleet)}
    assert set(rows) == {"router-1"}
    fleet.records["network_agent"][0]["alive"] = False
    rows = {r["name"]: r for r in single_agent_rows(fleet)}
    assert set(rows) == {"router-1", "router-3"}


def test_storage_pools_count_their_volumes_and_provisioned_ratio() -> None:
    fleet = Fleet(
        {
            "storage_pool": [
                {**R, "id": "st1@rbd#rbd", "name": "st1@rbd#rbd", "total_capacity_gb": 1000.0,
                 "free_capacity_gb": 400.0, "provisioned_capacity_gb": 1500.0}
            ],
            "volume": [{**R, "id": f"v{i}", "backend_host": "st1@rbd#rbd"} for i in range(3)]
            + [{**R, "id": "v9", "backend_host": None}],
        }
    )  # fmt: skip
    [row] = storage_pool_rows(fleet, host="st1")
    assert (row["volumes"], row["provisioned_ratio"], row["free_percent"]) == (3, 1.5, 40.0)
