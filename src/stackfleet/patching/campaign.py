"""Campaigns: a resumable plan of gated, audited actions over hosts, batch by batch.

Each host goes through its steps in order — pre-check → drain → apply → restart → gate
→ undrain — with its per-step state in the store (pending, running, done, failed,
skipped). The reconciler is level-triggered: a step found `running` (StackFleet was
killed during it) is resumed from what OpenStack and the host show, not repeated:

each step says how it resumes where it is written. Where each part lives:

- planning.py: targets resolved against the live cloud, checks before anything starts,
  batches and each host's steps;
- drain.py: the capacity check, disable, moves and their fallbacks; sla.py: k of n;
- host_steps.py: pre-check, apply, restart, gate (a canary on a drained host), undrain,
  and a host's rollback; instances.py: an instance campaign's steps (rebuild);
- step_context.py: what the steps share, and how each acts;
- here: the runner (start, pause, resume, abort, approve, rollback, the lease) and a
  run's batches, windows and per-step state.

Every change goes through the engine's safety gate and executor (idempotency keys,
re-read before acting, audit entries before and after); apply and rollback write
audit entries with the revision before and after. A failed gate rolls the host back to
its last tested revision (the pre-check marks the untouched revision tested when its
gate passes), re-runs the gate, halts the campaign and raises an alert (the
`patching/campaign-halted` rule of the patching pack).

One process carries a campaign out at a time: a lease in the campaigns table (owner and
heartbeat), taken over when stale or when its owner's process on this machine is gone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from stackfleet.actions.base import ActionError
from stackfleet.core.errors import ConfigError, ConflictError
from stackfleet.engine.execute import Connections
from stackfleet.engine.settings import Settings
from stackfleet.patching.connectors import ConnectorError, connector_for
from stackfleet.patching.drain import DrainSteps
from stackfleet.patching.gates import GateRunner
from stackfleet.patching.host_steps import HostSteps, rollback_target
from stackfleet.patching.instances import InstanceSteps
from stackfleet.patching.planning import CampaignPlan, make_plan
from stackfleet.patching.reporting import report_campaign
from stackfleet.patching.spec import CampaignSpec, LoadedSpec, closest
from stackfleet.patching.step_context import StepFailed, _policy_name, _resolved_connector
from stackfleet.store import patching as records
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

ROLLBACK = "rollback"
PENDING = ("pending", "running")


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _owner_gone(owner: str | None) -> bool:
    """The lease's owner is a process of this machine that no longer runs."""
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class CampaignRunner:
    """Starts and carries out campaigns over one store."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        connections: Connections | None = None,
        lease: float = 60.0,
        actor: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.connections = connections or Connections()
        self.lease = lease
        self.owner = owner_id()
        self.actor = actor or self.settings.actor
        self.audit = AuditLog(store)

    # ------------------------------------------------------------ starting
    def plan(self, loaded: LoadedSpec) -> CampaignPlan:
        spec = loaded.spec
        conn = self.connections.connection(spec.cloud, spec.region)
        connector = connector_for(_resolved_connector(loaded))
        return make_plan(loaded, conn, self.store, connector, datetime.now(UTC))

    def start(self, loaded: LoadedSpec, source: str = "") -> CampaignPlan:
        """Check and record a campaign (status running); run it with `run`."""
        plan = self.plan(loaded)
        now = datetime.now(UTC)
        steps = [
            (host, batch, position, step)
            for batch, hosts in enumerate(plan.batches)
            for host in hosts
            for position, step in enumerate(plan.steps[host])
        ]
        spec_json = loaded.spec.model_dump(mode="json")
        records.create_campaign(
            self.store,
            loaded.spec.name,
            spec_json,
            {**plan.as_dict(), "base": str(loaded.base), "source": loaded.source},
            source,
            steps,
            now,
        )
        self.audit.append(
            "campaign.started",
            {"plan": plan.as_dict()},
            actor=self.actor,
            policy=_policy_name(loaded.spec.name),
        )
        return plan

    # ------------------------------------------------------------ control
    def set_status(
        self,
        name: str,
        status: str,
        event: str,
        error: str | None = None,
        allowed: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        campaign = records.get_campaign(self.store, name)
        if allowed and campaign["status"] not in allowed:
            raise ConflictError(
                f"campaign {name} is {campaign['status']}; {event.split('.')[-1]} applies to "
                f"a campaign that is {' or '.join(allowed)}"
            )
        now = datetime.now(UTC)
        records.set_campaign(self.store, campaign["id"], now, status=status, error=error)
        self.audit.append(
            event, {"status": status, "error": error}, actor=self.actor, policy=_policy_name(name)
        )
        campaign = records.get_campaign(self.store, name)
        report_campaign(self.store, self.settings, campaign)
        return campaign

    def approve(self, name: str) -> dict[str, Any]:
        """Let the next batch waiting for approval go on."""
        campaign = records.get_campaign(self.store, name)
        waiting = campaign["plan"].get("waiting_batch")
        if campaign["status"] != "awaiting-approval" or waiting is None:
            raise ConflictError(f"campaign {name} is {campaign['status']}: no batch waits")
        approved = sorted({*campaign["approved_batches"], int(waiting)})
        records.set_campaign(
            self.store,
            campaign["id"],
            datetime.now(UTC),
            approved_batches=approved,
            status="running",
            error=None,
        )
        self.audit.append(
            "campaign.batch-approved",
            {"batch": waiting},
            actor=self.actor,
            policy=_policy_name(name),
        )
        return records.get_campaign(self.store, name)

    def resume(self, name: str, retry: bool = False) -> dict[str, Any]:
        """Mark a paused or halted campaign running again; with `retry`, failed steps
        (and steps a crash interrupted that could not be resumed) run again."""
        campaign = records.get_campaign(self.store, name)
        if campaign["status"] in ("completed", "aborted"):
            raise ConflictError(f"campaign {name} is {campaign['status']}; nothing to resume")
        spec = CampaignSpec.model_validate(campaign["spec"])
        if spec.window is not None:
            reason = spec.window.closed_reason(datetime.now(UTC))
            if reason:
                raise ConfigError(f"campaign {name}: {reason}; nothing was resumed")
        if retry:
            steps = records.steps_of(self.store, campaign["id"])
            rolled_back = {s["host"] for s in steps if s["step"] == ROLLBACK}
            for step in steps:
                if step["host"] in rolled_back and step["step"] != "pre-check":
                    # the host is back on its tested revision (and undrained): every
                    # step after its pre-check runs again, and a rollback if it fails
                    status = "skipped" if step["step"] == ROLLBACK else "pending"
                    records.set_step(self.store, step["id"], status=status, error=None, detail={})
                elif step["status"] == "failed":
                    records.set_step(self.store, step["id"], status="pending", error=None)
        return self.set_status(name, "running", "campaign.resumed")

    def rollback(self, name: str, hosts: list[str] | None = None) -> list[dict[str, Any]]:
        """Put each host's last tested revision back (all hosts the campaign changed, or
        `hosts`), restart and gate them. Refused, with nothing done, when a host has no
        tested revision."""
        campaign = records.get_campaign(self.store, name)
        loaded = _loaded_of(campaign)
        steps = records.steps_of(self.store, campaign["id"])
        changed = sorted(
            {
                s["host"]
                for s in steps
                if s["step"] in ("apply", "rebuild")
                and s["status"] in ("done", "running", "failed")
            }
        )
        targets = hosts or changed
        known = sorted({s["host"] for s in steps})
        missing = []
        for host in targets:
            if host not in known:
                raise ConfigError(f"host {host!r} is not in campaign {name}{closest(host, known)}")
            for service in loaded.spec.targets.services:
                if rollback_target(self.store, campaign["id"], host, service) is None:
                    missing.append(f"{service} on {host}")
        if missing:
            raise ConfigError(
                "no tested revision to roll back to for "
                + ", ".join(missing)
                + "; nothing was rolled back"
            )
        if not targets:
            raise ConfigError(f"campaign {name} changed no host yet: nothing to roll back")
        results = []
        run = _Run(self, campaign, loaded)
        for host in targets:
            try:
                run.roll_back(host, {})
                results.append({"host": host, "status": "rolled-back"})
            except StepFailed as exc:
                results.append({"host": host, "status": "failed", "error": str(exc)})
        return results

    # ------------------------------------------------------------ running
    def run(self, name: str, on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Carry a campaign out (or on) until it completes, halts, pauses or waits."""
        campaign = records.get_campaign(self.store, name)
        if campaign["status"] != "running":
            return campaign
        now = datetime.now(UTC)
        stale_before = now - timedelta(seconds=self.lease)
        if _owner_gone(campaign["owner"]):
            stale_before = now + timedelta(days=1)  # its process is gone: take over
        if not records.claim_campaign(self.store, campaign["id"], self.owner, now, stale_before):
            raise ConflictError(
                f"campaign {name} is being carried out by {campaign['owner']} "
                f"(heartbeat {campaign['heartbeat_at']}); its lease ends {self.lease:g} s "
                "after its last heartbeat"
            )
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(campaign["id"], stop), daemon=True)
        beat.start()
        try:
            return _Run(self, campaign, _loaded_of(campaign), on_progress).run()
        finally:
            stop.set()
            beat.join(timeout=5)
            records.release_campaign(self.store, campaign["id"], self.owner)

    def run_due(self) -> None:
        """Every running campaign nobody carries out (the daemon's job)."""
        for campaign in records.list_campaigns(self.store, "running"):
            try:
                self.run(campaign["name"])
            except ConflictError as exc:
                log.info("%s", exc)

    def _heartbeat(self, campaign_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 3):
            records.set_campaign(
                self.store, campaign_id, datetime.now(UTC), heartbeat_at=datetime.now(UTC)
            )


