"""A policy run: evaluate → findings → plan → safety gate → act → verify → audit.

`PolicyRunner.run` is what `stackfleet policy run` and the daemon call. It is level
triggered and idempotent: running it again with nothing changed opens no new finding
and repeats no action (idempotency keys), so a crash half-way is resumed by the next
run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from stackfleet.actions.base import Skip
from stackfleet.actions.leases import UNUSED_FIELDS, ReclaimLease
from stackfleet.actions.notify import Notifier
from stackfleet.alerts.lifecycle import AlertChanges, Dispatch, dispatch, sync_policy_alerts
from stackfleet.engine.evaluate import evaluate_policy, prepare
from stackfleet.engine.execute import Connections, Executor, RunContext, queue_for_approval
from stackfleet.engine.gate import Candidate, SafetyGate, idempotency_key
from stackfleet.engine.leases import LeaseReconciler, Step
from stackfleet.engine.settings import Settings
from stackfleet.model import KINDS
from stackfleet.policy.schema import Policy
from stackfleet.policy.view import FleetView, Record, Segment, key_of, paused_gc
from stackfleet.store import leases
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store
from stackfleet.store.findings import FindingKey, FindingSync, sync_findings

log = logging.getLogger(__name__)


@dataclass
class PolicyReport:
    """What one policy did in one run."""

    policy: Policy
    matched: list[Record]
    trusted: set[Segment]
    incomplete: dict[Segment, list[str]]
    findings: FindingSync | None
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[tuple[Record, Skip]] = field(default_factory=list)
    alerts: AlertChanges | None = None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        verdicts: dict[str, int] = {}
        for candidate in self.candidates:
            verdicts[candidate.verdict] = verdicts.get(candidate.verdict, 0) + 1
        return {
            "policy": self.policy.name,
            "resource": self.policy.kind,
            "matched": len(self.matched),
            "findings_opened": self.findings.opened if self.findings else 0,
            "findings_resolved": self.findings.resolved if self.findings else 0,
            "incomplete": {
                f"{cloud}/{region}": kinds for (cloud, region), kinds in self.incomplete.items()
            },
            "actions": verdicts,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class RunReport:
    """What one run did."""

    execute: bool
    now: datetime
    policies: list[PolicyReport] = field(default_factory=list)
    alerts: Dispatch | None = None
    seconds: float = 0.0


def finding_describer(policy: Policy) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """What a finding of `policy` keeps from its record, beyond where it is: the alert
    labels of its kind (`Kind.alert_labels`) and the policy's `summary` rendered over
    the record. None when there is neither."""
    pairs = KINDS[policy.kind].alert_labels
    template = policy.spec.summary
    if not pairs and not template:
        return None

    def describe(record: dict[str, Any]) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if pairs:
            details["labels"] = {
                label: str(record[name]) for label, name in pairs if record.get(name)
            }
        if template:
            details["summary"] = policy.summary_of(record)
        return details

    return describe


def alert_source(policy: Policy) -> str:
    """Alerts of policies over swept kinds (the database, RabbitMQ and hardware packs)
    say their pack raised them; every other policy's alerts say "policy"."""
    if KINDS[policy.kind].swept:
        return policy.spec.labels.get("pack") or "policy"
    return "policy"


