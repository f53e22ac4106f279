"""Automatic recovery as a reconciler: each recovery is a record with its steps in the
store (recoveries, recovery_steps), driven by the daemon's `health` job (leader only) or
once by `stackfleet recoveries run`.

A host failure (stackfleet.model.health: service silent *and* the host dead by an
independent signal) is recovered in this order, each step at most once:

1. fence: power the host off through its BMC (or Ironic, or a command) and read the
   power state back; the recovery stops here when the fence is not confirmed;
2. force-down: force the compute service down and disable it, with a reason recording
   the recovery's progress (updated as it goes);
3. evacuate each instance on the host that the opt-in selectors allow (never service
   projects' or amphora-tagged instances, never an anti-affinity member with no host
   left for it); a failed evacuation is recorded and alerted, never retried blindly;
4. start the ones that were running (they arrive SHUTOFF at compute API 2.95+);
5. verify each ACTIVE (or as it was) on another host;
6. leave the host disabled for the operator, with the final reason.

Crash safety: a step already `done` is never repeated; a step found `running` (the
process died in it) is settled by reading OpenStack first: the host's power state, the
service's forced_down and reason, the instance's host and its evacuation migrations.

A process failure (service silent, host alive) runs the restart hook, then disables the
service and alerts if it does not come back. Every change goes through the safety gate
and the executor (dry-run unless `health.execute`, approvals, exclusions, rate limits)
and is audited before and after. While the fleet verdict is frozen (control-plane fault,
too many hosts down) no recovery starts or advances, and an alert says why."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stackfleet.actions.base import (
    Action,
    ActionContext,
    Outcome,
    Skip,
    gone,
)
from stackfleet.actions.compute import (
    EvacuateServer,
    RebootServer,
    RebuildServer,
    ResetServerState,
    StartServer,
    evacuation_failed,
    server_state,
)
from stackfleet.actions.compute_service import (
    ForceDownService,
    RestartService,
    read_service,
    update_service,
)
from stackfleet.actions.fence import FenceHost
from stackfleet.actions.notify import Notifier
from stackfleet.alerts.lifecycle import WantedAlert, sync_alerts
from stackfleet.engine.execute import Connections, Executor, RunContext, queue_for_approval
from stackfleet.engine.gate import Candidate, SafetyGate, idempotency_key
from stackfleet.engine.health import Assessment, HealthMonitor
from stackfleet.engine.settings import Settings
from stackfleet.model.health import REASON_PREFIX, HostHealth
from stackfleet.model.kinds import POWER_STATES
from stackfleet.policy import load_files
from stackfleet.policy.view import FleetView
from stackfleet.sources.openstack.refresh import read_one
from stackfleet.store import action_records, health_states, recoveries
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store
from stackfleet.store.evaluation import load_records

log = logging.getLogger(__name__)

HOST_POLICY = "health/host-down"
SERVICE_POLICY = "health/compute-service-down"
EVACUATE_POLICY = "health/evacuate"
INSTANCE_POLICY = "health/instance-error"


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class StepOutcome:
    """How one step went: done, failed, planned (dry-run), waiting (approval), skipped."""

    status: str
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    action_id: int | None = None


class EvacuationRequest(EvacuateServer):
    """Nova's evacuate, confirmed once Nova has accepted it: the recovery then watches
    every evacuation of the host together (ERROR, no valid host, arrival), rather than
    reading each server again here. The server is read once before acting (not once for
    its state and once more for its host): on a loaded cloud each read costs 0.5-1 s,
    paid per server before the next evacuation is asked for."""

    def observe(self, ctx: ActionContext, record: dict[str, Any]) -> dict[str, Any] | None:
        conn = ctx.connection(record["cloud"], record["region"])
        missing, server = gone(conn.compute.get_server, record["id"])
        if missing:
            return None
        return {**server_state(server), "host": server.compute_host}

    def verify(self, ctx: ActionContext, record: dict[str, Any], result: dict[str, Any]) -> Outcome:
        return Outcome(verified=True, message="evacuation requested")


class StartRequest(StartServer):
    """Start, confirmed by the recovery's watch of every evacuated server."""

    def verify(self, ctx: ActionContext, record: dict[str, Any], result: dict[str, Any]) -> Outcome:
        return Outcome(verified=True, message="start requested")


def changed_servers(conn: Any, since: datetime) -> dict[str, dict[str, Any]]:
    """Every server changed since `since` (all projects), by id, from the raw JSON of
    `GET /servers/detail?changes-since=` (page by page): host, status, task state, fault."""
    out: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {
        "all_tenants": 1,
        "changes-since": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "limit": 1000,
    }
    for _page in range(100):
        response = conn.compute.get("/servers/detail", params=params)
        if response.status_code >= 400:
            raise RuntimeError(f"GET /servers/detail answered HTTP {response.status_code}")
        servers = response.json().get("servers") or []
        for s in servers:
            out[str(s["id"])] = {
                "host": s.get("OS-EXT-SRV-ATTR:host"),
                "status": s.get("status"),
                "task_state": s.get("OS-EXT-STS:task_state"),
                "fault": s.get("fault"),
            }
        if len(servers) < params["limit"]:
            break
        params["marker"] = servers[-1]["id"]
    return out