def _loaded_of(campaign: dict[str, Any]) -> LoadedSpec:
    from pathlib import Path

    spec = CampaignSpec.model_validate(campaign["spec"])
    plan = campaign["plan"]
    return LoadedSpec(
        spec, plan.get("source") or campaign["name"], None, Path(plan.get("base") or ".")
    )


class _Run(HostSteps, DrainSteps, InstanceSteps):
    """One carrying-out of a campaign by one process: its batches, in order, each
    host's (or server's) steps, and their recorded state."""

    def __init__(
        self,
        runner: CampaignRunner,
        campaign: dict[str, Any],
        loaded: LoadedSpec,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(runner, campaign, loaded, on_progress)
        self.gates = GateRunner(
            loaded, self.conn, self.connector, self.store, self.poll, self._opened_for_canary
        )

    def run(self) -> dict[str, Any]:
        steps = records.steps_of(self.store, self.campaign["id"])
        by_batch: dict[int, list[str]] = {}
        for step in steps:
            hosts = by_batch.setdefault(step["batch"], [])
            if step["host"] not in hosts:
                hosts.append(step["host"])
        failed_hosts = {s["host"] for s in steps if s["status"] == "failed"}
        previous_done = False
        for batch in sorted(by_batch):
            batch_steps = [
                s for s in records.steps_of(self.store, self.campaign["id"]) if s["batch"] == batch
            ]
            if all(s["status"] in ("done", "skipped") for s in batch_steps):
                previous_done = True
                continue
            status = self._status()
            if status != "running":
                return records.get_campaign(self.store, self.name)
            now = datetime.now(UTC)
            if self.spec.window is not None:
                reason = self.spec.window.closed_reason(now)
                if reason:
                    return self._stop("paused", f"{reason}; resume when it opens")
            if self.spec.approvals.per_batch and batch not in self._approved():
                plan = {
                    **records.get_campaign(self.store, self.name)["plan"],
                    "waiting_batch": batch,
                }
                records.set_campaign(self.store, self.campaign["id"], now, plan=plan)
                return self._stop(
                    "awaiting-approval",
                    f"batch {batch} ({', '.join(by_batch[batch])}) waits for "
                    f"`stackfleet campaign approve {self.name}`",
                )
            if previous_done and self.spec.rollout.pause.total_seconds() > 0:
                self.progress(f"pause {self.spec.rollout.pause} before batch {batch}")
                time.sleep(self.spec.rollout.pause.total_seconds())
            self.progress(f"batch {batch}: {', '.join(by_batch[batch])}")
            hosts = by_batch[batch]
            workers = min(len(hosts), 16)
            # the hosts that start at once and will be disabled by their drain
            self._expect_disables(
                [h for h in hosts[:workers] if self._detail_status(h, "drain") in PENDING]
            )
            with ThreadPoolExecutor(max_workers=workers) as pool:
                outcomes = list(pool.map(self._carry_out, hosts))
            failed_hosts |= {h for h, ok in zip(hosts, outcomes, strict=True) if ok is False}
            if any(ok is None for ok in outcomes):
                # paused or aborted mid-batch: the hosts stopped between steps
                return records.get_campaign(self.store, self.name)
            if len(failed_hosts) >= self.spec.abort.max_failed_hosts:
                return self._stop(
                    "halted",
                    f"{len(failed_hosts)} host(s) failed: {', '.join(sorted(failed_hosts))} "
                    f"(abort.max_failed_hosts {self.spec.abort.max_failed_hosts})",
                    failed_host=sorted(failed_hosts)[0],
                )
            previous_done = True
        return self._stop("completed", None)

    def _status(self) -> str:
        return str(records.get_campaign(self.store, self.name)["status"])

    def _approved(self) -> list[int]:
        return list(records.get_campaign(self.store, self.name)["approved_batches"])

    def _stop(
        self, status: str, error: str | None, failed_host: str | None = None
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        records.set_campaign(self.store, self.campaign["id"], now, status=status, error=error)
        self.runner.audit.append(
            f"campaign.{status}",
            {"error": error, "failed_host": failed_host},
            actor=self.runner.actor,
            policy=_policy_name(self.name),
        )
        campaign = records.get_campaign(self.store, self.name)
        report_campaign(self.store, self.runner.settings, campaign, failed_host)
        self.progress(f"campaign {self.name} {status}" + (f": {error}" if error else ""))
        return campaign

    def _carry_out(self, host: str) -> bool | None:
        try:
            return self._host(host)
        finally:
            # done, failed or stopped: the batch's other drains wait for it no longer
            self._disabled_or_out(host)

    def _detail_status(self, host: str, name: str) -> str | None:
        return next((s["status"] for s in self._steps(host) if s["step"] == name), None)

    def _host(self, host: str) -> bool | None:
        """Run a host's remaining steps: True done, False failed, None stopped between
        steps (paused or aborted)."""
        steps = self._steps(host)
        rollback = next((s for s in steps if s["step"] == ROLLBACK), None)
        for step in steps:
            if step["step"] == ROLLBACK or step["status"] in ("done", "skipped"):
                continue
            if step["status"] == "failed":
                if rollback is not None and rollback["status"] in ("pending", "running"):
                    # the process died between the failure and its rollback
                    self._step(host, rollback)
                return False
            if self._status() != "running":
                return None
            ok = self._step(host, step)
            if not ok:
                return False
        return True

    def _step(self, host: str, step: dict[str, Any]) -> bool:
        resumed = step["status"] == "running"
        detail = dict(step["detail"] or {})
        started = datetime.now(UTC)
        if not resumed:
            detail["started_at"] = started.isoformat()
        detail["attempt"] = int(detail.get("attempt", 0)) + 1
        values: dict[str, Any] = {"status": "running", "detail": detail}
        if not resumed:
            values["started_at"] = started
        records.set_step(self.store, step["id"], **values)
        target = f"{self.spec.cloud}/{self.region}/host/{host}"
        self.runner.audit.append(
            "campaign.step.started",
            {"step": step["step"], "resumed": resumed, "attempt": detail["attempt"]},
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=target,
        )
        self.progress(f"{host}: {step['step']}" + (" (resumed)" if resumed else ""))
        handler = getattr(self, "_" + step["step"].replace("-", "_"))
        began = time.monotonic()
        try:
            result = handler(host, detail, resumed)
        except (StepFailed, ActionError, ConnectorError, ConfigError) as exc:
            seconds = time.monotonic() - began
            records.set_step(
                self.store,
                step["id"],
                status="failed",
                error=str(exc),
                detail=detail,
                finished_at=datetime.now(UTC),
                seconds=seconds,
            )
            self.runner.audit.append(
                "campaign.step.failed",
                {"step": step["step"], "error": str(exc)},
                actor=self.runner.actor,
                policy=_policy_name(self.name),
                target=target,
            )
            self.progress(f"{host}: {step['step']} FAILED: {exc}")
            if (
                step["step"] in ("apply", "restart", "gate", "rebuild", "health-check")
                and self.spec.rollback.on_gate_failure
            ):
                self._rollback_step(host, step["batch"])
            return False
        seconds = time.monotonic() - began
        status = "skipped" if result is None else "done"
        detail.update(result or {})
        records.set_step(
            self.store,
            step["id"],
            status=status,
            detail=detail,
            error=None,
            finished_at=datetime.now(UTC),
            seconds=seconds,
        )
        self.runner.audit.append(
            "campaign.step.done",
            {"step": step["step"], "detail": _brief(detail)},
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=target,
        )
        return True

    def _rollback_step(self, host: str, batch: int) -> None:
        records.add_step(self.store, self.campaign["id"], host, batch, 99, ROLLBACK)
        step = next(s for s in self._steps(host) if s["step"] == ROLLBACK)
        if step["status"] in ("done", "failed"):
            return
        self._step(host, step)

    def _pre_check(self, unit: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        if self.instances:
            return self._instance_pre_check(unit)
        return self._host_pre_check(unit, detail, resumed)

    def roll_back(self, unit: str, detail: dict[str, Any]) -> dict[str, Any]:
        """Put the last tested revision of each service back on a host (restart, gate,
        undrain), or rebuild a server (instance campaign) back."""
        if self.instances:
            return self._rebuild_back(unit, detail)
        return self._roll_back_host(unit, detail)

    def _rollback(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        return self.roll_back(host, detail)


def _brief(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if k not in ("moved",)} | (
        {"moved": len(detail["moved"])} if "moved" in detail else {}
    )