class PolicyRunner:
    """Runs policies over one store."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        connections: Connections | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.connections = connections or Connections()
        self.notifier = notifier
        self.audit = AuditLog(store)
        # the view of the newest run (reports read the records it loaded)
        self.last_view: FleetView | None = None

    def run(
        self,
        policies: Sequence[Policy],
        execute: bool = False,
        record_findings: bool = True,
        now: datetime | None = None,
        view: FleetView | None = None,
        only: Collection[FindingKey] | None = None,
        dispatch_alerts: bool = True,
    ) -> RunReport:
        """Run `policies` once. Without `execute`, nothing changes in the cloud: every
        action is planned and shown, findings are still recorded (unless
        `record_findings` is False). With `only` (cloud, region, kind, id keys: an
        event-driven run), just those resources are evaluated, and only their findings
        open or resolve. Without `dispatch_alerts`, recorded alerts wait for the next
        dispatch (the infrastructure sweeps' hooks tell the receivers themselves)."""
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        view = view or FleetView(self.store, now)
        self.last_view = view
        gate = SafetyGate(self.store, self.settings.safety, view, now, execute)
        notifier = self.notifier or Notifier(
            self.settings.notify,
            {p["id"]: p.get("name") or "" for p in view.records("project")},
        )
        ctx = RunContext(
            now=now,
            connections=self.connections,
            notifier=notifier,
            verify_timeout=self.settings.verify_timeout.total_seconds(),
            poll_interval=self.settings.poll_interval.total_seconds(),
        )
        executor = Executor(
            self.store, self.audit, ctx, self.settings.actor, self.settings.safety.exclude_tag
        )
        report = RunReport(execute=execute, now=now)
        # the cyclic collector would walk every loaded record at each full collection;
        # records hold no cycles, and what the run leaves is collected after it
        with paused_gc():
            if only is None:
                prepare(policies, view)  # every compared field, one pass per kind
            for policy in policies:
                report.policies.append(
                    self._run_policy(
                        policy, view, gate, executor, ctx, execute, record_findings, now, only
                    )
                )
        if record_findings:
            view.save()
        if record_findings and dispatch_alerts:
            report.alerts = dispatch(
                self.store,
                self.settings.alerts.receivers,
                self.settings.notify,
                now,
                self.settings.alerts.inhibit_rules,
            )
        report.seconds = time.perf_counter() - started
        return report

    def _run_policy(
        self,
        policy: Policy,
        view: FleetView,
        gate: SafetyGate,
        executor: Executor,
        ctx: RunContext,
        execute: bool,
        record_findings: bool,
        now: datetime,
        only: Collection[FindingKey] | None = None,
    ) -> PolicyReport:
        started = time.perf_counter()
        scope = None if only is None else {(c, r, i) for c, r, k, i in only if k == policy.kind}
        evaluated = evaluate_policy(policy, view, scope)
        sync = (
            sync_findings(
                self.store,
                policy.name,
                policy.spec.severity,
                evaluated.matches,
                evaluated.trusted,
                now,
                only,
                evaluated.unread,
                finding_describer(policy),
                policy.severity_rule(view),
            )
            if record_findings
            else None
        )
        alerts = None
        if sync is not None and policy.spec.alert:
            alerts = sync_policy_alerts(
                self.store,
                policy.name,
                policy.spec.severity,
                policy.spec.labels,
                policy.spec.description.strip(),
                now,
                alert_source(policy),
            )
        report = PolicyReport(
            policy=policy,
            matched=evaluated.matches,
            trusted=evaluated.trusted,
            incomplete=evaluated.incomplete,
            findings=sync,
            alerts=alerts,
        )
        lease_reconciler = LeaseReconciler(self.store, view, now, self.audit)
        steps: list[tuple[ReclaimLease, Step]] = []
        for action in policy.actions:
            if isinstance(action, ReclaimLease):
                for step in lease_reconciler.steps(policy, action, evaluated):
                    if scope is not None and key_of(step.record) not in scope:
                        continue
                    self._plan_step(policy, step, report)
                    steps.append((action, step))
        simple = [a for a in policy.actions if not isinstance(a, ReclaimLease)]
        for record in evaluated.matches if simple else ():
            segment = (record["cloud"], record["region"])
            finding_id = (
                sync.ids.get((record["cloud"], record["region"], record["kind"], record["id"]))
                if sync
                else None
            )
            for action in simple:
                plan = action.plan(record)
                if plan is None:
                    continue
                if isinstance(plan, Skip):
                    report.skipped.append((record, plan))
                    continue
                report.candidates.append(
                    Candidate(
                        policy=policy,
                        action=action,
                        record=record,
                        plan=plan,
                        key=idempotency_key(policy.name, action, record, finding_id),
                        finding_id=finding_id,
                        trusted=segment in evaluated.trusted,
                        incomplete=evaluated.incomplete.get(segment, []),
                    )
                )
        gate.decide(policy, report.candidates)
        if execute:
            for lease_action, step in steps:
                if any(c.verdict == "execute" for c in step.candidates):
                    lease_reconciler.begin(policy, lease_action, step)
        # resources where an action failed, or was skipped on the live record (changed
        # since the pass, excluded, gone): their later actions (a step's notice after
        # its mark) do not run on the strength of the stale record -> reason
        failed: dict[tuple[str, str, str], str] = {}
        for candidate in report.candidates:
            place = (candidate.record["cloud"], candidate.record["region"], candidate.record["id"])
            if candidate.verdict == "awaiting-approval" and candidate.action_id is None:
                queue_for_approval(self.store, self.audit, candidate, self.settings.actor, now)
            elif candidate.verdict == "execute":
                if place in failed:
                    candidate.verdict = "blocked"
                    candidate.reason = f"an earlier action on this resource {failed[place]}"
                    continue
                why = candidate.guard() if candidate.guard else ""
                if why:
                    candidate.verdict, candidate.reason = "deferred", why
                    continue
                executor.run(candidate)
                if candidate.verdict in ("failed", "unverified"):
                    failed[place] = "failed"
                elif candidate.verdict == "skipped":
                    failed[place] = f"was skipped ({candidate.reason})"
        if execute:
            for lease_action, step in steps:
                lease_reconciler.record(policy, lease_action, step)
        report.seconds = time.perf_counter() - started
        log.info(
            "policy %s: %d matched, %d actions",
            policy.name,
            len(evaluated.matches),
            len(report.candidates),
        )
        return report

    def _lease_guard(self, step: Step) -> Callable[[], str] | None:
        """For a step of an existing lease: a check, just before each of its actions,
        that the lease was not extended since this run read it (an owner's extension
        wins over a step planned on the old deadline)."""
        row = step.row
        if row is None or step.name in ("cancel", "gone"):
            return None
        lease_id, seen = row["id"], row["next_at"]

        def guard() -> str:
            now_due = leases.next_at_of(self.store, lease_id)
            if now_due != seen:
                return (
                    f"the lease was extended while this run went on (next step now due "
                    f"{now_due}); planned again at the next run"
                )
            return ""

        return guard

    def _plan_step(self, policy: Policy, step: Step, report: PolicyReport) -> None:
        """Candidates for the actions of one lease step."""
        record = step.record
        segment = (record["cloud"], record["region"])
        # marks, reminders and their notices re-check on the live record that the
        # resource is still unused (the final step's release/delete check it themselves;
        # its notice reports what was done, to a resource now gone)
        unused = (
            UNUSED_FIELDS.get(record["kind"], {})
            if step.name in ("mark", "remind", "refresh")
            else {}
        )
        for action in step.actions:
            plan = action.plan(record)
            if plan is None:
                continue
            if isinstance(plan, Skip):
                report.skipped.append((record, plan))
                continue
            if unused:
                plan = replace(plan, expects={**unused, **plan.expects})
            candidate = Candidate(
                policy=policy,
                action=action,
                record=record,
                plan=plan,
                key=idempotency_key(
                    policy.name,
                    action,
                    record,
                    None,
                    step=f"lifecycle:{step.anchor}:{step.name}:{step.reminder or ''}",
                ),
                finding_id=None,
                trusted=segment in report.trusted,
                incomplete=report.incomplete.get(segment, []),
                values=step.values,
                guard=self._lease_guard(step),
            )
            step.candidates.append(candidate)
            report.candidates.append(candidate)
