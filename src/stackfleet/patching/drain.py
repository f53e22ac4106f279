"""Draining a host: check that the other usable hosts of its zone (and aggregates),
outside its batch, can take what runs on it (before anything is disabled); disable its
compute service with the campaign's reason; *then* take the plan of what to move, so
nothing lands on the host between plan and drain; live-migrate (bounded concurrency,
anti-affinity groups and SLA workloads one member at a time), fall back per the spec
(cold migration or stop, audited, never below k of n); verify the host is empty.

Resumed after a kill: the service is disabled already (with the campaign's reason) or
not; servers already gone from the host are not listed again; a migration under way is
waited for, not started twice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stackfleet.actions.base import Action, Record
from stackfleet.actions.compute import StopServer
from stackfleet.actions.maintenance import (
    ColdMigrateServer,
    DisableComputeService,
    LiveMigrateServer,
)
from stackfleet.engine.capacity import (
    Fleet,
    drain_fit,
    flavors_by_name,
    host_capacities,
    load_fleet,
)
from stackfleet.patching.gates import CANARY_PREFIX
from stackfleet.patching.sla import WorkloadSla
from stackfleet.patching.step_context import HostListing, StepFailed, _policy_name
from stackfleet.store import patching as records


def spread_groups(
    servers: list[dict[str, Any]], groups: dict[str, set[str]]
) -> list[list[dict[str, Any]]]:
    """Waves of servers to migrate at once, no two members of one anti-affinity group in
    a wave: the scheduler places each knowing where the other members already are (two
    concurrent moves could otherwise both pick one host)."""
    waves: list[list[dict[str, Any]]] = []
    for server in servers:
        mine = groups.get(str(server["id"]), set())
        for wave in waves:
            if not any(mine & groups.get(str(other["id"]), set()) for other in wave):
                wave.append(server)
                break
        else:
            waves.append([server])
    return waves


class DrainSteps(WorkloadSla):
    """The drain step: disable, check capacity, move every server away."""

    def _drain(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        attempt = f"{self.campaign['id']}/{host}/drain/{detail['attempt']}"
        service = self._service_record(host)
        capacity: dict[str, Any] = {}
        if self.spec.steps.drain.capacity_check and service.get("disabled_reason") != self.reason:
            # before the disable: a host that cannot be emptied is not taken out at all
            capacity = self._check_capacity(host)
        verdict, reason = self._act(DisableComputeService(reason=self.reason), service, attempt)
        if verdict not in ("succeeded", "done"):
            raise StepFailed(f"disabling the compute service of {host}: {verdict}: {reason}")
        self._disabled_or_out(host)
        self._wait_for_batch_disabled(host)
        # the plan of moves is taken now that nothing new can land on the host
        listing = HostListing(self.conn, host)
        moved: list[str] = list(detail.get("moved") or [])
        stopped: list[str] = list(detail.get("stopped") or [])
        fallbacks: list[str] = list(detail.get("fallbacks") or [])
        deadline = time.monotonic() + self.spec.steps.drain.timeout.total_seconds()
        problems: list[str] = []
        lock = threading.Lock()
        leave = set(self.spec.steps.drain.leave_statuses)
        left: list[dict[str, Any]] = []
        kept: list[str] = list(detail.get("kept") or [])
        sla = self._sla_workloads()
        spread = self._anti_affinity()
        for workload in sla:
            for member in workload.members:
                # members of one SLA workload move one at a time
                spread.setdefault(member, set()).add(f"workload:{workload.name}")
        while True:
            servers = listing.refresh()
            busy = [s for s in servers.values() if s.get("task_state")]
            left = [s for s in servers.values() if s.get("status") in leave]
            todo = [
                s
                for s in servers.values()
                if not s.get("task_state")
                and s.get("status") not in leave
                and str(s["id"]) not in stopped
                and str(s["id"]) not in kept
                and not str(s.get("name") or "").startswith(CANARY_PREFIX)
            ]
            if not todo and not busy:
                break
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"{host} is not empty after {self.spec.steps.drain.timeout}: "
                    + ", ".join(str(s.get("name") or s["id"]) for s in todo + busy)
                )
            if not todo:
                time.sleep(self.poll)  # migrations under way (a resumed drain): wait
                continue
            problems.clear()

            def move(server: dict[str, Any]) -> None:
                with self._workload_locks(str(server["id"]), sla):
                    move_one(server)

            def move_one(server: dict[str, Any]) -> None:
                server = {
                    **server,
                    "kind": "server",
                    "cloud": self.spec.cloud,
                    "region": self.region,
                }
                first: Action = (
                    ColdMigrateServer()
                    if server.get("status") == "SHUTOFF"
                    else LiveMigrateServer()
                )
                verdict, reason = self._act(first, server, attempt, listing)
                if verdict in ("succeeded", "done"):
                    with lock:
                        moved.append(str(server["id"]))
                    return
                fallback = self.spec.steps.drain.fallback
                label_ = f"{server.get('name') or server['id']}"
                if first.type == "migrate" and fallback == "stop":
                    # shut off already and cannot be moved: it stays, shut off
                    with lock:
                        kept.append(str(server["id"]))
                        fallbacks.append(
                            f"{label_}: {first.type} {verdict} ({reason}); "
                            "left on the host, shut off"
                        )
                    return
                if fallback == "none" or first.type == "migrate":
                    with lock:
                        problems.append(f"{first.type} {label_}: {verdict}: {reason}")
                    return
                extra: Action = ColdMigrateServer() if fallback == "cold-migrate" else StopServer()
                breach = self._sla_breach(str(server["id"]), sla)
                fallback_entry = {
                    "server": server["id"],
                    "failed": first.type,
                    "reason": reason,
                    "fallback": extra.type,
                }
                if breach:
                    # a stop or a cold migration takes the member down: never below k of n
                    breach += ": the host is halted instead"
                    self._audit_fallback(server, {**fallback_entry, "refused": breach})
                    with lock:
                        problems.append(
                            f"{first.type} {label_}: {verdict}: {reason}; its fallback "
                            f"{extra.type} refused: {breach}"
                        )
                    return
                with lock:
                    fallbacks.append(f"{label_}: {first.type} {verdict} ({reason}); {extra.type}")
                self._audit_fallback(server, fallback_entry)
                live = listing.refresh().get(str(server["id"]))
                if live is None:
                    with lock:
                        moved.append(str(server["id"]))
                    return
                live = {
                    **live,
                    "kind": "server",
                    "cloud": self.spec.cloud,
                    "region": self.region,
                }
                verdict, reason = self._act(extra, live, attempt + "/fallback", listing)
                with lock:
                    if verdict in ("succeeded", "done"):
                        (stopped if extra.type == "stop" else moved).append(str(server["id"]))
                    else:
                        problems.append(f"{extra.type} {label_}: {verdict}: {reason}")

            with ThreadPoolExecutor(max_workers=self.spec.steps.drain.concurrency) as pool:
                for wave in spread_groups(todo, spread):
                    list(pool.map(move, wave))
            if problems:
                raise StepFailed(f"draining {host}: " + "; ".join(problems))
        return {
            "moved": moved,
            "stopped": stopped,
            "fallbacks": fallbacks,
            "kept": kept,
            "left": [f"{s.get('name') or s['id']} ({s.get('status')})" for s in left],
            "list_requests": listing.requests,
            **({"capacity": capacity} if capacity else {}),
        }

    def _expect_disables(self, hosts: list[str]) -> None:
        """The hosts of a batch about to start whose drain is still to disable them."""
        with self._disables:
            self._not_yet_disabled = set(hosts)

    def _disabled_or_out(self, host: str) -> None:
        """`host` is disabled, or will not be drained (failed, stopped, done)."""
        with self._disables:
            self._not_yet_disabled.discard(host)
            self._disables.notify_all()

    def _wait_for_batch_disabled(self, host: str) -> None:
        """Wait, before the first move off `host`, until the other hosts of its batch are
        disabled (or out: a failed pre-check, a refused capacity check). Nova's scheduler
        knows nothing of the batch: a server moved onto a batch host still enabled (its
        pre-check slower) would be moved a second time when that host drains. Waits at
        most the drain timeout, then moves anyway (saying so)."""
        deadline = time.monotonic() + self.spec.steps.drain.timeout.total_seconds()
        with self._disables:
            while others := sorted(self._not_yet_disabled - {host}):
                left = deadline - time.monotonic()
                if left <= 0:
                    self.progress(f"{host}: moving while {', '.join(others)} still enabled")
                    return
                self._disables.wait(min(left, 1.0))

    def _audit_fallback(self, server: Record, details: dict[str, Any]) -> None:
        self.runner.audit.append(
            "campaign.fallback",
            details,
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=f"{self.spec.cloud}/{self.region}/server/{server['id']}",
        )

    def _check_capacity(self, host: str) -> dict[str, Any]:
        """Whether the other usable hosts of the host's zone (and aggregates), outside
        its batch, can take what runs on it, anti-affinity respected (capacity from the
        newest collection pass, servers listed live); StepFailed saying what is short."""
        fleet = self._inventory()
        hosts = {
            h.host: h for h in host_capacities(fleet.of("hypervisor"), fleet.of("compute_service"))
        }
        mine = hosts.get(host)
        if mine is None:
            raise StepFailed(
                f"not draining {host} (nothing was disabled): the newest collection pass "
                f"has no hypervisor of {host} to weigh its servers against; run `stackfleet "
                f"collect {self.spec.cloud}` or set steps.drain.capacity_check: false"
            )
        aggregates = {
            str(h.get("host")): set(h.get("aggregates") or []) for h in fleet.of("hypervisor")
        }
        mine_aggregates = aggregates.get(host, set())
        batch = self._batch_hosts(host)
        destinations = [
            h
            for h in hosts.values()
            if h.usable
            and h.host not in batch
            and h.zone == mine.zone
            and (not mine_aggregates or mine_aggregates & aggregates.get(h.host, set()))
        ]
        leave = set(self.spec.steps.drain.leave_statuses)
        moving = [
            {**s, "cloud": self.spec.cloud, "region": self.region}
            for s in HostListing(self.conn, host, microversion="2.47").refresh().values()
            if s.get("status") not in leave
            and not str(s.get("name") or "").startswith(CANARY_PREFIX)
        ]
        hard: dict[str, set[str]] = {}
        group_hosts: dict[str, set[str]] = {}
        where = {str(s["id"]): s.get("host") for s in fleet.of("server")}
        for group in fleet.of("server_group"):
            if group.get("policy") != "anti-affinity":
                continue
            for member in group.get("members") or []:
                hard.setdefault(str(member), set()).add(str(group.get("name") or group["id"]))
                if where.get(str(member)) and where[str(member)] != host:
                    group_hosts.setdefault(str(group.get("name") or group["id"]), set()).add(
                        str(where[str(member)])
                    )
        flavors = flavors_by_name(fleet.of("flavor"))
        # the region key of the records: the store's region of this cloud
        fit = drain_fit(
            host,
            [{**s, "region": mine.region} for s in moving],
            destinations,
            flavors,
            hard,
            group_hosts,
        )
        if not fit.fits:
            raise StepFailed(f"not draining {host} (nothing was disabled): {fit.message()}")
        return {"servers": fit.servers, "destinations": len(fit.destinations)}

    def _inventory(self) -> Fleet:
        """What the capacity check weighs, from the newest collection pass: read once per
        pass, not once per host (100 hosts of 20 servers would read 2,000 server records
        100 times)."""
        newest = self.store.list_passes(1, self.spec.cloud)
        key = newest[0]["id"] if newest else None
        with self._locks_guard:
            if self._fleet is None or self._fleet_key != key:
                self._fleet = load_fleet(
                    self.store,
                    self.spec.cloud,
                    self.region or None,
                    ("hypervisor", "compute_service", "flavor", "server", "server_group"),
                )
                self._fleet_key = key
            return self._fleet

    def _batch_hosts(self, host: str) -> set[str]:
        """The hosts drained beside `host` (its batch): no destination for its servers."""
        steps = records.steps_of(self.store, self.campaign["id"])
        batch = next((s["batch"] for s in steps if s["host"] == host), None)
        return {s["host"] for s in steps if s["batch"] == batch}

    def _anti_affinity(self) -> dict[str, set[str]]:
        """Server id -> the (soft-)anti-affinity groups it is a member of (from the
        newest collection pass)."""
        found: dict[str, set[str]] = {}
        groups, _ = self.store.list_resources(
            "server_group", cloud=self.spec.cloud, region=self.region or None
        )
        for group in groups:
            if group.get("policy") in ("anti-affinity", "soft-anti-affinity"):
                for member in group.get("members") or []:
                    found.setdefault(str(member), set()).add(str(group["id"]))
        return found
