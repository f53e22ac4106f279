"""What a host recovery relies on, on real Nova: a compute host of the testbed crashes
(its nova-compute and its management port die, its BMC stays powered on, as after a
kernel panic), is fenced through its BMC, forced down and disabled, and its servers are
evacuated to the surviving host and started there. Also a process failure: only
nova-compute dies on a live host, and a restart hook brings it back.

Done here with openstacksdk, requests and py-amqp directly (the health actions will do
the same). Measured in the same run, and printed (`pytest -s`): when the compute.<host>
queue loses its consumer on RabbitMQ after the kill, and when Nova itself counts the
compute down at the testbed's heartbeat settings (`testbed/up --nova-defaults`: Nova's
defaults, report_interval 10 s and service_down_time 60 s).

The anti-affinity outcome: one server of a (hard) anti-affinity group runs on each host.
Evacuating the one on the dead host has nowhere to go — its peer holds the only other
host — so the scheduler must refuse it: Nova answers the request (202 semantics: the
evacuation is asynchronous), the conductor finds no valid host, marks the evacuation's
migration `error` and the server ERROR, still on the dead host. That is the right
outcome: the group's policy is kept; the server waits, down, for its host to be repaired
(or for capacity), and a recovery must record it as not placeable and alert, not retry,
and never force a host.

Everything runs on cmp2 (cmp1 survives); the module restores cmp2 whatever happens
(`testbed/up --repair` powers it on through its BMC and starts its processes; then the
service is un-forced and enabled). Its name sorts after test_testbed_host_failure.py and
before the policy tests, which need both hosts up again, and their servers running: a
restarted nova-compute's fake hypervisor has forgotten its guests, which a hard reboot
spawns again (`respawn_servers`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import openstack.exceptions
import pytest
from testbed_fleet import PREFIX, Testbed, wait_until
from testbed_hosts import (
    ConsumerWatch,
    bmc_power,
    compute_service,
    ctl,
    ctl_ok,
    fence,
    heartbeat,
    host_info,
    kill,
    management_port_open,
    respawn_servers,
    restore_compute_service,
)

from stackfleet.sources.redfish import load_bmc_map, sweep

pytestmark = pytest.mark.integration

VICTIM = "cmp2"
SURVIVOR = "cmp1"
NAME = f"{PREFIX}hr-"
REASON = "stackfleet recovery: host down, fenced through its BMC, evacuating"
# At 2.95 and later an evacuated server arrives SHUTOFF on its new host.
EVACUATE_MICROVERSION = "2.95"
# The queue's consumer must be gone this soon after the process died (its TCP
# connection closes with it).
CONSUMER_LOST_WITHIN = 2.0

TIMINGS: dict[str, float] = {}


def _note(what: str, seconds: float) -> None:
    TIMINGS[what] = seconds
    print(f"\n[host recovery] {what}: {seconds:.2f} s")


def _server(conn: Any, server_id: str) -> Any:
    return conn.compute.get_server(server_id)


# -- servers of the drill ---------------------------------------------------------------


@dataclass
class DrillServers:
    """The drill's servers by role: `plain` and `volume` (boots from a volume) on the
    victim; `anti_peer` (survivor) and `anti_member` (victim) in an anti-affinity group."""

    ids: dict[str, str]
    volume_id: str
    group_id: str
    created: list[tuple[str, str]] = field(default_factory=list)

    @property
    def on_victim(self) -> list[str]:
        return ["plain", "volume", "anti_member"]


def _delete_drill(admin: Any, admin_demo: Any) -> None:
    """Everything named sfit-hr-* (also a crashed run's leftovers)."""
    compute = admin.compute
    servers = [s for s in compute.servers(all_projects=True) if (s.name or "").startswith(NAME)]
    for server in servers:
        with contextlib.suppress(openstack.exceptions.NotFoundException):
            compute.delete_server(server, force=True)
    for server in servers:
        compute.wait_for_delete(server, wait=120)
    storage = admin.block_storage
    for volume in storage.volumes(all_projects=True):
        if (volume.name or "").startswith(NAME):
            storage.delete_volume(volume, ignore_missing=True)
            storage.wait_for_delete(volume, wait=60)
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
def drill_servers(testbed: Testbed) -> Iterator[DrillServers]:
    admin = testbed.connect(testbed.admin_cloud)
    admin_demo = testbed.connect(testbed.admin_cloud, project="demo")
    _delete_drill(admin, admin_demo)
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
        network = admin_demo.network.create_network(name=f"{NAME}net")
        admin_demo.network.create_subnet(
            network_id=network.id, cidr="10.78.0.0/24", ip_version=4, enable_dhcp=False
        )
        group = admin_demo.compute.create_server_group(name=f"{NAME}anti", policy="anti-affinity")
        volume = admin_demo.block_storage.create_volume(name=f"{NAME}boot", size=1)
        volume = admin_demo.block_storage.wait_for_status(volume, "available", wait=60)
        # The fake Cinder driver cannot copy an image into a volume: an empty volume
        # marked bootable is what the server boots from.
        admin_demo.block_storage.set_volume_bootable_status(volume, True)

        def boot(role: str, host: str, **extra: Any) -> Any:
            attrs: dict[str, Any] = {
                "name": f"{NAME}{role}",
                "flavor_id": flavor.id,
                "networks": [{"uuid": network.id}],
                "availability_zone": f"nova:{host}",
            }
            if "block_device_mapping" not in extra:
                attrs["image_id"] = image.id
            return admin_demo.compute.create_server(**attrs, **extra)

        # The peer first: the anti-affinity check at boot needs it placed.
        anti_peer = admin_demo.compute.wait_for_server(
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
        ids = {"anti_peer": anti_peer.id}
        for role, server in booting.items():
            ids[role] = admin_demo.compute.wait_for_server(server, status="ACTIVE", wait=180).id
        for role, host in (("plain", VICTIM), ("volume", VICTIM), ("anti_peer", SURVIVOR)):
            assert _server(admin, ids[role]).compute_host == host, f"{role} not on {host}"
        assert _server(admin, ids["anti_member"]).compute_host == VICTIM
        yield DrillServers(ids=ids, volume_id=volume.id, group_id=group.id)
    finally:
        _delete_drill(admin, admin_demo)


# -- the crash and what follows it --------------------------------------------------------


@dataclass
class Crash:
    killed_at: float
    watch: ConsumerWatch
    port_open_after: bool
    bmc_after: str | None
    restored: bool = False


def _restore(testbed: Testbed, crash: Crash) -> None:
    """`testbed/up --repair` powers cmp2 on through its BMC and starts its management
    port and nova-compute; then the service is un-forced and enabled and reports up."""
    if crash.restored:
        return
    crash.watch.stop()
    admin = testbed.connect(testbed.admin_cloud)
    repaired = testbed.repair()
    assert repaired.returncode == 0, repaired.stdout[-2000:] + repaired.stderr[-2000:]
    # Only now: Nova refuses to un-force a host whose evacuations the restarted compute
    # has not completed yet.
    restore_compute_service(admin, VICTIM)
    beat = heartbeat(testbed)
    wait_until(
        f"nova-compute@{VICTIM} up again after the repair",
        lambda: compute_service(admin, VICTIM).state == "up",
        timeout=beat["service_down_time"] + 60,
        interval=2,
    )
    # the fleet's servers still on cmp2 in Nova are gone from its fake hypervisor
    respawn_servers(admin, VICTIM)
    crash.restored = True


@pytest.fixture(scope="module")
def crash(testbed: Testbed, drill_servers: DrillServers) -> Iterator[Crash]:
    """cmp2 crashes: `testbed/ctl kill host-cmp2` (SIGKILL to its management port and its
    nova-compute, no shutdown); its BMC stays On."""
    assert bmc_power(testbed, VICTIM) == "On", f"the BMC of {VICTIM} must say On first"
    assert management_port_open(testbed, VICTIM), f"{VICTIM}'s management port must answer"
    watch = ConsumerWatch(testbed, VICTIM).start()
    killed_at = kill(testbed, f"host-{VICTIM}")
    result = Crash(
        killed_at=killed_at,
        watch=watch,
        port_open_after=management_port_open(testbed, VICTIM),
        bmc_after=bmc_power(testbed, VICTIM),
    )
    try:
        yield result
    finally:
        _restore(testbed, result)


@pytest.fixture(scope="module")
def fenced(testbed: Testbed, crash: Crash) -> float:
    """Seconds from the ForceOff request until the BMC reads back Off."""
    seconds = fence(testbed, VICTIM)
    _note("fence: ForceOff until the BMC reads Off", seconds)
    return seconds


@pytest.fixture(scope="module")
def nova_down(testbed: Testbed, crash: Crash, fenced: float) -> float:
    """Seconds from the kill until Nova itself lists the compute service down (not
    forced: at the testbed's heartbeat settings)."""
    admin = testbed.connect(testbed.admin_cloud)
    beat = heartbeat(testbed)
    limit = beat["service_down_time"] + beat["report_interval"] + 30

    def down() -> bool:
        return compute_service(admin, VICTIM).state == "down"

    wait_until(f"Nova lists nova-compute@{VICTIM} down", down, limit, interval=0.5)
    seconds = time.monotonic() - crash.killed_at
    _note(f"Nova's own down detection ({beat['mode']} heartbeat {beat})", seconds)
    return seconds


@pytest.fixture(scope="module")
def forced_down(testbed: Testbed, nova_down: float) -> Any:
    admin = testbed.connect(testbed.admin_cloud)
    service = compute_service(admin, VICTIM)
    admin.compute.update_service_forced_down(service, forced=True)
    admin.compute.disable_service(service, disabled_reason=REASON)
    return compute_service(admin, VICTIM)


@dataclass
class Evacuation:
    requested: dict[str, int]  # role -> HTTP status of the evacuate request
    arrived: dict[str, Any]  # plain/volume: the server when it reached the survivor
    started: dict[str, Any]  # plain/volume: the server ACTIVE after start
    refused: Any  # anti_member: the server after the evacuation failed
    migrations: list[Any]  # anti_member's evacuation migrations


@pytest.fixture(scope="module")
def evacuation(testbed: Testbed, drill_servers: DrillServers, forced_down: Any) -> Evacuation:
    admin = testbed.connect(testbed.admin_cloud)
    ids = drill_servers.ids
    requested_at = time.monotonic()
    requested = {}
    for role in drill_servers.on_victim:
        response = admin.compute.post(
            f"/servers/{ids[role]}/action",
            json={"evacuate": {}},
            microversion=EVACUATE_MICROVERSION,
            raise_exc=False,
        )
        requested[role] = response.status_code
    arrived = {}
    for role in ("plain", "volume"):

        def on_survivor(role: str = role) -> Any:
            server = _server(admin, ids[role])
            if server.status == "ERROR":
                raise AssertionError(f"evacuating {role} failed: {server.fault}")
            landed = server.compute_host == SURVIVOR and server.task_state is None
            return server if landed and server.status != "REBUILD" else None

        arrived[role] = wait_until(f"{role} evacuated to {SURVIVOR}", on_survivor, 120, 0.5)
    _note("evacuate requested until both servers on the survivor", time.monotonic() - requested_at)
    for role in ("plain", "volume"):
        if arrived[role].status == "SHUTOFF":
            admin.compute.start_server(ids[role])
    started = {
        role: admin.compute.wait_for_server(_server(admin, ids[role]), status="ACTIVE", wait=120)
        for role in ("plain", "volume")
    }
    _note("evacuate requested until both servers ACTIVE again", time.monotonic() - requested_at)
    refused = wait_until(
        "the anti-affinity member's evacuation ends",
        lambda: (s := _server(admin, ids["anti_member"])).status == "ERROR" and s,
        120,
        1,
    )
    migrations = list(admin.compute.migrations(server_id=ids["anti_member"]))
    return Evacuation(requested, arrived, started, refused, migrations)


# -- before the crash: the BMC map, and a process failure on the survivor -------------------


def test_the_testbed_bmc_map_reads_each_compute_host_powered_on(testbed: Testbed) -> None:
    bmc_map = load_bmc_map(testbed.info["bmc_map"])
    targets = [t for t in bmc_map.targets if t.name in ("cmp1", "cmp2")]
    assert sorted(t.name for t in targets) == ["cmp1", "cmp2"]
    results = sweep(targets, timeout=10)
    assert {r.target.name: (r.status, r.reading and r.reading.power_state) for r in results} == {
        "cmp1": ("ok", "On"),
        "cmp2": ("ok", "On"),
    }


def test_a_bmc_refuses_wrong_credentials(testbed: Testbed) -> None:
    bmc = host_info(testbed, SURVIVOR)["bmc"]
    [target] = [t for t in load_bmc_map(testbed.info["bmc_map"]).targets if t.name == SURVIVOR]
    assert (target.address, target.system_id) == (bmc["address"], bmc["system_id"])
    [result] = sweep([replace(target, password="not-the-password")], timeout=10)
    assert result.status == "auth_failed"


@dataclass
class ProcessFailure:
    port_open: bool
    bmc: str | None
    consumer_lost_after: float | None
    hook_seconds: float
    back_up_after: float


@pytest.fixture(scope="module")
def process_failure(testbed: Testbed) -> Iterator[ProcessFailure]:
    """Only nova-compute dies on cmp1 (SIGKILL); the host stays reachable and powered.
    `testbed/ctl start nova-compute-cmp1` is the restart hook a recovery would run."""
    admin = testbed.connect(testbed.admin_cloud)
    assert compute_service(admin, SURVIVOR).state == "up"
    watch = ConsumerWatch(testbed, SURVIVOR).start()
    try:
        killed_at = kill(testbed, f"nova-compute-{SURVIVOR}")
        watch.wait(10)
        port_open, power = management_port_open(testbed, SURVIVOR), bmc_power(testbed, SURVIVOR)
        hook_started = time.monotonic()
        ctl_ok(testbed, "start", f"nova-compute-{SURVIVOR}")
        hook_seconds = time.monotonic() - hook_started
        wait_until(
            f"a consumer on compute.{SURVIVOR} again",
            lambda: watch.amqp_consumers() >= 1,
            timeout=120,
            interval=0.5,
        )
        back = time.monotonic() - killed_at
        yield ProcessFailure(
            port_open=port_open,
            bmc=power,
            consumer_lost_after=watch.lost_amqp and watch.lost_amqp - killed_at,
            hook_seconds=hook_seconds,
            back_up_after=back,
        )
    finally:
        watch.stop()
        if ctl(testbed, "status", f"nova-compute-{SURVIVOR}").returncode != 0:
            ctl(testbed, "start", f"nova-compute-{SURVIVOR}")
        wait_until(
            f"nova-compute@{SURVIVOR} up",
            lambda: compute_service(admin, SURVIVOR).state == "up",
            timeout=heartbeat(testbed)["service_down_time"] + 60,
            interval=2,
        )
        # the restarted compute's fake hypervisor lost the fleet's servers on cmp1 (the
        # policy tests stop one of them)
        respawn_servers(admin, SURVIVOR)


def test_a_process_failure_leaves_the_host_reachable_and_powered_on(
    process_failure: ProcessFailure,
) -> None:
    assert process_failure.port_open
    assert process_failure.bmc == "On"


def test_a_killed_nova_compute_loses_its_queue_consumer_at_once(
    process_failure: ProcessFailure,
) -> None:
    lost = process_failure.consumer_lost_after
    assert lost is not None, f"compute.{SURVIVOR} kept its consumer after the kill"
    _note("process kill until compute.<host> has no consumer (AMQP)", lost)
    assert lost <= CONSUMER_LOST_WITHIN


def test_the_restart_hook_brings_the_consumer_back(process_failure: ProcessFailure) -> None:
    _note("restart hook (testbed/ctl start) returned", process_failure.hook_seconds)
    _note("process kill until a consumer is back", process_failure.back_up_after)
    assert process_failure.back_up_after < 120


# -- the host crash ---------------------------------------------------------------------------


def test_a_crashed_host_refuses_its_management_port_with_its_bmc_on(crash: Crash) -> None:
    assert not crash.port_open_after
    assert crash.bmc_after == "On"


def test_the_crashed_hosts_queue_loses_its_consumer_at_once(crash: Crash) -> None:
    crash.watch.wait(10)
    assert not crash.watch.errors, crash.watch.errors
    assert crash.watch.lost_amqp is not None, f"compute.{VICTIM} kept its consumer for 10 s"
    amqp_seconds = crash.watch.lost_amqp - crash.killed_at
    _note("host crash (process kill) until no consumer, AMQP passive declare", amqp_seconds)
    if crash.watch.lost_api is not None:
        _note("... as the management API's consumer_details shows it",
              crash.watch.lost_api - crash.killed_at)  # fmt: skip
    assert amqp_seconds <= CONSUMER_LOST_WITHIN


def test_fencing_powers_the_host_off_as_its_bmc_reads_back(testbed: Testbed, fenced: float) -> None:
    assert bmc_power(testbed, VICTIM) == "Off"
    # sushy-tools applies a power change 1-11 s after the request
    assert fenced <= 20


def test_a_fenced_host_cannot_start_its_nova_compute(testbed: Testbed, fenced: float) -> None:
    refused = ctl(testbed, "start", f"nova-compute-{VICTIM}")
    assert refused.returncode != 0
    assert "powered off" in refused.stdout + refused.stderr
    assert ctl(testbed, "status", f"nova-compute-{VICTIM}").returncode != 0


def test_nova_counts_the_crashed_compute_down_after_its_service_down_time(
    testbed: Testbed, nova_down: float
) -> None:
    beat = heartbeat(testbed)
    # down once its last heartbeat is service_down_time old; that heartbeat was at most
    # report_interval before the kill (and the state is polled every 0.5 s)
    earliest = beat["service_down_time"] - beat["report_interval"] - 1
    assert earliest <= nova_down <= beat["service_down_time"] + 5


def test_forcing_down_and_disabling_records_the_reason(forced_down: Any) -> None:
    assert forced_down.is_forced_down
    assert forced_down.state == "down"
    assert forced_down.status == "disabled"
    assert forced_down.disabled_reason == REASON


def test_evacuations_are_accepted_for_every_server_of_the_host(evacuation: Evacuation) -> None:
    assert evacuation.requested == {"plain": 200, "volume": 200, "anti_member": 200}


def test_evacuated_servers_arrive_shutoff_on_the_survivor(evacuation: Evacuation) -> None:
    assert {r: (s.status, s.compute_host) for r, s in evacuation.arrived.items()} == {
        "plain": ("SHUTOFF", SURVIVOR),
        "volume": ("SHUTOFF", SURVIVOR),
    }


def test_started_evacuated_servers_run_on_the_survivor(evacuation: Evacuation) -> None:
    assert {r: (s.status, s.compute_host) for r, s in evacuation.started.items()} == {
        "plain": ("ACTIVE", SURVIVOR),
        "volume": ("ACTIVE", SURVIVOR),
    }


def test_the_boot_volume_follows_its_evacuated_server(
    testbed: Testbed, drill_servers: DrillServers, evacuation: Evacuation
) -> None:
    admin = testbed.connect(testbed.admin_cloud)
    volume = admin.block_storage.get_volume(drill_servers.volume_id)
    assert volume.status == "in-use"
    assert [a["server_id"] for a in volume.attachments] == [drill_servers.ids["volume"]]
    assert [a.get("host_name") for a in volume.attachments] == [SURVIVOR]


def test_the_anti_affinity_member_is_not_placed_beside_its_peer(
    drill_servers: DrillServers, evacuation: Evacuation
) -> None:
    refused = evacuation.refused
    assert refused.status == "ERROR"
    assert refused.compute_host == VICTIM
    assert "No valid host" in (refused.fault or {}).get("message", "")
    assert [m.status for m in evacuation.migrations if m.migration_type == "evacuation"] == [
        "error"
    ]


def test_testbed_repair_powers_the_host_on_and_its_compute_reports_up(
    testbed: Testbed, crash: Crash, evacuation: Evacuation
) -> None:
    _restore(testbed, crash)
    admin = testbed.connect(testbed.admin_cloud)
    service = compute_service(admin, VICTIM)
    assert (service.state, service.status, service.is_forced_down) == ("up", "enabled", False)
    assert bmc_power(testbed, VICTIM) == "On"
    assert management_port_open(testbed, VICTIM)
    print(f"\n[host recovery] timings: {TIMINGS}")
