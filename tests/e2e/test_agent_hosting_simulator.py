"""What L3/DHCP agents host, end to end against the simulator: the first pass reads it
(one call per agent), later passes carry it from the store and make only list calls,
and it is read again when due — after `agent_interval`, when an agent's reported count
differs from what is known, when an agent comes back alive — or on demand with
`stackfleet capacity sweep`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import run_cli

from stackfleet.engine.collect import PassResult, collect
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import Store, open_store

CLOUD = "hostsim"
AGENT_CALLS = "network GET /agents/{uuid}/"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[SimulatorServer, Path, Store, str]]:
    """A fresh small cloud (the tests change what its agents host) and a fresh store."""
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        url = f"sqlite:///{tmp_path / 'stackfleet.db'}"
        store = open_store(url)
        yield server, clouds, store, url
        store.close()


def _pass(store: Store, clouds: Path, agent_interval: float = 600.0) -> PassResult:
    [result] = collect(store, CLOUD, config_files=[str(clouds)], agent_interval=agent_interval)
    assert result.status == "complete", result.error
    return result


def _agent_calls(result: PassResult) -> int:
    return sum(n for label, n in result.requests.items() if label.startswith(AGENT_CALLS))


def _region(server: SimulatorServer) -> Any:
    return server.state.regions["RegionOne"]


def _l3_agents(server: SimulatorServer) -> dict[str, dict[str, Any]]:
    return {a["host"]: a for a in _region(server).agents.values() if a["agent_type"] == "L3 agent"}


def _stored_routers(store: Store) -> dict[str, list[str] | None]:
    records, _ = store.list_resources("network_agent", filters={"agent_type": "L3 agent"})
    return {str(r["host"]): r["hosted_router_ids"] for r in records}


def _routers_on(server: SimulatorServer, host: str) -> list[str]:
    return sorted(
        {
            p["device_id"]
            for p in _region(server).ports.values()
            if p["binding:host_id"] == host and p["device_owner"] == "network:router_gateway"
        }
    )


def _move_router(server: SimulatorServer, router_id: str, host: str) -> None:
    """Reschedule a router to the L3 agent of `host` (its gateway and interface ports)."""
    for port in _region(server).ports.values():
        if port["device_id"] == router_id and port["device_owner"].startswith("network:router"):
            port["binding:host_id"] = host


def test_a_later_pass_carries_the_hosting_and_makes_only_list_calls(cloud) -> None:
    server, clouds, store, _ = cloud
    first = _pass(store, clouds)
    hosting_agents = [
        a for a in _region(server).agents.values() if a["agent_type"] in ("L3 agent", "DHCP agent")
    ]
    assert _agent_calls(first) == len(hosting_agents)
    known = _stored_routers(store)
    assert known == {host: _routers_on(server, host) for host in known}

    second = _pass(store, clouds)
    per_resource = {label: n for label, n in second.requests.items() if "{" in label}
    # nothing changed: no per-agent reads, no per-provider Placement reads either
    assert per_resource == {}
    assert _stored_routers(store) == known
    records, _ = store.list_resources("network_agent", filters={"agent_type": "DHCP agent"})
    assert all(r["hosted_network_ids"] for r in records)
    assert all(r["hosting_read_at"] for r in records)


def test_a_move_the_counts_do_not_show_is_seen_after_the_interval(cloud) -> None:
    server, clouds, store, _ = cloud
    _pass(store, clouds)
    before = _stored_routers(store)
    # swap one router of each network node: every L3 agent still reports as many
    [a, *_] = before["net01"] or []
    [b, *_] = before["net02"] or []
    _move_router(server, a, "net02")
    _move_router(server, b, "net01")
    assert _agent_calls(_pass(store, clouds)) == 0
    assert _stored_routers(store) == before  # not due yet: the carried values

    result = _pass(store, clouds, agent_interval=0)  # due at every pass
    assert _agent_calls(result) == 4
    after = _stored_routers(store)
    assert after == {"net01": _routers_on(server, "net01"), "net02": _routers_on(server, "net02")}
    assert b in (after["net01"] or []) and a in (after["net02"] or [])


def test_a_changed_count_makes_the_next_pass_read_that_agent(cloud) -> None:
    server, clouds, store, _ = cloud
    _pass(store, clouds)
    [router, *_] = _stored_routers(store)["net01"] or []
    _move_router(server, router, "net02")
    agents = _l3_agents(server)
    # what the agents would report in their next heartbeats
    for host in ("net01", "net02"):
        agents[host]["configurations"]["routers"] = len(_routers_on(server, host))

    result = _pass(store, clouds)
    assert _agent_calls(result) == 2  # the two L3 agents; the DHCP agents are carried
    assert router in (_stored_routers(store)["net02"] or [])
    assert router not in (_stored_routers(store)["net01"] or [])


def test_an_agent_that_comes_back_alive_is_read_again(cloud) -> None:
    server, clouds, store, _ = cloud
    _pass(store, clouds)
    dead = _l3_agents(server)["net02"]
    assert dead["alive"] is False
    dead["alive"] = True
    result = _pass(store, clouds)
    assert result.requests[f"{AGENT_CALLS}l3-routers"] == 1
    assert _agent_calls(result) == 1


def test_capacity_sweep_reads_the_hosting_on_demand(cloud) -> None:
    server, clouds, store, url = cloud
    _pass(store, clouds)
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds)}
    args = ("--db-url", url, "capacity", "sweep", "--os-cloud", CLOUD, "-f", "json")
    result = run_cli(*args, env=env)
    assert result.code == 0, result.stderr
    [row] = result.json()
    assert row["agents_read"] == 0  # read by the pass a moment ago

    [router, *_] = _stored_routers(store)["net01"] or []
    _move_router(server, router, "net02")
    result = run_cli(*args, "--force", env=env)
    assert result.code == 0, result.stderr
    [row] = result.json()
    assert row["agents_read"] == 4
    assert router in (_stored_routers(store)["net02"] or [])

    shown = run_cli("--db-url", url, "capacity", "network", "-f", "json")
    assert shown.code == 0, shown.stderr
    rows = [r for r in shown.json() if r["agent_type"] in ("L3 agent", "DHCP agent")]
    assert rows and all(r["hosting_age_s"] is not None and r["hosting_age_s"] < 600 for r in rows)
