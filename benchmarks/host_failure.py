"""Benchmark: host failures on the real testbed, recovered, timed step by step.

Each run boots `--servers` servers on the victim host (cmp2), crashes the host
(`testbed/ctl kill host-cmp2`: its nova-compute and management port die, its BMC stays
on, as after a kernel panic), lets a recovery bring the servers back on the survivor,
then restores the host (power on, restart, un-force, enable) and deletes the servers.
Printed: min / median / max over the runs of, from the moment of the kill,

- Nova's own down detection at the testbed's heartbeat settings (run the testbed with
  `testbed/up --nova-defaults` for Nova's defaults: report_interval 10 s,
  service_down_time 60 s). Nova counts a compute down once its last heartbeat is
  older than service_down_time, so this is read from the last heartbeat Nova recorded
  (the service's `updated_at`, 1 s resolution) + service_down_time — a recovery that
  forces the service down earlier hides Nova's own verdict from the API;
- when the `compute.<host>` queue had no consumer left (AMQP passive declare);
- the recovery's milestones: detected, fenced (BMC reads Off), first evacuation
  requested, every server ACTIVE again on the survivor.

Recoveries (`--recovery`):

- `scripted`: what a recovery does, done directly (openstacksdk, Redfish, AMQP), as the
  reference: detected when the management port refuses twice 0.5 s apart and the
  compute queue has no consumer while the BMC answers; fence (ForceOff, read back Off);
  force the compute service down and disable it; evacuate every server (compute API
  2.95: they arrive SHUTOFF); start them; wait until each is ACTIVE on the survivor.
- `nova`: nothing acts; waits for Nova to list the compute down (its own detection,
  observed), then restores.
- `stackfleet`: StackFleet's daemon (`stackfleet serve`, health job, recovery executing)
  detects, fences, forces down, evacuates and starts; see StackfleetRecovery.

Targets (issue 11, Nova at its defaults): detected <= 10 s, every server running again
<= 25 s.

    .venv/bin/python benchmarks/host_failure.py [--runs 5] [--servers 2] [--recovery scripted]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from calibration import calibration_line
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testbed_fleet import PREFIX, Testbed, TestbedNotUp, find_testbed, wait_until  # noqa: E402
from testbed_hosts import (  # noqa: E402
    ConsumerWatch,
    bmc_power,
    compute_service,
    fence,
    heartbeat,
    kill,
    management_port_open,
    restore_compute_service,
)
from testbed_stackfleet import OPT_IN_TAG, Daemon, epoch  # noqa: E402

console = Console()
NAME = f"{PREFIX}bench-hf-"
REASON = "host_failure benchmark: host down, fenced, evacuating"
EVACUATE_MICROVERSION = "2.95"


@dataclass
class FailureRun:
    """One host failure: what was broken, when, and what must come back."""

    testbed: Testbed
    admin: Any
    victim: str
    survivor: str
    server_ids: list[str]
    killed_at: float = 0.0  # monotonic


@dataclass
class Milestones:
    """Monotonic times a recovery reached each step (None: not reached / not its job)."""

    detected: float | None = None
    fenced: float | None = None
    evacuation_requested: float | None = None
    all_active: float | None = None


class Recovery(Protocol):
    """Brings a failed host's servers back. `recover` is called right after the kill and
    returns when every server is ACTIVE on the survivor (or raises)."""

    name: str

    def recover(self, run: FailureRun) -> Milestones: ...

    def prepare(self, run: FailureRun) -> None:
        """Called before the kill (the victim's servers are booted)."""

    def close(self) -> None:
        """Called once after the last run."""


class ScriptedRecovery:
    """The reference recovery, done directly: see the module docstring."""

    name = "scripted"

    def prepare(self, run: FailureRun) -> None:
        pass

    def close(self) -> None:
        pass

    def recover(self, run: FailureRun) -> Milestones:
        got = Milestones()
        tb, admin = run.testbed, run.admin
        watch = ConsumerWatch(tb, run.victim)
        misses = 0
        while True:
            misses = 0 if management_port_open(tb, run.victim, timeout=0.5) else misses + 1
            if (
                misses >= 2
                and watch.amqp_consumers() == 0
                and bmc_power(tb, run.victim) is not None
            ):
                break
            if time.monotonic() - run.killed_at > 120:
                raise AssertionError("scripted detection: no verdict within 120 s")
            time.sleep(0.5)
        got.detected = time.monotonic()
        fence(tb, run.victim)
        got.fenced = time.monotonic()
        service = compute_service(admin, run.victim)
        admin.compute.update_service_forced_down(service, forced=True)
        admin.compute.disable_service(service, disabled_reason=REASON)
        for number, server_id in enumerate(run.server_ids):
            response = admin.compute.post(
                f"/servers/{server_id}/action",
                json={"evacuate": {}},
                microversion=EVACUATE_MICROVERSION,
                raise_exc=False,
            )
            assert response.status_code == 200, f"evacuate {server_id}: {response.text[:300]}"
            if number == 0:
                got.evacuation_requested = time.monotonic()
        pending = set(run.server_ids)
        started: set[str] = set()
        deadline = time.monotonic() + 180
        while pending:
            for server_id in sorted(pending):
                server = admin.compute.get_server(server_id)
                if server.status == "ERROR":
                    raise AssertionError(f"evacuating {server_id} failed: {server.fault}")
                if server.compute_host != run.survivor or server.task_state is not None:
                    continue
                if server.status == "SHUTOFF" and server_id not in started:
                    admin.compute.start_server(server_id)
                    started.add(server_id)
                elif server.status == "ACTIVE":
                    pending.discard(server_id)
            if time.monotonic() > deadline:
                raise AssertionError(f"not ACTIVE on {run.survivor} within 180 s: {pending}")
            time.sleep(0.3)
        got.all_active = time.monotonic()
        return got


class NovaOnly:
    """Nothing acts: waits until Nova lists the compute down by itself."""

    name = "nova"

    def prepare(self, run: FailureRun) -> None:
        pass

    def close(self) -> None:
        pass

    def recover(self, run: FailureRun) -> Milestones:
        limit = heartbeat(run.testbed)["service_down_time"] + 60
        wait_until(
            f"Nova lists {run.victim} down",
            lambda: compute_service(run.admin, run.victim).state == "down",
            limit,
            interval=0.5,
        )
        return Milestones()


class StackfleetRecovery:
    """StackFleet's own recovery: `stackfleet serve` (tests/testbed_stackfleet.py) with
    the health job, recovery on and executing, opt-in by tag, started once before the
    first run on a fresh store. Nothing else acts: `recover` waits for the host recovery
    StackFleet opens for the victim to end and reads its milestones from the record
    (`GET /v1/recoveries/{id}`): detected = the recovery's creation, fenced = the fence
    step's end (BMC read back Off), first evacuation requested = the first evacuate
    step's end, every server ACTIVE = the last verify step's end."""

    name = "stackfleet"

    def __init__(self) -> None:
        self.daemon: Daemon | None = None
        self.after = 0

    def prepare(self, run: FailureRun) -> None:
        if self.daemon is None:
            workdir = Path(tempfile.mkdtemp(prefix="sf-bench-hf-"))
            self.daemon = Daemon(run.testbed, workdir).start()
            console.print(f"stackfleet serve: {self.daemon.url}, log {self.daemon.log}")
        # after a repair: healthy again in StackFleet's eyes before the next failure
        self.daemon.wait_healthy(run.victim, run.survivor)
        self.after = self.daemon.newest_recovery_id()

    def recover(self, run: FailureRun) -> Milestones:
        assert self.daemon is not None, "prepare() first"
        recovery = self.daemon.wait_recovery_ended(run.victim, "host", self.after, timeout=240)
        if recovery["status"] != "succeeded":
            raise AssertionError(f"recovery {recovery['id']}: {recovery['status']}: {recovery}")
        offset = time.time() - time.monotonic()

        def ended(name: str, pick: Callable[[list[float]], float]) -> float | None:
            times = [
                at - offset
                for s in recovery["steps"]
                if s["name"] == name and (at := epoch(s["finished_at"])) is not None
            ]
            return pick(times) if times else None

        created = epoch(recovery["created_at"])
        return Milestones(
            detected=None if created is None else created - offset,
            fenced=ended("fence", min),
            evacuation_requested=ended("evacuate", min),
            all_active=ended("verify", max),
        )

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


RECOVERIES: dict[str, Callable[[], Recovery]] = {
    "scripted": ScriptedRecovery,
    "nova": NovaOnly,
    "stackfleet": StackfleetRecovery,
}


@dataclass
class NovaWatch:
    """Polls the victim's compute service; remembers the last heartbeat Nova recorded
    (`updated_at`) and when Nova listed it down while nothing had forced it down."""

    admin: Any
    host: str
    last_heartbeat: str | None = None
    observed_down: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                service = compute_service(self.admin, self.host)
            except Exception:  # a failed poll is a missing sample, nothing more
                self._stop.wait(0.5)
                continue
            if service.is_forced_down:
                return
            self.last_heartbeat = service.updated_at
            if service.state == "down" and self.observed_down is None:
                self.observed_down = time.monotonic()
                return
            self._stop.wait(0.5)

    def start(self) -> NovaWatch:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def derived_down(self, service_down_time: float) -> float | None:
        """Monotonic time Nova's rule counts the service down: last heartbeat + sdt."""
        if not self.last_heartbeat:
            return None
        beat = datetime.datetime.fromisoformat(self.last_heartbeat[:26]).replace(
            tzinfo=datetime.UTC
        )
        wall = beat.timestamp() + service_down_time
        return wall - (time.time() - time.monotonic())


def _boot(tb: Testbed, admin_demo: Any, victim: str, count: int) -> list[str]:
    image = admin_demo.image.find_image(tb.info["image"], ignore_missing=False)
    flavor = admin_demo.compute.find_flavor(f"{NAME}flavor", ignore_missing=True)
    if flavor is None:
        flavor = admin_demo.compute.create_flavor(
            name=f"{NAME}flavor", vcpus=1, ram=64, disk=1, is_public=True
        )
    network = admin_demo.network.find_network(f"{NAME}net")
    if network is None:
        network = admin_demo.network.create_network(name=f"{NAME}net")
        admin_demo.network.create_subnet(
            network_id=network.id, cidr="10.79.0.0/24", ip_version=4, enable_dhcp=False
        )
    servers = [
        admin_demo.compute.create_server(
            name=f"{NAME}{number}",
            flavor_id=flavor.id,
            image_id=image.id,
            networks=[{"uuid": network.id}],
            availability_zone=f"nova:{victim}",
            tags=[OPT_IN_TAG],  # what StackFleet's recovery opts in (health.opt_in)
        )
        for number in range(count)
    ]
    return [admin_demo.compute.wait_for_server(s, status="ACTIVE", wait=180).id for s in servers]


def _delete_servers(admin: Any) -> None:
    compute = admin.compute
    servers = [s for s in compute.servers(all_projects=True) if (s.name or "").startswith(NAME)]
    for server in servers:
        compute.delete_server(server, force=True)
    for server in servers:
        compute.wait_for_delete(server, wait=120)


def _delete_rest(admin: Any) -> None:
    for network in admin.network.networks():
        if (network.name or "").startswith(NAME):
            admin.network.delete_network(network, ignore_missing=True)
    for flavor in admin.compute.flavors(is_public=None):
        if flavor.name.startswith(NAME):
            admin.compute.delete_flavor(flavor, ignore_missing=True)


def _restore(tb: Testbed, admin: Any, victim: str) -> None:
    repaired = tb.repair()
    if repaired.returncode != 0:
        raise SystemExit(f"testbed/up --repair failed:\n{repaired.stdout[-1500:]}")
    restore_compute_service(admin, victim)
    wait_until(
        f"{victim} up again",
        lambda: compute_service(admin, victim).state == "up",
        heartbeat(tb)["service_down_time"] + 60,
        interval=1,
    )


def one_failure(
    tb: Testbed, recovery: Recovery, victim: str, survivor: str, servers: int
) -> dict[str, float | None]:
    admin = tb.connect(tb.admin_cloud)
    admin_demo = tb.connect(tb.admin_cloud, project="demo")
    for host in (victim, survivor):
        service = compute_service(admin, host)
        if (service.state, service.status, service.is_forced_down) != ("up", "enabled", False):
            raise SystemExit(f"{host} is not up and enabled: testbed/up --repair")
    run = FailureRun(tb, admin, victim, survivor, _boot(tb, admin_demo, victim, servers))
    nova = NovaWatch(admin, victim).start()
    consumer = ConsumerWatch(tb, victim).start()
    try:
        recovery.prepare(run)
        run.killed_at = kill(tb, f"host-{victim}")
        got = recovery.recover(run)
        consumer.wait(5)
        nova.stop()
    finally:
        consumer.stop()
        nova.stop()
        _restore(tb, admin, victim)
        _delete_servers(admin)

    def since(t: float | None) -> float | None:
        return None if t is None else t - run.killed_at

    return {
        "Nova's own down detection (last heartbeat + service_down_time)": since(
            nova.derived_down(heartbeat(tb)["service_down_time"])
        ),
        "Nova lists it down (observed; only when nothing forced it first)": since(
            nova.observed_down
        ),
        "compute.<host> queue without consumer": since(consumer.lost_amqp),
        "detected": since(got.detected),
        "fenced (BMC reads Off)": since(got.fenced),
        "first evacuation requested": since(got.evacuation_requested),
        "every server ACTIVE again": since(got.all_active),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--servers", type=int, default=2, help="servers on the victim per run")
    parser.add_argument("--victim", default="cmp2")
    parser.add_argument("--survivor", default="cmp1")
    parser.add_argument("--recovery", choices=sorted(RECOVERIES), default="scripted")
    args = parser.parse_args()
    try:
        tb = find_testbed()
    except TestbedNotUp as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    beat = heartbeat(tb)
    console.print(calibration_line())
    console.print(
        f"Nova heartbeat: {beat['mode']} (report_interval {beat['report_interval']} s, "
        f"service_down_time {beat['service_down_time']} s)"
        + ("" if beat["mode"] == "defaults" else "  [yellow]not Nova's defaults[/yellow]")
    )
    recovery = RECOVERIES[args.recovery]()
    results: list[dict[str, float | None]] = []
    admin = tb.connect(tb.admin_cloud)
    try:
        for number in range(1, args.runs + 1):
            row = one_failure(tb, recovery, args.victim, args.survivor, args.servers)
            results.append(row)
            shown = ", ".join(f"{k.split(' (')[0]} {v:.1f} s" for k, v in row.items() if v)
            console.print(f"run {number}/{args.runs}: {shown}")
    finally:
        recovery.close()
        _delete_servers(admin)
        _delete_rest(admin)
    table = Table(
        title=f"host failure on {args.victim}, recovery {recovery.name}, {args.servers} "
        f"servers, {len(results)} runs (seconds after the kill)"
    )
    for column in ("step", "n", "min", "median", "max"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step in results[0] if results else []:
        values = [r[step] for r in results if r[step] is not None]
        if not values:
            table.add_row(step, "0", "-", "-", "-")
            continue
        table.add_row(
            step,
            str(len(values)),
            f"{min(values):.1f}",
            f"{statistics.median(values):.1f}",
            f"{max(values):.1f}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
