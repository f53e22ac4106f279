"""What a capacity check before a drain says: the servers of a host packed onto the
hosts left, anti-affinity respected (engine/capacity.py drain_fit)."""

from __future__ import annotations

from stackfleet.engine.capacity import HostCapacity, drain_fit


def _host(name: str, free_ram: int) -> HostCapacity:
    return HostCapacity(
        "c",
        "r",
        name,
        name,
        name,
        "nova",
        True,
        capacity={"vcpu": 64, "memory_mb": free_ram, "disk_gb": 500},
        used={},
    )


def _server(sid: str, ram: int, flavor: str = "m1.large") -> dict:
    return {
        "id": sid,
        "name": sid,
        "cloud": "c",
        "region": "r",
        "flavor_name": flavor,
        "vcpus": 4,
        "ram_mb": ram,
        "disk_gb": 80,
        "image_id": "img",
    }


def test_servers_that_fit_on_the_hosts_left_pass():
    fit = drain_fit(
        "h1", [_server("a", 8192), _server("b", 8192)], [_host("h2", 16384)], {}, {}, {}
    )
    assert fit.fits and fit.short == {}


def test_a_flavor_too_big_for_every_host_is_named_with_what_is_short():
    fit = drain_fit(
        "h1", [_server("a", 8192), _server("b", 4096, "m1.medium")], [_host("h2", 6000)], {}, {}, {}
    )
    assert not fit.fits
    assert fit.unplaced == {
        "a": "flavor m1.large needs 4 vCPU, 8192 MB RAM, 80 GB disk; no host has enough MB RAM"
    }
    assert fit.short == {"memory_mb": 12288 - 6000}
    assert "short in total: 6288 MB RAM" in fit.message()


def test_an_anti_affinity_member_cannot_join_another_member_on_the_only_roomy_host():
    groups = {"a": {"spread"}}
    fit = drain_fit(
        "h1", [_server("a", 8192)], [_host("h2", 65536)], {}, groups, {"spread": {"h2"}}
    )
    assert fit.unplaced["a"].endswith(
        "the hosts with room (h2) already hold a member of its anti-affinity group spread"
    )
    assert fit.short == {}  # room enough in total: the group is what blocks it


def test_two_members_of_one_anti_affinity_group_need_two_hosts():
    groups = {"a": {"spread"}, "b": {"spread"}}
    moving = [_server("a", 1024), _server("b", 1024)]
    assert not drain_fit("h1", moving, [_host("h2", 65536)], {}, groups, {}).fits
    assert drain_fit("h1", moving, [_host("h2", 65536), _host("h3", 65536)], {}, groups, {}).fits
