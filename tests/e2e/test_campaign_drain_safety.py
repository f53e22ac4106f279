"""A drain that keeps workloads with an SLA at k of n, and a capacity check before a
host is disabled, on the simulated cloud (the fixture of test_campaign_simulator)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_campaign_simulator import CLOUD, RATIO, Cloud, running_cloud

from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.health_settings import HealthSettings, Workload
from stackfleet.engine.settings import Settings
from stackfleet.patching.campaign import CampaignRunner
from stackfleet.patching.spec import load_spec
from stackfleet.simulator.services.nova import provider_usages, providers_by_name
from stackfleet.store import patching as records
from stackfleet.store.audit import AuditLog

HOST = "cmp0002"
ELSEWHERE = "cmp0003"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with running_cloud(tmp_path) as running:
        yield running


def _active_on(cloud: Cloud, host: str) -> list[str]:
    return sorted(
        sid
        for sid, s in cloud.region.servers.items()
        if s.get("OS-EXT-SRV-ATTR:host") == host and s["status"] == "ACTIVE"
    )


def _tag(cloud: Cloud, servers: list[str], tag: str) -> None:
    for sid in servers:
        server = cloud.region.servers[sid]
        server["tags"] = [*(server.get("tags") or []), tag]
    collect(cloud.store, CLOUD, config_files=[str(cloud.clouds)])


def _runner(cloud: Cloud, min_healthy: int) -> CampaignRunner:
    workload = Workload(name="web", tag="sla-web", min_healthy=min_healthy)
    settings = Settings(health=HealthSettings(workloads=[workload]))
    return CampaignRunner(cloud.store, settings, Connections([str(cloud.clouds)]))


def _entries(cloud: Cloud) -> list[dict]:
    return sorted(AuditLog(cloud.store).list(limit=100000)[0], key=lambda e: e["seq"])


def test_members_of_an_sla_workload_are_live_migrated_one_at_a_time(cloud: Cloud):
    members = _active_on(cloud, HOST)[:3]
    assert len(members) == 3
    _tag(cloud, members, "sla-web")
    # migrations take a while: concurrent ones would overlap
    cloud.sim.sim.action_delay = 0.3  # type: ignore[attr-defined]
    runner = _runner(cloud, min_healthy=3)
    runner.start(load_spec(cloud.spec("serial", RATIO, hosts=[HOST])))
    result = runner.run("serial")
    assert result["status"] == "completed", result["error"]
    assert not set(members) & cloud.servers_on(HOST)
    spans = {}
    for entry in _entries(cloud):
        server = (entry["target"] or "").rsplit("/", 1)[-1]
        if server in members and entry["details"].get("action") == "live-migrate":
            spans.setdefault(server, []).append(entry["seq"])
    intervals = sorted((min(seqs), max(seqs)) for seqs in spans.values())
    assert len(intervals) == 3
    # each member's move completed before the next one started
    assert all(a[1] < b[0] for a, b in zip(intervals, intervals[1:], strict=False))


def _affinity(cloud: Cloud, members: list[str]) -> None:
    """An affinity group of servers of one host: Nova finds no other host for any of
    them alone, so a live migration off the host fails (its fallback runs)."""
    group = str(uuid.uuid4())
    first = cloud.region.servers[members[0]]
    cloud.region.server_groups[group] = {
        "id": group,
        "name": "together",
        "policy": "affinity",
        "rules": {},
        "members": list(members),
        "project_id": first.get("tenant_id"),
        "user_id": first.get("user_id"),
    }


def test_a_fallback_that_would_take_an_sla_workload_below_k_halts_the_host(cloud: Cloud):
    pinned = _active_on(cloud, HOST)[:2]
    other = _active_on(cloud, ELSEWHERE)[0]
    _affinity(cloud, pinned)
    _tag(cloud, [*pinned, other], "sla-web")
    runner = _runner(cloud, min_healthy=2)
    spec = cloud.spec("keep-k", RATIO, hosts=[HOST])
    spec.write_text(
        spec.read_text().replace("    apply:\n", "    drain: {fallback: stop}\n    apply:\n")
    )
    runner.start(load_spec(spec))
    result = runner.run("keep-k")
    assert result["status"] == "halted"
    steps = {s["step"]: s for s in records.steps_of(cloud.store, result["id"])}
    error = steps["drain"]["error"]
    assert steps["drain"]["status"] == "failed"
    assert "its fallback stop refused: workload 'web' (tag=sla-web) would keep 1 of 3" in error
    assert "below its min_healthy 2: the host is halted instead" in error
    # one member was stopped (2 of 3 still ran), the other kept running on the host
    statuses = sorted(cloud.region.servers[sid]["status"] for sid in pinned)
    assert statuses == ["ACTIVE", "SHUTOFF"]
    assert cloud.region.servers[other]["status"] == "ACTIVE"
    # nothing was changed on the host
    assert steps["apply"]["status"] == "pending"
    refused = [
        e
        for e in _entries(cloud)
        if e["event"] == "campaign.fallback" and e["details"].get("refused")
    ]
    assert len(refused) == 1 and refused[0]["details"]["fallback"] == "stop"


def _fill_zone_but(cloud: Cloud, host: str, free_mb: int) -> None:
    """Leave `free_mb` of RAM free on every other hypervisor (Placement inventory)."""
    by_name = providers_by_name(cloud.region)
    for hypervisor in cloud.region.hypervisors.values():
        if (hypervisor.get("service") or {}).get("host") == host:
            continue
        provider = by_name[hypervisor["hypervisor_hostname"]]
        memory = cloud.region.inventories[provider]["MEMORY_MB"]
        used = provider_usages(cloud.region, provider).get("MEMORY_MB", 0)
        memory["reserved"] = memory["total"] - used - free_mb
        # a new generation: the collection reads the provider again
        rp = cloud.region.resource_providers[provider]
        rp["generation"] = int(rp.get("generation") or 0) + 1
    collect(cloud.store, CLOUD, config_files=[str(cloud.clouds)])


def test_a_host_whose_servers_fit_nowhere_else_is_not_disabled(cloud: Cloud):
    _fill_zone_but(cloud, HOST, free_mb=1024)
    runner = cloud.runner()
    runner.start(load_spec(cloud.spec("full", RATIO, hosts=[HOST])))
    result = runner.run("full")
    assert result["status"] == "halted"
    steps = {s["step"]: s for s in records.steps_of(cloud.store, result["id"])}
    error = steps["drain"]["error"]
    assert error.startswith(f"not draining {HOST} (nothing was disabled): ")
    assert "flavor m1.large needs 4 vCPU, 8192 MB RAM, 80 GB disk; no host has enough MB RAM" in (
        error
    )
    assert "short in total: " in error and "MB RAM" in error
    # nothing was disabled nor moved
    assert cloud.service(HOST)["status"] == "enabled"
    actions = [e["details"]["action"] for e in _entries(cloud) if e["event"] == "action.started"]
    assert actions == []
    assert steps["apply"]["status"] == "pending"


def test_a_host_whose_servers_fit_is_drained_and_the_check_recorded(cloud: Cloud):
    runner = cloud.runner()
    runner.start(load_spec(cloud.spec("fits", RATIO, hosts=[HOST])))
    result = runner.run("fits")
    assert result["status"] == "completed", result["error"]
    drain = next(s for s in records.steps_of(cloud.store, result["id"]) if s["step"] == "drain")
    assert drain["detail"]["capacity"]["servers"] == len(drain["detail"]["moved"])
    assert drain["detail"]["capacity"]["destinations"] >= 2


def test_no_server_drained_off_a_batch_host_lands_on_another_host_of_the_batch(cloud: Cloud):
    # the canary host cmp0002 moves its servers to cmp0010; then the batch cmp0003 +
    # cmp0004, where cmp0004 (then the host with the most free memory) is slow to pass
    # its pre-check: cmp0003 is disabled and drained while cmp0004 is still enabled
    slow = '      - command: test "$STACKFLEET_HOST" != cmp0004 || sleep 3'
    spec = cloud.spec("batch", RATIO)
    text = spec.read_text().replace(
        "  steps:\n", f"  steps:\n    pre_check:\n      checks:\n{slow}\n"
    )
    spec.write_text(text)
    batch = {"cmp0003", "cmp0004"}
    before = {sid: s.get("OS-EXT-SRV-ATTR:host") for sid, s in cloud.region.servers.items()}
    runner = CampaignRunner(cloud.store, connections=Connections([str(cloud.clouds)]))
    runner.start(load_spec(spec))
    assert runner.run("batch")["status"] == "completed"
    moves = sorted(
        (m["instance_uuid"], m["source_compute"], m["dest_compute"])
        for m in cloud.region.migrations.values()
        if m["source_compute"] in batch or m["dest_compute"] in batch
    )
    assert {dest for _, _, dest in moves}.isdisjoint(batch), moves
    # each server of the batch moved once, off the host it ran on
    assert [(sid, source) for sid, source, _ in moves] == sorted(
        (sid, host) for sid, host in before.items() if host in batch
    ), moves