class RecoveryReconciler:
    """Starts recoveries for what the health assessment found and drives them."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        connections: Connections,
        monitor: HealthMonitor,
        execute: bool | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.health = settings.health
        self.connections = connections
        self.monitor = monitor
        self.execute = self.health.execute if execute is None else execute
        self.owner = owner or default_owner()
        self.audit = AuditLog(store)
        self.policies = {p.name: p for p in load_files(["pack:health"])}
        if self.health.require_approval:
            for policy in self.policies.values():
                policy.spec.safety.require_approval = True

    # -- the job ---------------------------------------------------------------------
    def run_once(self, assessment: Assessment | None = None) -> list[dict[str, Any]]:
        """One turn: start what is new, advance what is open. Returns the recoveries
        touched (their records as stored)."""
        assessment = assessment or self.monitor.last or self.monitor.run_once()
        now = datetime.now(UTC)
        touched: list[int] = []
        if assessment.fleet.frozen is None:
            touched += self._start_host_recoveries(assessment, now)
            touched += self._start_service_recoveries(assessment, now)
            touched += self._start_instance_recoveries(assessment, now)
            for recovery in recoveries.open_recoveries(self.store):
                if not recoveries.take_over(
                    self.store,
                    recovery["id"],
                    self.owner,
                    now,
                    now - self.health.takeover_after,
                ):
                    continue
                try:
                    if recovery["kind"] == "host":
                        self._drive_host(recovery, assessment)
                    elif recovery["kind"] == "service":
                        self._drive_service(recovery, assessment)
                    elif recovery["kind"] == "instance":
                        self._drive_instance(recovery)
                except Exception as exc:  # noqa: BLE001 - record it, alert, keep the daemon
                    log.exception("recovery %s failed", recovery["id"])
                    self._finish(recovery["id"], "failed", f"{type(exc).__name__}: {exc}")
                touched.append(recovery["id"])
        self._alerts(assessment, now)
        return [recoveries.get(self.store, rid) for rid in dict.fromkeys(touched)]

    # -- starting --------------------------------------------------------------------
    def _start_host_recoveries(self, assessment: Assessment, now: datetime) -> list[int]:
        started: list[int] = []
        open_hosts = recoveries.open_recoveries(self.store, "host")
        running = len(open_hosts)
        for host in assessment.hosts:
            if not host.host_failed:
                continue
            if recoveries.find_open(self.store, host.cloud, host.region, "host", host.host):
                continue
            if self._recovered_before(host, now):
                continue
            if running >= self.health.max_hosts:
                log.info("host %s failed; waiting: %d host recovery under way", host.host, running)
                continue
            started.append(self._open(host, "host", "host-failure", now))
            running += 1
        return started

    def _open(self, host: HostHealth, kind: str, trigger: str, now: datetime) -> int:
        """Record a new recovery of `kind` for `host` (running, or planned in a dry run)
        with the evidence that decided it, audited; its id."""
        rid = recoveries.create(
            self.store,
            now,
            cloud=host.cloud,
            region=host.region,
            kind=kind,
            subject=host.host,
            trigger=trigger,
            status="running" if self.execute else "planned",
            execute=self.execute,
            owner=self.owner,
            evidence=[e.text() for e in host.evidence],
            details={"service_id": host.service_id, "reason": host.reason},
        )
        self._audit("recovery.started", rid, host, {"reason": host.reason})
        return rid

    def _recovered_before(self, host: HostHealth, now: datetime) -> bool:
        """One recovery per failure: a host with a recovery since it was last healthy
        is not recovered again (a failed recovery is escalated, not retried; a dry-run
        is planned again after an hour, and carried out at once when execute is on)."""
        if host.disabled and (host.disabled_reason or "").startswith(REASON_PREFIX):
            return True
        latest = recoveries.latest(self.store, host.cloud, host.region, "host", host.host)
        if latest is None:
            return False
        if latest["status"] == "dry-run":
            # a plan does not stand in the way of carrying it out
            return not self.execute and _recent(latest, now, timedelta(hours=1))
        since = datetime.fromisoformat(latest["created_at"])
        healthy_since = any(
            c["after"] == "healthy"
            for c in health_states.changes(self.store, "host", host.host, since)
            if (c["cloud"], c["region"]) == (host.cloud, host.region)
        )
        return not healthy_since

    def _start_service_recoveries(self, assessment: Assessment, now: datetime) -> list[int]:
        if not self.health.restart_hook:
            return []
        started = []
        for host in assessment.hosts:
            if host.failure != "process" or host.disabled:
                continue
            if recoveries.find_open(self.store, host.cloud, host.region, "service", host.host):
                continue
            latest = recoveries.latest(self.store, host.cloud, host.region, "service", host.host)
            if latest is not None and _recent(latest, now, timedelta(minutes=30)):
                continue
            started.append(self._open(host, "service", "process-failure", now))
        return started

    # -- host recovery ---------------------------------------------------------------
    def _drive_host(self, recovery: dict[str, Any], assessment: Assessment) -> None:
        rid = recovery["id"]
        cloud, region, host = recovery["cloud"], recovery["region"], recovery["subject"]
        details = dict(recovery["details"])
        health = assessment.host(cloud, region, host)
        fence_step = recoveries.step(self.store, rid, "fence", host)
        unfenced = fence_step is None or fence_step["status"] != "done"
        if unfenced and recovery["execute"] and (health is None or not health.host_failed):
            self._finish(
                rid,
                "stopped",
                "the host no longer looks failed before it was fenced: "
                + (health.reason if health else "not assessed"),
            )
            return
        # 1. fence
        outcome = self._step(rid, 1, "fence", host, lambda: self._fence(recovery))
        if outcome.status not in ("done", "planned"):
            self._settle(rid, recovery, outcome, "fence not confirmed: nothing evacuated")
            return
        # 2. force the service down, disable it with the progress as reason
        service = self._service_record(cloud, region, host, details.get("service_id"))
        outcome = self._step(rid, 2, "force-down", host, lambda: self._force_down(rid, service))
        if outcome.status not in ("done", "planned"):
            self._settle(rid, recovery, outcome, "the compute service was not forced down")
            return
        # 3. the instances on the host, chosen once and kept with the recovery
        listed_now = "servers" not in details
        if listed_now:
            details["servers"] = self._servers_on(cloud, region, host)
            recoveries.update_recovery(self.store, rid, _now(), details=details)
        servers: list[dict[str, Any]] = details["servers"]
        eligible = [s for s in servers if s.get("eligible")]
        failed: list[str] = []
        # 3. ask for every evacuation first (Nova runs them in parallel), then watch
        # them together: one list call per round, not one poll per server
        requested: list[tuple[int, dict[str, Any]]] = []
        for n, server in enumerate(eligible):
            seq = 11 + n
            # a step recorded before this turn may have been requested by a driver that died
            resumed = recoveries.step(self.store, rid, "evacuate", server["id"]) is not None
            outcome = self._step(
                rid,
                seq,
                "evacuate",
                server["id"],
                lambda s=server, r=resumed: self._evacuate(rid, host, s, r, listed_now),
            )
            if outcome.status == "planned":
                continue
            if outcome.status != "done":
                failed.append(f"{server['name']}: {outcome.error or outcome.status}")
                continue
            requested.append((seq, server))
        # the reason records the progress once the evacuations are asked for (not
        # before: one write less ahead of the first; force-down already marked the host)
        self._progress(rid, service, f"fenced; evacuating {len(eligible)} instance(s)")
        if requested:
            failed += self._await_evacuations(rid, recovery, host, requested)
        if not recovery["execute"]:
            self._finish(rid, "dry-run", "planned only (health.execute is false)")
            return
        left = [s for s in servers if not s.get("eligible")]
        summary = (
            f"{len(eligible) - len(failed)} of {len(eligible)} evacuated"
            + (f", {len(left)} left on the host" if left else "")
            + (f"; failed: {'; '.join(failed)}" if failed else "")
        )
        self._progress(rid, service, f"done: {summary}; host left disabled for the operator")
        self._finish(rid, "failed" if failed else "succeeded", summary if failed else None)

    def _settle(self, rid: int, recovery: dict[str, Any], outcome: StepOutcome, why: str) -> None:
        if outcome.status == "planned":
            self._finish(rid, "dry-run", "planned only (health.execute is false)")
        elif outcome.status == "waiting":
            recoveries.update_recovery(self.store, rid, _now(), error=outcome.error)
        else:
            self._finish(rid, "failed", f"{why}: {outcome.error or outcome.status}")

    def _step(self, rid: int, seq: int, name: str, target: str, run: Any) -> StepOutcome:
        """Run a step unless it is settled: done steps are not repeated, failed ones are
        not retried (escalated instead)."""
        now = _now()
        existing = recoveries.start_step(self.store, rid, seq, name, target, now)
        if existing["status"] in ("done", "failed", "skipped"):
            return StepOutcome(
                existing["status"], existing["details"], existing["error"], existing["action_id"]
            )
        try:
            outcome: StepOutcome = run()
        except Exception as exc:  # noqa: BLE001 - a step's surprise fails the step
            log.exception("recovery %s step %s %s", rid, name, target)
            outcome = StepOutcome("failed", error=f"{type(exc).__name__}: {exc}")
        if outcome.status in ("done", "failed", "skipped", "planned"):
            recoveries.finish_step(
                self.store,
                existing["id"],
                _now(),
                outcome.status,
                outcome.detail,
                outcome.error,
                outcome.action_id,
            )
        return outcome

    def _fence(self, recovery: dict[str, Any]) -> StepOutcome:
        cloud, region, host = recovery["cloud"], recovery["region"], recovery["subject"]
        fence = self.health.fence
        action = FenceHost(
            method=fence.method,
            bmc_map=self.monitor.bmc_map_path,
            command=fence.command,
            confirm_command=fence.confirm_command,
        )
        record = self._hypervisor_record(cloud, region, host)
        # read first: a host already off is not fenced again (after a crash, too)
        ctx = self._ctx()
        try:
            power = action.power_state(ctx, record)
        except Exception as exc:  # noqa: BLE001 - an unreadable BMC is a failed fence
            return StepOutcome("failed", error=f"cannot read the power state: {exc}")
        if power == "Off":
            return StepOutcome("done", {"bmc_power": "Off", "note": "already off"})
        record["bmc_power"] = power
        return self._act(HOST_POLICY, action, record, f"recovery:{recovery['id']}:fence")

    def _force_down(self, rid: int, service: dict[str, Any]) -> StepOutcome:
        ctx = self._ctx()
        live = read_service(ctx, service)
        if live is None:
            return StepOutcome("failed", error="the compute service is gone")
        if live.get("forced_down") and live.get("enabled") == "disabled":
            return StepOutcome("done", {"note": "already forced down and disabled", **live})
        record = {**service, **live}
        action = ForceDownService(reason=_reason(rid, "fenced; forcing the service down"))
        return self._act(SERVICE_POLICY, action, record, f"recovery:{rid}:force-down")

    def _evacuate(
        self,
        rid: int,
        host: str,
        server: dict[str, Any],
        resumed: bool = True,
        listed_now: bool = False,
    ) -> StepOutcome:
        if listed_now and not resumed:
            # listed on the host seconds ago in this turn, never asked for: the
            # executor's own re-read (host still the failed one) is the check
            return self._act(
                EVACUATE_POLICY,
                EvacuationRequest(),
                {**server, "host": host},
                f"recovery:{rid}:evacuate",
            )
        live = self._server(server)
        if live is None:
            return StepOutcome("skipped", error="the instance is gone")
        if live["host"] and live["host"] != host:
            return StepOutcome("done", {"host": live["host"], "note": "already on another host"})
        if live.get("task_state") == "rebuilding" or (
            resumed and self._evacuation_requested(server, host)
        ):
            # requested before a crash: never request it twice; the watch follows it.
            # (Nova's API sets the task state before it answers an evacuate, so a step
            # this turn starts needs no look at the migrations: one read less each.)
            return StepOutcome("done", {"note": "requested before", **live})
        record = {**server, **live}
        return self._act(EVACUATE_POLICY, EvacuationRequest(), record, f"recovery:{rid}:evacuate")

    def _start(
        self, rid: int, server: dict[str, Any], listed: dict[str, Any] | None = None
    ) -> StepOutcome:
        """Start an evacuated server; `listed` is its state in the watch's list of this
        round (read then: not read once more before the executor's own re-read)."""
        live = listed if listed is not None else self._server(server)
        if live is None:
            return StepOutcome("skipped", error="the instance is gone")
        if live["status"] != "SHUTOFF":
            return StepOutcome("done", {"status": live["status"], "note": "not SHUTOFF"})
        record = {**server, **live}
        return self._act(EVACUATE_POLICY, StartRequest(), record, f"recovery:{rid}:start")

    def _await_evacuations(
        self,
        rid: int,
        recovery: dict[str, Any],
        host: str,
        requested: list[tuple[int, dict[str, Any]]],
    ) -> list[str]:
        """Watch the requested evacuations together until each server is running again
        as it was (ACTIVE or SHUTOFF) on another host: one list of the servers changed
        since the recovery began per round. A server that arrives SHUTOFF but was
        ACTIVE is started as it arrives (at 2.95+ Nova leaves it stopped). Each server's
        `verify` step records the outcome; returns what failed."""
        failed: list[str] = []
        watch_start = _now()
        pending: dict[str, tuple[int, dict[str, Any]]] = {}
        for seq, server in requested:
            settled = recoveries.step(self.store, rid, "verify", server["id"])
            if settled is not None and settled["status"] in ("done", "failed", "skipped"):
                if settled["status"] == "failed":
                    failed.append(f"{server['name']}: {settled['error']}")
                continue
            pending[server["id"]] = (seq, server)
        if not pending:
            return failed
        conn = self.connections.connection(recovery["cloud"], recovery["region"])
        since = datetime.fromisoformat(recovery["created_at"]) - timedelta(minutes=1)
        deadline = _monotonic() + self.settings.verify_timeout.total_seconds()
        poll = min(self.settings.poll_interval.total_seconds(), 1.0)
        while pending:
            last_round = _monotonic() >= deadline
            try:
                listed = changed_servers(conn, since)
            except Exception as exc:  # noqa: BLE001 - a failed list is read again next round
                log.warning("recovery %s: listing the servers failed: %s", rid, exc)
                listed = {}
            for sid, (seq, server) in list(pending.items()):
                live = listed.get(sid)
                if live is None and last_round:
                    live = self._server(server)
                    if live is None:
                        live = {"status": "DELETED"}
                if live is None:
                    continue
                outcome = self._arrival(rid, seq, host, server, live, conn)
                if outcome is None and last_round:
                    outcome = StepOutcome(
                        "failed",
                        {"host": live.get("host"), "status": live.get("status")},
                        f"not running again within {self.settings.verify_timeout.total_seconds():g}"
                        f" s: {live.get('status')} on {live.get('host')}"
                        + (f", task {live['task_state']}" if live.get("task_state") else ""),
                    )
                if outcome is None:
                    continue
                step = recoveries.start_step(self.store, rid, seq, "verify", sid, watch_start)
                recoveries.finish_step(
                    self.store, step["id"], _now(), outcome.status, outcome.detail, outcome.error
                )
                del pending[sid]
                if outcome.status == "done":
                    self._refresh(server)
                if outcome.status == "failed":
                    failed.append(f"{server['name']}: {outcome.error}")
            if not pending or last_round:
                break
            _sleep(max(0.0, min(poll, deadline - _monotonic())))
        return failed

    def _arrival(
        self,
        rid: int,
        seq: int,
        source: str,
        server: dict[str, Any],
        live: dict[str, Any],
        conn: Any,
    ) -> StepOutcome | None:
        """Whether an evacuated server is settled: done (running as it was, elsewhere),
        failed, skipped (gone), or None (still on its way)."""
        status = live.get("status")
        detail = {"host": live.get("host"), "status": status}
        if status in ("DELETED", "SOFT_DELETED"):
            return StepOutcome("skipped", detail, "the instance is gone")
        if live.get("task_state"):
            return None
        if status == "ERROR":
            fault = (live.get("fault") or {}).get("message")
            return StepOutcome(
                "failed", detail, "the server went to ERROR" + (f": {fault}" if fault else "")
            )
        if live.get("host") == source:
            why = evacuation_failed(conn, server["id"], source)
            return StepOutcome("failed", detail, why) if why else None
        wanted = server.get("status") if server.get("status") in ("ACTIVE", "SHUTOFF") else None
        if wanted == "ACTIVE" and status == "SHUTOFF":
            started = self._step(
                rid, seq, "start", server["id"], lambda: self._start(rid, server, live)
            )
            if started.status not in ("done", "planned"):
                return StepOutcome("failed", detail, f"start: {started.error or started.status}")
            return None
        if wanted is None or status == wanted:
            return StepOutcome("done", detail)
        return None

    # -- service (process failure) recovery ------------------------------------------
    def _drive_service(self, recovery: dict[str, Any], assessment: Assessment) -> None:
        rid = recovery["id"]
        cloud, region, host = recovery["cloud"], recovery["region"], recovery["subject"]
        service = self._service_record(cloud, region, host, recovery["details"].get("service_id"))
        health = assessment.host(cloud, region, host)
        if health is not None and health.failure == "host":
            self._finish(rid, "stopped", "the host itself failed: a host recovery takes over")
            return
        action = RestartService(
            command=self.health.restart_hook, timeout=self.health.restart_wait.total_seconds()
        )
        outcome = self._step(
            rid,
            1,
            "restart-service",
            host,
            lambda: self._act(SERVICE_POLICY, action, service, f"recovery:{rid}:restart"),
        )
        if outcome.status in ("planned",):
            self._finish(rid, "dry-run", "planned only (health.execute is false)")
            return
        if outcome.status == "waiting":
            return
        if outcome.status == "done":
            self._finish(rid, "succeeded", None)
            return
        # the hook did not bring it back: disable the host so nothing new lands there
        self._step(
            rid,
            2,
            "disable",
            host,
            lambda: self._disable(rid, service, "restart hook failed"),
        )
        self._finish(rid, "failed", f"the restart hook did not bring it back: {outcome.error}")

    def _disable(self, rid: int, service: dict[str, Any], why: str) -> StepOutcome:
        body = {"status": "disabled", "disabled_reason": _reason(rid, why)}
        result = update_service(self._ctx(), service, body)
        self.audit.append(
            "recovery.service-disabled",
            {"recovery": rid, "reason": body["disabled_reason"]},
            actor=self.settings.actor,
            policy=SERVICE_POLICY,
            target=_target(service),
        )
        return StepOutcome("done", {"status": result.get("status")})

    # -- instance recovery ------------------------------------------------------------
    def _start_instance_recoveries(self, assessment: Assessment, now: datetime) -> list[int]:
        """A recovery for each opted-in instance in ERROR or stuck (not one on a failed
        host: the host's recovery evacuates it), read live before it starts. An instance
        whose recovery failed is not tried again until it has been healthy; dry-run
        plans are made again after an hour."""
        limits = self.health.instances
        if not limits.enabled:
            return []
        hosts = {(h.cloud, h.region, h.host): h for h in assessment.hosts}
        wanted = [
            i
            for i in assessment.instances
            if i.problem in ("error", "stuck")
            and not (
                (host := hosts.get((i.cloud, i.region, i.host or ""))) is not None
                and host.failure != "none"
            )
        ]
        if not wanted:
            return []
        records = {
            (r["cloud"], r["region"], r["id"]): r for r in load_records(self.store, "server")
        }
        projects = {p["id"]: p.get("name") or "" for p in load_records(self.store, "project")}
        started: list[int] = []
        for instance in wanted:
            key = (instance.cloud, instance.region, instance.id)
            record = records.get(key)
            if record is None:
                continue
            if recoveries.find_open(self.store, *key[:2], "instance", instance.id):
                continue
            latest = recoveries.latest(self.store, *key[:2], "instance", instance.id)
            if latest is not None and self._instance_tried(latest, instance.id, now):
                continue
            groups = [
                g
                for g in load_records(self.store, "server_group", instance.cloud, instance.region)
                if instance.id in (g.get("members") or [])
            ]
            chosen, why = self._selected(record, projects, groups, set(), "recovered")
            if not chosen:
                continue
            server = self._instance_entry(record, groups)
            live = self._server(server)
            if live is None or _instance_running(live):
                continue  # the inventory is behind: it is gone, or fine again
            rid = recoveries.create(
                self.store,
                now,
                cloud=instance.cloud,
                region=instance.region,
                kind="instance",
                subject=instance.id,
                trigger=f"instance-{instance.problem}",
                status="running" if self.execute else "planned",
                execute=self.execute,
                owner=self.owner,
                evidence=list(instance.evidence),
                details={"server": server, "reason": "; ".join(instance.evidence)},
            )
            self._audit_subject(
                "recovery.started",
                rid,
                INSTANCE_POLICY,
                _target(server),
                {"evidence": instance.evidence, "name": instance.name},
            )
            started.append(rid)
        return started

    def _instance_tried(self, latest: dict[str, Any], server_id: str, now: datetime) -> bool:
        if latest["status"] == "dry-run":
            return not self.execute and _recent(latest, now, timedelta(hours=1))
        if latest["status"] == "succeeded":
            return False  # broken again: a new recovery, within the limits
        since = datetime.fromisoformat(latest["created_at"])
        return not any(
            c["after"] == "healthy"
            for c in health_states.changes(self.store, "instance", server_id, since)
        )

    @staticmethod
    def _instance_entry(record: dict[str, Any], groups: list[dict[str, Any]]) -> dict[str, Any]:
        image = record.get("image_id")
        if image is None and isinstance(record.get("image"), dict):
            image = record["image"].get("id")
        return {
            "cloud": record["cloud"],
            "region": record["region"],
            "kind": "server",
            "id": record["id"],
            "name": record.get("name") or record["id"],
            "status": record.get("status"),
            "project_id": record.get("project_id"),
            "host": record.get("host"),
            "tags": list(record.get("tags") or []),
            "metadata": dict(record.get("metadata") or {}),
            "image_id": image or None,
            "server_groups": [g.get("name") or g["id"] for g in groups],
        }

    def _drive_instance(self, recovery: dict[str, Any]) -> None:
        """Reset state, then reboot, then rebuild (health.instances.steps), each only
        while the instance is still not running, within the per-instance and per-hour
        limits; the recovery ends as soon as the instance runs again."""
        rid = recovery["id"]
        server: dict[str, Any] = recovery["details"]["server"]
        limits = self.health.instances
        tried: list[str] = []
        for n, name in enumerate(limits.steps, start=1):
            existing = recoveries.step(self.store, rid, name, server["id"])
            if existing is None and recovery["execute"]:
                now = _now()
                used = recoveries.executed_steps_since(
                    self.store, "instance", now - timedelta(hours=24), server["id"]
                )
                if used >= limits.max_per_instance:
                    self._finish(
                        rid,
                        "failed",
                        f"the per-instance limit is reached ({used} steps in 24 h, "
                        f"health.instances.max_per_instance {limits.max_per_instance})"
                        + (f" after {', '.join(tried)}" if tried else ""),
                    )
                    return
                hour = recoveries.executed_steps_since(
                    self.store, "instance", now - timedelta(hours=1)
                )
                if hour >= limits.max_per_hour:
                    # resumed at a later turn, once the hour allows it
                    recoveries.update_recovery(
                        self.store,
                        rid,
                        now,
                        error=f"waiting: {hour} instance recovery steps in the last hour "
                        f"(health.instances.max_per_hour {limits.max_per_hour})",
                    )
                    return
            outcome = self._step(
                rid, n, name, server["id"], lambda name=name: self._instance_step(rid, name, server)
            )
            if outcome.status == "planned":
                continue
            if outcome.status == "waiting":
                recoveries.update_recovery(self.store, rid, _now(), error=outcome.error)
                return
            tried.append(f"{name} ({outcome.status})")
            live = self._server(server)
            if live is None:
                self._finish(rid, "stopped", "the instance is gone")
                return
            if _instance_running(live):
                self._refresh(server)
                self._finish(rid, "succeeded", None)
                return
        if not recovery["execute"]:
            self._finish(rid, "dry-run", "planned only (health.execute is false)")
            return
        live = self._server(server) or {}
        self._finish(
            rid,
            "failed",
            f"still {live.get('status')} (power {live.get('power_state')}) after "
            + ", ".join(tried),
        )

    def _instance_step(self, rid: int, name: str, server: dict[str, Any]) -> StepOutcome:
        live = self._server(server)
        if live is None:
            return StepOutcome("skipped", error="the instance is gone")
        if _instance_running(live):
            return StepOutcome("done", {"note": "running again", **live})
        record = {**server, **live}
        action: Action
        if name == "reset-state":
            action = ResetServerState(state="active")
        elif name == "reboot":
            action = RebootServer(reboot_type="HARD")
        else:
            action = RebuildServer()
        outcome = self._act(INSTANCE_POLICY, action, record, f"recovery:{rid}:{name}")
        after = self._server(server)
        if after is not None:
            outcome.detail = {**outcome.detail, "after": after}
        return outcome

    def _audit_subject(
        self, event: str, rid: int, policy: str, target: str, details: dict[str, Any]
    ) -> None:
        self.audit.append(
            event,
            {"recovery": rid, **details},
            actor=self.settings.actor,
            policy=policy,
            target=target,
        )

    # -- gate + executor -------------------------------------------------------------
    def _act(
        self, policy_name: str, action: Action, record: dict[str, Any], step: str
    ) -> StepOutcome:
        policy = self.policies[policy_name]
        plan = action.plan(record)
        if plan is None:
            return StepOutcome("done", {"note": "nothing to do"})
        if isinstance(plan, Skip):
            return StepOutcome("skipped", error=plan.reason)
        now = _now()
        candidate = Candidate(
            policy=policy,
            action=action,
            record=record,
            plan=plan,
            key=idempotency_key(policy.name, action, record, None, step=step),
            finding_id=None,
            trusted=True,
        )
        execute = self.execute
        existing = action_records.by_key(self.store, candidate.key)
        if existing is not None and existing["status"] == "running":
            # the process driving this recovery died in this action; the step has read
            # OpenStack's state again before coming here, so it may be repeated
            action_records.set_status(
                self.store,
                existing["id"],
                now,
                status="failed",
                error="interrupted: the recovery's driver ended; OpenStack's state was read "
                "again before repeating",
            )
        gate = SafetyGate(
            self.store, self.settings.safety, FleetView(self.store, now), now, execute
        )
        gate.decide(policy, [candidate])
        if candidate.verdict == "planned":
            return StepOutcome(  # dry-run
                "planned", {"plan": plan.summary, "diff": plan.diff_lines()}
            )
        if candidate.verdict == "awaiting-approval":
            queue_for_approval(self.store, self.audit, candidate, self.settings.actor, now)
            return StepOutcome("waiting", error=candidate.reason, action_id=candidate.action_id)
        if candidate.verdict == "done":
            return StepOutcome(
                "done" if candidate.took else "failed",
                error=None if candidate.took else candidate.reason,
                action_id=candidate.action_id,
            )
        if candidate.verdict != "execute":
            return StepOutcome("failed", error=f"{candidate.verdict}: {candidate.reason}")
        Executor(
            self.store,
            self.audit,
            self._ctx(),
            self.settings.actor,
            self.settings.safety.exclude_tag,
        ).run(candidate)
        status = "done" if candidate.verdict == "succeeded" else "failed"
        return StepOutcome(
            status,
            {"verdict": candidate.verdict, "reason": candidate.reason},
            None if status == "done" else f"{candidate.verdict}: {candidate.reason}",
            candidate.action_id,
        )

    def _ctx(self) -> RunContext:
        return RunContext(
            now=_now(),
            connections=self.connections,
            notifier=Notifier(self.settings.notify),
            verify_timeout=self.settings.verify_timeout.total_seconds(),
            poll_interval=self.settings.poll_interval.total_seconds(),
        )

    # -- reading OpenStack -----------------------------------------------------------
    def _hypervisor_record(self, cloud: str, region: str, host: str) -> dict[str, Any]:
        for h in load_records(self.store, "hypervisor", cloud, region):
            if h.get("host") == host:
                return h
        return {
            "cloud": cloud,
            "region": region,
            "kind": "hypervisor",
            "id": host,
            "name": host,
            "host": host,
        }

    def _service_record(
        self, cloud: str, region: str, host: str, service_id: str | None
    ) -> dict[str, Any]:
        record = {
            "cloud": cloud,
            "region": region,
            "kind": "compute_service",
            "id": service_id or "",
            "name": f"nova-compute@{host}",
            "host": host,
            "binary": "nova-compute",
        }
        live = read_service(self._ctx(), record)
        if live is not None:
            record["id"] = str(live["id"])
            record.update(live)
        return record

    def _server(self, server: dict[str, Any]) -> dict[str, Any] | None:
        conn = self.connections.connection(server["cloud"], server["region"])
        try:
            live = conn.compute.get_server(server["id"])
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ == "NotFoundException":
                return None
            raise
        power = live.power_state
        return {
            "host": live.compute_host,
            "status": live.status,
            "task_state": live.task_state,
            "power_state": POWER_STATES.get(power, str(power)) if power is not None else None,
            "tags": list(live.tags or []),
            "metadata": dict(live.metadata or {}),
        }

    def _refresh(self, server: dict[str, Any]) -> None:
        """Record the server as it is now in the inventory (its new host, its status),
        so the next assessment judges it there rather than on the failed host until
        the next pass."""
        try:
            target = self.connections.target(server["cloud"], server["region"])
            record = read_one(target, "server", server["id"])
            self.store.upsert_resource(server["cloud"], server["region"], "server", record)
        except Exception as exc:  # noqa: BLE001 - the next pass records it anyway
            log.warning("recovery: refreshing server %s failed: %s", server["id"], exc)

    def _evacuation_requested(self, server: dict[str, Any], host: str) -> bool:
        """Nova has an evacuation of this server from `host` (asked for before a crash)."""
        conn = self.connections.connection(server["cloud"], server["region"])
        response = conn.compute.get(
            "/os-migrations",
            params={"instance_uuid": server["id"], "migration_type": "evacuation"},
            microversion="2.59",
        )
        if response.status_code >= 400:
            return False
        return any(
            m.get("source_compute") == host and m.get("status") not in ("error", "failed")
            for m in response.json().get("migrations") or []
        )

    def _servers_on(self, cloud: str, region: str, host: str) -> list[dict[str, Any]]:
        """The instances on the failed host, each with whether it may be evacuated."""
        conn = self.connections.connection(cloud, region)
        groups = load_records(self.store, "server_group", cloud, region)
        hypervisors = load_records(self.store, "hypervisor", cloud, region)
        aggregates = {
            str(h.get("host")): {str(a) for a in h.get("aggregates") or []} for h in hypervisors
        }
        projects = {p["id"]: p.get("name") or "" for p in load_records(self.store, "project")}
        servers = []
        for s in conn.compute.servers(all_projects=True, compute_host=host):
            groups_of = [g for g in groups if s.id in (g.get("members") or [])]
            entry = {
                "cloud": cloud,
                "region": region,
                "kind": "server",
                "id": s.id,
                "name": s.name,
                "status": s.status,
                "project_id": s.project_id,
                "tags": list(s.tags or []),
                "metadata": dict(s.metadata or {}),
                "image_id": (s.image or {}).get("id") if isinstance(s.image, dict) else None,
                "server_groups": [g.get("name") or g["id"] for g in groups_of],
            }
            eligible, why = self._eligible(
                entry, projects, groups_of, aggregates.get(host, set()), host
            )
            entry["eligible"], entry["why"] = eligible, why
            servers.append(entry)
        return sorted(servers, key=lambda s: (s["name"] or "", s["id"]))

    def _eligible(
        self,
        server: dict[str, Any],
        projects: dict[str, str],
        groups: list[dict[str, Any]],
        aggregates: set[str],
        host: str,
    ) -> tuple[bool, str]:
        chosen, why = self._selected(server, projects, groups, aggregates, "evacuated")
        if not chosen:
            return False, why
        for group in groups:
            if group.get("policy") == "anti-affinity" and not self._room_for(server, group, host):
                return False, (
                    f"anti-affinity group {group.get('name') or group['id']}: every other "
                    "enabled host already holds a member (left for the operator)"
                )
        return True, "opted in"

    def _selected(
        self,
        server: dict[str, Any],
        projects: dict[str, str],
        groups: list[dict[str, Any]],
        aggregates: set[str],
        verb: str,
    ) -> tuple[bool, str]:
        """Whether the opt-in selectors choose the instance and `never` does not."""
        never, opt_in = self.health.never, self.health.opt_in
        project = server.get("project_id") or ""
        names = {project, projects.get(project, "")}
        tags = set(server.get("tags") or [])
        if names & set(never.projects):
            return False, f"service project {projects.get(project) or project}: never {verb}"
        tagged = tags & set(never.tags)
        if tagged:
            return False, f"tag {sorted(tagged)[0]}: never {verb}"
        chosen = (
            opt_in.all
            or bool(names & set(opt_in.projects))
            or bool(tags & set(opt_in.tags))
            or any({g["id"], g.get("name")} & set(opt_in.server_groups) for g in groups)
            or bool(aggregates & set(opt_in.aggregates))
        )
        if not chosen:
            return False, "not opted in (health.opt_in)"
        return True, "opted in"

    def _room_for(self, server: dict[str, Any], group: dict[str, Any], failed: str) -> bool:
        """Some enabled, up compute host other than `failed` holds no member of `group`."""
        servers = {
            s["id"]: s
            for s in load_records(self.store, "server", server["cloud"], server["region"])
        }
        taken = {
            servers[m].get("host")
            for m in group.get("members") or []
            if m != server["id"] and m in servers
        }
        assessment = self.monitor.last
        hosts = [
            h
            for h in (assessment.hosts if assessment else [])
            if (h.cloud, h.region) == (server["cloud"], server["region"])
        ]
        return any(
            h.host != failed and h.state == "healthy" and not h.disabled and h.host not in taken
            for h in hosts
        )

    # -- records, reasons, alerts ----------------------------------------------------
    def _progress(self, rid: int, service: dict[str, Any], text: str) -> None:
        """Record the recovery's progress in the service's disabled reason (what an
        operator sees in `openstack compute service list --long`)."""
        recovery = recoveries.get(self.store, rid)
        if not recovery["execute"] or not service.get("id"):
            return
        reason = _reason(rid, text)
        live = read_service(self._ctx(), service)
        if live is None or live.get("disabled_reason") == reason:
            return
        update_service(self._ctx(), service, {"status": "disabled", "disabled_reason": reason})
        self.audit.append(
            "recovery.progress",
            {"recovery": rid, "disabled_reason": reason},
            actor=self.settings.actor,
            policy=HOST_POLICY,
            target=_target(service),
        )

    def _finish(self, rid: int, status: str, error: str | None) -> None:
        now = _now()
        recoveries.update_recovery(
            self.store, rid, now, status=status, error=error, finished_at=now
        )
        recovery = recoveries.get(self.store, rid)
        self.audit.append(
            f"recovery.{status}",
            {"recovery": rid, "error": error, "steps": len(recovery["steps"])},
            actor=self.settings.actor,
            policy=_POLICY_OF.get(recovery["kind"], HOST_POLICY),
            target=f"{recovery['cloud']}/{recovery['region']}/{recovery['kind']}/{recovery['subject']}",
        )

    def _audit(self, event: str, rid: int, host: HostHealth, details: dict[str, Any]) -> None:
        self.audit.append(
            event,
            {"recovery": rid, "evidence": [e.text() for e in host.evidence], **details},
            actor=self.settings.actor,
            policy=HOST_POLICY,
            target=f"{host.cloud}/{host.region}/host/{host.host}",
        )

    def _alerts(self, assessment: Assessment, now: datetime) -> None:
        """The health alerts that should be firing now (one per cause, with its
        consequences listed)."""
        wanted: list[WantedAlert] = []
        if assessment.fleet.frozen:
            wanted.append(
                WantedAlert(
                    {"alertname": "HealthRecoveryFrozen", "severity": "critical"},
                    {"summary": f"automatic recovery frozen: {assessment.fleet.frozen}"},
                    now,
                )
            )
        servers_by_host: dict[tuple[str, str, str], list[str]] = {}
        for instance in assessment.instances:
            if instance.host:
                servers_by_host.setdefault(
                    (instance.cloud, instance.region, instance.host), []
                ).append(instance.name)
        for host in assessment.hosts:
            if host.failure in ("host", "process", "undetermined") and host.state != "healthy":
                affected = servers_by_host.get((host.cloud, host.region, host.host), [])
                name = {
                    "host": "HostFailure",
                    "process": "ComputeProcessFailure",
                    "undetermined": "ComputeServiceDown",
                }[host.failure]
                wanted.append(
                    WantedAlert(
                        {
                            "alertname": name,
                            "severity": "critical" if host.failure != "process" else "warning",
                            "host": host.host,
                            "cloud": host.cloud,
                            "region": host.region,
                        },
                        {
                            "summary": f"{host.host}: {host.reason}",
                            "evidence": "; ".join(e.text() for e in host.evidence),
                            "consequences": f"{len(affected)} instance(s): "
                            + ", ".join(sorted(affected)[:50]),
                        },
                        now,
                        refresh_annotations=True,
                    )
                )
        healthy_instances = {i.id for i in assessment.instances if i.state == "healthy"}
        for recovery in recoveries.list_recoveries(self.store, "failed", limit=50):
            if recovery["kind"] == "instance":
                if recovery["subject"] in healthy_instances:
                    continue
                labels = {
                    "alertname": "HealthRecoveryFailed",
                    "severity": "warning",
                    "instance": recovery["subject"],
                    "recovery": str(recovery["id"]),
                }
            else:
                now_host = assessment.host(
                    recovery["cloud"], recovery["region"], recovery["subject"]
                )
                if now_host is not None and now_host.state == "healthy" and not now_host.disabled:
                    continue
                labels = {
                    "alertname": "HealthRecoveryFailed",
                    "severity": "critical",
                    "host": recovery["subject"],
                    "recovery": str(recovery["id"]),
                }
            wanted.append(
                WantedAlert(
                    labels,
                    {
                        "summary": f"recovery {recovery['id']} of {recovery['subject']} "
                        f"failed: {recovery['error']}",
                    },
                    now,
                )
            )
        sync_alerts(self.store, "health", wanted, now)


_POLICY_OF = {"host": HOST_POLICY, "service": SERVICE_POLICY, "instance": INSTANCE_POLICY}


def _instance_running(live: dict[str, Any]) -> bool:
    """ACTIVE, no task under way, and the guest powered on."""
    return (
        live.get("status") == "ACTIVE"
        and not live.get("task_state")
        and live.get("power_state") in (None, "RUNNING")
    )


def _reason(rid: int, text: str) -> str:
    return f"{REASON_PREFIX} recovery {rid}: {text}"[:255]


def _target(record: dict[str, Any]) -> str:
    return f"{record['cloud']}/{record['region']}/{record['kind']}/{record['id']}"


def _now() -> datetime:
    return datetime.now(UTC)


def _recent(recovery: dict[str, Any], now: datetime, within: timedelta) -> bool:
    created = datetime.fromisoformat(recovery["created_at"])
    return now - created < within


def _monotonic() -> float:
    return time.monotonic()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)
