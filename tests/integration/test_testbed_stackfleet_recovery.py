"""Host recovery end to end on the real testbed, done by StackFleet: `stackfleet serve`
runs with its health job, recovery on and executing (docs/health.md), and the test only
breaks things and reads StackFleet's API and OpenStack back.

Three drills on cmp2 (cmp1 survives), in this order, each leaving cmp2 whole again:

1. **process failure**: only nova-compute-cmp2 dies; the host answers on its
   management port and its BMC says On. StackFleet must not evacuate anything: its
   restart hook (`testbed/ctl start nova-compute-{host}`) brings the service back.
2. **fencing fails**: the BMC of cmp2 is stopped, then the host crashes. StackFleet sees
   a host failure but cannot confirm a fence: the recovery fails, nothing is forced
   down or evacuated, and `HealthRecoveryFailed` fires.
3. **host failure**: cmp2 crashes (nova-compute and management port SIGKILLed, BMC left
   On as after a kernel panic). StackFleet detects it, fences it through its BMC
   (Redfish ForceOff, read back Off), forces the compute service down, evacuates the
   opted-in servers, starts them (they arrive SHUTOFF at 2.95+) and leaves the host
   disabled. Of the three servers on cmp2 (tag `sfit-ha`): `plain` and `volume` (boots
   from a volume) end ACTIVE on cmp1; `anti_member`, whose anti-affinity peer holds cmp1
   (the only other host), is the right one to leave: evacuating it could only fail (no
   valid host) or break its group's policy, so StackFleet leaves it on cmp2 with the
   reason, for the operator.

The shared fleet's servers on cmp2 carry no opt-in tag and stay where they are.
Afterwards cmp2 is powered on and started again (`testbed/up --repair`), its service
un-forced and enabled, and the fleet's servers on it spawned again (`respawn_servers`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest
from testbed_fleet import PREFIX, Testbed, wait_until
from testbed_hosts import (
    bmc_power,
    compute_service,
    ctl,
    ctl_ok,
    heartbeat,
    kill,
    management_port_open,
    respawn_servers,
    restore_compute_service,
)
from testbed_stackfleet import Daemon, boot_tagged

pytestmark = [pytest.mark.integration, pytest.mark.moves_fleet]

VICTIM = "cmp2"
SURVIVOR = "cmp1"
NAME = f"{PREFIX}sfr-"


# -- the drill's servers --------------------------------------------------------------------


@dataclass
class Drill:
    ids: dict[str, str]  # role -> server id: plain, volume, anti_member (cmp2), anti_peer
    volume_id: str


def _delete_drill(admin: Any, admin_demo: Any) -> None:
    """Everything named sfit-sfr-* (also a crashed run's leftovers)."""
    compute = admin.compute
    servers = [s for s in compute.servers(all_projects=True) if (s.name or "").startswith(NAME)]
    for server in servers:
        with contextlib.suppress(openstack.exceptions.NotFoundException):
            compute.delete_server(server, force=True)
    for server in servers:
        compute.wait_for_delete(server, wait=120)
    for volume in admin.block_storage.volumes(all_projects=True):
        if (volume.name or "").startswith(NAME):
            admin.block_storage.delete_volume(volume, ignore_missing=True)
            admin.block_storage.wait_for_delete(volume, wait=60)
    for group in admin_demo.compute.server_groups():
        if (group.name or "").startswith(NAME):
            admin_demo.compute.delete_server_group(group, ignore_missing=True)
    for network in admin.network.networks():
        if (network.name or "").startswith(NAME):
            admin.network.delete_network(network, ignore_missing=True)
    for flavor in compute.flavors(is_public=None):
        if flavor.name.startswith(NAME):
            compute.delete_flavor(flavor, ignore_missing=True)


@pytest.fixture(scope="module")
def drill(testbed: Testbed) -> Iterator[Drill]:
    admin = testbed.connect(testbed.admin_cloud)
    demo = testbed.connect(testbed.admin_cloud, project="demo")
    _delete_drill(admin, demo)
    for host in (VICTIM, SURVIVOR):
        service = compute_service(admin, host)
        assert (service.state, service.status, service.is_forced_down) == (
            "up",
            "enabled",
            False,
        ), f"{host} must be up and enabled before the drill: testbed/up --repair"
    try:
        image = admin.image.find_image(testbed.info["image"], ignore_missing=False)
        flavor = admin.compute.create_flavor(
            name=f"{NAME}flavor", vcpus=1, ram=64, disk=1, is_public=True
        )
        network = demo.network.create_network(name=f"{NAME}net")
        demo.network.create_subnet(
            network_id=network.id, cidr="10.77.0.0/24", ip_version=4, enable_dhcp=False
        )
        group = demo.compute.create_server_group(name=f"{NAME}anti", policy="anti-affinity")
        volume = demo.block_storage.create_volume(name=f"{NAME}boot", size=1)
        volume = demo.block_storage.wait_for_status(volume, "available", wait=60)
        # the fake Cinder driver cannot copy an image: an empty volume marked bootable
        demo.block_storage.set_volume_bootable_status(volume, True)

        def boot(role: str, host: str, **extra: Any) -> Any:
            if "block_device_mapping" not in extra:
                extra["image_id"] = image.id
            return boot_tagged(demo, f"{NAME}{role}", host, flavor.id, network.id, **extra)

        # the peer first: the anti-affinity check at boot needs it placed
        peer = demo.compute.wait_for_server(
            boot("anti-peer", SURVIVOR, scheduler_hints={"group": group.id}),
            status="ACTIVE",
            wait=180,
        )
        booting = {
            "plain": boot("plain", VICTIM),
            "volume": boot(
                "volume",
                VICTIM,
                block_device_mapping=[
                    {
                        "boot_index": 0,
                        "uuid": volume.id,
                        "source_type": "volume",
                        "destination_type": "volume",
                        "delete_on_termination": False,
                    }
                ],
            ),
            "anti_member": boot("anti-member", VICTIM, scheduler_hints={"group": group.id}),
        }
        ids = {"anti_peer": peer.id}
        for role, server in booting.items():
            ids[role] = demo.compute.wait_for_server(server, status="ACTIVE", wait=180).id
        for role in ("plain", "volume", "anti_member"):
            assert admin.compute.get_server(ids[role]).compute_host == VICTIM, role
        yield Drill(ids=ids, volume_id=volume.id)
    finally:
        _delete_drill(admin, demo)


@pytest.fixture(scope="module")
def daemon(
    testbed: Testbed, drill: Drill, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Daemon]:
    """`stackfleet serve` over the testbed, started once the drill's servers exist (its
    first pass records them and their anti-affinity group)."""
    running = Daemon(testbed, Path(tmp_path_factory.mktemp("serve"))).start()
    try:
        running.wait_healthy(VICTIM, SURVIVOR)
        yield running
    finally:
        running.stop()
        log = running.log_tail(200_000)
        assert "Traceback" not in log, log[-4000:]


def _hosts_on(admin: Any, drill: Drill) -> dict[str, tuple[str, str]]:
    out = {}
    for role, sid in drill.ids.items():
        server = admin.compute.get_server(sid)
        out[role] = (server.status, server.compute_host)
    return out


def _repair(testbed: Testbed, daemon: Daemon) -> None:
    """cmp2 whole again: powered on and started (`up --repair`), its service un-forced
    and enabled, its spawned guests back, and StackFleet judging it healthy."""
    admin = testbed.connect(testbed.admin_cloud)
    repaired = testbed.repair()
    assert repaired.returncode == 0, repaired.stdout[-2000:] + repaired.stderr[-2000:]
    restore_compute_service(admin, VICTIM)
    wait_until(
        f"nova-compute@{VICTIM} up again",
        lambda: compute_service(admin, VICTIM).state == "up",
        heartbeat(testbed)["service_down_time"] + 60,
        interval=2,
    )
    respawn_servers(admin, VICTIM)
    daemon.wait_healthy(VICTIM, SURVIVOR, timeout=120)


# -- 1. process failure -------------------------------------------------------------------


@dataclass
class ProcessDrill:
    recovery: dict[str, Any]
    host_recoveries: list[dict[str, Any]]
    before: dict[str, tuple[str, str]]
    after: dict[str, tuple[str, str]]
    verdict: dict[str, Any]
    service_after: Any


@pytest.fixture(scope="module")
def process_failure(testbed: Testbed, daemon: Daemon, drill: Drill) -> ProcessDrill:
    admin = testbed.connect(testbed.admin_cloud)
    before = _hosts_on(admin, drill)
    after_id = daemon.newest_recovery_id()
    kill(testbed, f"nova-compute-{VICTIM}")
    try:
        verdict = wait_until(
            f"StackFleet judges {VICTIM} a process failure",
            lambda: (v := daemon.hosts().get(VICTIM, {})).get("failure") == "process" and v,
            60,
            0.5,
        )
        recovery = daemon.wait_recovery_ended(VICTIM, "service", after_id, timeout=180)
        host_recoveries = [
            r for r in daemon.recoveries() if r["kind"] == "host" and r["id"] > after_id
        ]
        return ProcessDrill(
            recovery=recovery,
            host_recoveries=host_recoveries,
            before=before,
            after=_hosts_on(admin, drill),
            verdict=verdict,
            service_after=compute_service(admin, VICTIM),
        )
    finally:
        if ctl(testbed, "status", f"nova-compute-{VICTIM}").returncode != 0:
            ctl_ok(testbed, "start", f"nova-compute-{VICTIM}")
        _repair(testbed, daemon)


def test_a_killed_nova_compute_on_a_live_host_is_judged_a_process_failure(
    process_failure: ProcessDrill,
) -> None:
    verdict = process_failure.verdict
    assert verdict["state"] == "degraded", verdict
    assert "management address answers" in verdict["reason"], verdict


def test_a_process_failure_evacuates_nothing(process_failure: ProcessDrill) -> None:
    assert process_failure.host_recoveries == []
    assert process_failure.after == process_failure.before
    assert not any(s["name"] in ("fence", "evacuate") for s in process_failure.recovery["steps"])


def test_the_restart_hook_brings_nova_compute_back(process_failure: ProcessDrill) -> None:
    recovery = process_failure.recovery
    assert recovery["status"] == "succeeded", recovery
    assert [s["name"] for s in recovery["steps"]] == ["restart-service"], recovery["steps"]
    service = process_failure.service_after
    assert (service.state, service.status, service.is_forced_down) == ("up", "enabled", False)


# -- 2. fencing fails ---------------------------------------------------------------------


@dataclass
class FenceFailure:
    recovery: dict[str, Any]
    before: dict[str, tuple[str, str]]
    after: dict[str, tuple[str, str]]
    service: Any
    alerts: list[dict[str, Any]]


@pytest.fixture(scope="module")
def fence_failure(
    testbed: Testbed, daemon: Daemon, drill: Drill, process_failure: ProcessDrill
) -> FenceFailure:
    admin = testbed.connect(testbed.admin_cloud)
    before = _hosts_on(admin, drill)
    after_id = daemon.newest_recovery_id()
    ctl_ok(testbed, "stop", f"bmc-{VICTIM}")
    try:
        assert bmc_power(testbed, VICTIM) is None, "the BMC still answers"
        kill(testbed, f"host-{VICTIM}")
        recovery = daemon.wait_recovery_ended(VICTIM, "host", after_id, timeout=120)
        alerts = wait_until(
            "HealthRecoveryFailed fires",
            lambda: [
                a for a in daemon.firing() if a["labels"]["alertname"] == "HealthRecoveryFailed"
            ],
            30,
            1,
        )
        return FenceFailure(
            recovery=recovery,
            before=before,
            after=_hosts_on(admin, drill),
            service=compute_service(admin, VICTIM),
            alerts=alerts,
        )
    finally:
        ctl_ok(testbed, "start", f"bmc-{VICTIM}")
        _repair(testbed, daemon)


def test_an_unconfirmed_fence_halts_the_recovery_before_anything_is_evacuated(
    fence_failure: FenceFailure,
) -> None:
    recovery = fence_failure.recovery
    assert recovery["status"] == "failed", recovery
    assert "fence not confirmed" in recovery["error"], recovery["error"]
    assert [(s["name"], s["status"]) for s in recovery["steps"]] == [("fence", "failed")]
    assert fence_failure.after == fence_failure.before
    assert not fence_failure.service.is_forced_down
    assert fence_failure.service.status == "enabled"


def test_an_unconfirmed_fence_raises_an_alert(fence_failure: FenceFailure) -> None:
    [alert] = fence_failure.alerts
    assert alert["labels"]["host"] == VICTIM
    assert alert["labels"]["recovery"] == str(fence_failure.recovery["id"])


# -- 3. host failure ----------------------------------------------------------------------


@dataclass
class HostDrill:
    killed_at: float
    recovery: dict[str, Any]
    after: dict[str, tuple[str, str]]
    power: str | None
    service: Any
    audit: list[dict[str, Any]]
    nova_down_at_detection: bool
    port_open_after_kill: bool
    timings: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def host_failure(
    testbed: Testbed, daemon: Daemon, drill: Drill, fence_failure: FenceFailure
) -> Iterator[HostDrill]:
    admin = testbed.connect(testbed.admin_cloud)
    after_id = daemon.newest_recovery_id()
    assert bmc_power(testbed, VICTIM) == "On"
    killed_at = kill(testbed, f"host-{VICTIM}")
    wall = time.time() - time.monotonic()
    try:
        port_open = management_port_open(testbed, VICTIM)
        recovery = daemon.wait_recovery_ended(VICTIM, "host", after_id, timeout=240)
        created = _epoch(recovery["created_at"])
        # Nova's own verdict at the moment StackFleet decided (its service_down_time
        # had not passed: StackFleet did not wait for it)
        nova_down = created - (killed_at + wall) >= heartbeat(testbed)["service_down_time"]
        result = HostDrill(
            killed_at=killed_at,
            recovery=recovery,
            after=_hosts_on(admin, drill),
            power=bmc_power(testbed, VICTIM),
            service=compute_service(admin, VICTIM),
            audit=daemon.audit(),
            nova_down_at_detection=nova_down,
            port_open_after_kill=port_open,
        )
        for step in recovery["steps"]:
            if step["finished_at"]:
                result.timings[f"{step['name']} {step['target']}"] = (
                    _epoch(step["finished_at"]) - wall - killed_at
                )
        result.timings["detected"] = created - wall - killed_at
        print(f"\n[stackfleet recovery] seconds after the kill: {result.timings}")
        yield result
    finally:
        _repair(testbed, daemon)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_stackfleet_detects_the_crashed_host_before_nova_does(host_failure: HostDrill) -> None:
    assert not host_failure.port_open_after_kill
    recovery = host_failure.recovery
    assert recovery["trigger"] == "host-failure"
    assert any("management address" in e for e in recovery["evidence"]), recovery["evidence"]
    assert not host_failure.nova_down_at_detection


def test_the_recovery_succeeds_with_every_step_recorded(host_failure: HostDrill) -> None:
    recovery = host_failure.recovery
    assert recovery["status"] == "succeeded", (recovery["error"], recovery["steps"])
    steps = recovery["steps"]
    assert [s["name"] for s in steps[:2]] == ["fence", "force-down"]
    assert all(s["status"] == "done" for s in steps), steps
    assert all(s["started_at"] and s["finished_at"] for s in steps), steps
    by_name: dict[str, set[str]] = {}
    for step in steps:
        by_name.setdefault(step["name"], set()).add(step["target"])
    assert set(by_name) == {"fence", "force-down", "evacuate", "start", "verify"}, steps


def test_the_host_is_fenced_through_its_bmc(host_failure: HostDrill) -> None:
    assert host_failure.power == "Off"
    [fence] = [s for s in host_failure.recovery["steps"] if s["name"] == "fence"]
    assert fence["status"] == "done"


def test_the_host_is_left_forced_down_and_disabled_with_the_reason(
    host_failure: HostDrill,
) -> None:
    service = host_failure.service
    assert service.is_forced_down
    assert service.status == "disabled"
    rid = host_failure.recovery["id"]
    assert service.disabled_reason.startswith(f"stackfleet recovery {rid}: done"), (
        service.disabled_reason
    )
    assert "host left disabled for the operator" in service.disabled_reason


def test_opted_in_servers_run_on_the_surviving_host(host_failure: HostDrill, drill: Drill) -> None:
    after = host_failure.after
    assert after["plain"] == ("ACTIVE", SURVIVOR)
    assert after["volume"] == ("ACTIVE", SURVIVOR)
    evacuated = {s["target"] for s in host_failure.recovery["steps"] if s["name"] == "evacuate"}
    assert evacuated == {drill.ids["plain"], drill.ids["volume"]}


def test_the_anti_affinity_member_stays_with_the_reason(
    host_failure: HostDrill, drill: Drill
) -> None:
    assert host_failure.after["anti_member"][1] == VICTIM
    assert host_failure.after["anti_peer"] == ("ACTIVE", SURVIVOR)
    left = [
        s
        for s in host_failure.recovery["details"]["servers"]
        if s["id"] == drill.ids["anti_member"]
    ]
    assert [s["eligible"] for s in left] == [False]
    assert "anti-affinity" in left[0]["why"]


def test_the_audit_log_shows_every_step(host_failure: HostDrill, drill: Drill) -> None:
    recovery = host_failure.recovery
    since = _epoch(recovery["created_at"]) - 1
    mine = [
        e
        for e in host_failure.audit
        if _epoch(e["at"]) >= since and (e["policy"] or "").startswith("health/")
    ]
    events = {e["event"] for e in mine if (e["details"] or {}).get("recovery") == recovery["id"]}
    assert {"recovery.started", "recovery.succeeded"} <= events, events
    completed = {
        ((e["details"] or {}).get("action"), e["target"].rsplit("/", 1)[-1])
        for e in mine
        if e["event"] == "action.completed" and (e["details"] or {}).get("verified")
    }
    # the fence's target is the hypervisor, the force-down's the compute service
    expected = {("fence", ""), ("force-down-service", "")}
    for role in ("plain", "volume"):
        expected |= {("evacuate", drill.ids[role]), ("start", drill.ids[role])}
    found = {(a, t if a in ("evacuate", "start") else "") for a, t in completed}
    assert expected <= found, sorted(found)
