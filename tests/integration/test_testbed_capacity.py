"""Capacity planning on the real testbed: StackFleet's numbers, from a pass (and a quota
sweep), agree with what openstacksdk reports — Placement inventories and usages, the
flavor that fits, Neutron's IP availability, Nova's, Cinder's and Neutron's quotas.

Other test sessions may build or tear down their objects on the shared testbed while
these run, so each comparison reads openstacksdk before and after StackFleet's own read
and compares only when the two SDK readings agree (retrying a few times)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from testbed_fleet import FLAVOR, collect_testbed

from stackfleet.engine.capacity import (
    FLAVOR_FIT_KINDS,
    QUOTA_KINDS,
    REPORT_KINDS,
    capacity_report,
    flavor_fit,
    ip_pool_rows,
    load_fleet,
    quota_rows,
)
from stackfleet.engine.loop import CloudSpec
from stackfleet.engine.quota_sweep import sweep_cloud
from stackfleet.store import Store, open_store

pytestmark = pytest.mark.integration

TRIES = 4


@pytest.fixture(scope="module")
def admin(testbed: Any) -> Any:
    return testbed.connect(testbed.admin_cloud)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = open_store(f"sqlite:///{Path(tmp_path_factory.mktemp('capacity')) / 'sf.db'}")
    yield store
    store.close()


def _agreeing(sdk: Callable[[], Any], ours: Callable[[], Any]) -> tuple[Any, Any]:
    """(what openstacksdk says, what StackFleet says), read while the testbed held still."""
    for _ in range(TRIES):
        before = sdk()
        mine = ours()
        if sdk() == before:
            return before, mine
    pytest.fail(f"the testbed kept changing over {TRIES} reads (other sessions at work?)")


def _ours(store: Store, testbed: Any, kinds: tuple[str, ...], view: Callable[[Any], Any]) -> Any:
    result = collect_testbed(store, testbed, kinds=list(kinds))
    assert result.status == "complete", result.error
    return view(load_fleet(store, cloud=testbed.admin_cloud, kinds=kinds))


def _placement(admin: Any) -> dict[str, dict[str, tuple[int, int]]]:
    """Per usable compute host: per class (capacity, used), through openstacksdk."""
    usable = {
        h.name
        for h in admin.compute.hypervisors(details=True)
        if h.state == "up" and h.status == "enabled"
    }
    result: dict[str, dict[str, tuple[int, int]]] = {}
    for provider in admin.placement.resource_providers():
        if provider.name not in usable:
            continue
        usages = admin.placement.get(
            f"/resource_providers/{provider.id}/usages", microversion="1.26"
        ).json()["usages"]
        result[provider.name] = {
            inv.resource_class: (
                int((inv.total - inv.reserved) * inv.allocation_ratio),
                usages.get(inv.resource_class, 0),
            )
            for inv in admin.placement.resource_provider_inventories(provider.id)
        }
    return result


def test_region_allocation_agrees_with_placement(
    store: Any, testbed: Any, fleet: Any, admin: Any
) -> None:
    placement, [row] = _agreeing(
        lambda: _placement(admin),
        lambda: _ours(store, testbed, REPORT_KINDS, capacity_report),
    )
    assert row["usable_hosts"] == len(placement)
    for rc, name in (("vcpu", "VCPU"), ("memory_mb", "MEMORY_MB"), ("disk_gb", "DISK_GB")):
        capacity = sum(p[name][0] for p in placement.values() if name in p)
        used = sum(p[name][1] for p in placement.values() if name in p)
        assert (row[f"{rc}_capacity"], row[f"{rc}_used"]) == (capacity, used), rc


def test_flavor_fit_agrees_with_placement(store: Any, testbed: Any, fleet: Any, admin: Any) -> None:
    flavor = admin.compute.find_flavor(FLAVOR["name"], ignore_missing=False)
    demand = {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.ram, "DISK_GB": flavor.disk}
    placement, rows = _agreeing(
        lambda: _placement(admin),
        lambda: _ours(store, testbed, FLAVOR_FIT_KINDS, flavor_fit),
    )
    expected = sum(
        min((p[rc][0] - p[rc][1]) // amount for rc, amount in demand.items() if amount)
        for p in placement.values()
    )
    [row] = [r for r in rows if r["flavor"] == FLAVOR["name"] and r["zone"] is None]
    assert row["fits"] == expected > 0


def test_ip_pool_of_the_external_network_agrees_with_neutron(
    store: Any, testbed: Any, fleet: Any, admin: Any
) -> None:
    network_id = fleet.external_network_id

    def sdk() -> tuple[int, int]:
        availability = admin.network.get_network_ip_availability(network_id)
        return availability.used_ips, availability.total_ips

    (used, total), rows = _agreeing(sdk, lambda: _ours(store, testbed, ("network",), ip_pool_rows))
    [row] = [r for r in rows if r["network_id"] == network_id]
    assert (row["used"], row["total"]) == (used, total)
    assert total > 0


def test_quota_limits_and_usage_agree_with_the_services(
    store: Any, testbed: Any, fleet: Any, admin: Any
) -> None:
    project = fleet.project_id
    cloud = CloudSpec(testbed.admin_cloud, testbed.system_cloud, [str(testbed.clouds_yaml)])

    def sdk() -> dict[str, int]:
        compute = admin.get_compute_quotas(project)
        servers = [s for s in admin.compute.servers(all_projects=True) if s.project_id == project]
        return {
            "cores": compute["cores"],
            "instances": compute["instances"],
            "volumes": admin.get_volume_quotas(project)["volumes"],
            "floating_ips": admin.get_network_quotas(project)["floatingip"],
            "servers": len(servers),
        }

    def ours() -> dict[str, dict[str, Any]]:
        sweep_cloud(store, cloud, force=True, projects=[project])
        rows = _ours(store, testbed, QUOTA_KINDS, lambda f: quota_rows(f, project))
        return {r["resource"]: r for r in rows}

    expected, rows = _agreeing(sdk, ours)
    for resource in ("cores", "instances", "volumes", "floating_ips"):
        assert rows[resource]["limit"] == expected[resource], resource
    assert rows["instances"]["used"] == expected["servers"]
