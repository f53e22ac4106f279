"""Carrying out one gated action: claim its record, re-read the resource, write the
audit entry before, execute, verify, write the audit entry after.

The resource is read back from the cloud just before acting; when it is gone, or no
longer in the state the plan assumed (a SHUTOFF server started again, a floating IP
associated since the pass), the action is skipped, not forced."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stackfleet.actions.base import (
    ActionError,
    FailedInService,
    Outcome,
    Plan,
    Stale,
    read_live,
)
from stackfleet.actions.notify import Notifier
from stackfleet.core.times import parse_time
from stackfleet.engine.gate import Candidate
from stackfleet.sources.openstack.connection import CloudTarget, close_targets, connect
from stackfleet.store import action_records
from stackfleet.store.action_records import DuplicateAction
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

# actions whose verification waits until the service answers 404 for the resource
GONE_AFTER = frozenset({"delete", "release"})


class Connections:
    """openstacksdk connections by (cloud, region), made on first use from clouds.yaml
    (the same cloud names the inventory records carry) and kept: one long-lived
    connection per cloud region (its session renews the token by itself)."""

    def __init__(self, config_files: list[str] | None = None) -> None:
        self.config_files = config_files
        self._cache: dict[tuple[str, str], CloudTarget] = {}
        self._lock = threading.Lock()

    def connection(self, cloud: str, region: str) -> Any:
        with self._lock:
            key = (cloud, region)
            if key not in self._cache:
                targets = connect(cloud, region or None, config_files=self.config_files)
                # without a region every region is connected: keep the first, close
                # the others instead of leaving their sockets open
                close_targets(targets[1:])
                self._cache[key] = targets[0]
            return self._cache[key].conn

    def target(self, cloud: str, region: str) -> CloudTarget:
        """The connection target of (cloud, region): its connection and what the
        sources need to read through it."""
        self.connection(cloud, region)
        with self._lock:
            return self._cache[(cloud, region)]

    def close(self) -> None:
        """Close every connection made so far."""
        with self._lock:
            close_targets(self._cache.values())
            self._cache.clear()


@dataclass
class RunContext:
    """The ActionContext of one run."""

    now: datetime
    connections: Connections
    notifier: Notifier
    verify_timeout: float = 300.0
    poll_interval: float = 2.0
    template_values: dict[str, Any] = field(default_factory=dict)
    # set by the executor: the key of the action executing (notices send it along)
    idempotency_key: str = ""
    # set by the executor while an action executes: reads the resource again and says
    # why it must not be acted on now ("" when it may); see actions.base.still_as_planned
    recheck: Callable[[], str] | None = None
    # set by the executor while an action executes: the live state its newest re-read
    # checked (a Neutron deletion sends its revision_number back as If-Match)
    observed: dict[str, Any] | None = None

    def connection(self, cloud: str, region: str) -> Any:
        return self.connections.connection(cloud, region)


def target_of(record: dict[str, Any]) -> str:
    return f"{record['cloud']}/{record['region']}/{record['kind']}/{record['id']}"


def mismatch(expects: dict[str, Any], observed: dict[str, Any]) -> str:
    """How the live state differs from what the plan assumed ("" when it does not). A
    field the plan expects that the live record does not have is a difference too: what
    cannot be checked is not assumed to hold."""
    for name, wanted in expects.items():
        if name not in observed:
            return (
                f"the live record has no {name!r} to check (the plan expects {wanted!r}); "
                "not acting on what cannot be checked"
            )
        got = observed[name]
        if _normal(got) != _normal(wanted):
            return f"changed since the pass: {name} is now {got!r} (the plan assumed {wanted!r})"
    return ""


def excluded_live(observed: dict[str, Any], tag: str) -> str:
    """Why the live record is excluded (the exclusion tag, or a metadata key of that
    name, added since the pass), or ""."""
    tags = observed.get("tags") or ()
    if any(t == tag or str(t).startswith(f"{tag}=") for t in tags):
        return f"excluded by tag {tag!r} (on the live record)"
    metadata = observed.get("metadata")
    if isinstance(metadata, dict) and tag in metadata:
        return f"excluded by metadata key {tag!r} (on the live record)"
    return ""


# fields saying when a resource last changed, in the records and the live readers
VERSION_FIELDS = ("updated", "updated_at")


def older_than_pass(record: dict[str, Any], observed: dict[str, Any]) -> str:
    """Why the live answer cannot be believed ("" when it may): it says the resource
    last changed before the pass saw it change — an answer older than the plan, from a
    lagging replica or cache. (A stale answer newer than the pass cannot be told from a
    fresh one by reading: see docs/security.md, "Stale reads".)"""
    for name in VERSION_FIELDS:
        planned, live = parse_time(record.get(name)), parse_time(observed.get(name))
        if planned is not None and live is not None and live < planned:
            return (
                f"the re-read is older than the pass ({name} {observed.get(name)} before "
                f"{record.get(name)}): a stale answer; not acting on it"
            )
    return ""


def precheck(
    plan: Plan, observed: dict[str, Any], exclude_tag: str, record: dict[str, Any] | None = None
) -> str:
    """Why an action must not run on the live state `observed` ("" when it may): an
    answer older than the pass's record, the exclusion tag or metadata key on the live
    record, or a field the plan expects that changed or is missing."""
    return (
        (older_than_pass(record, observed) if record is not None else "")
        or excluded_live(observed, exclude_tag)
        or mismatch(plan.expects, observed)
    )


def _normal(value: Any) -> Any:
    if value in ("", [], {}):
        return None
    return value


class Executor:
    """Executes candidates the gate let through, with audit entries before and after."""

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        ctx: RunContext,
        actor: str,
        exclude_tag: str = "stackfleet-exclude",
    ) -> None:
        self.store = store
        self.audit = audit
        self.ctx = ctx
        self.actor = actor
        self.exclude_tag = exclude_tag

    def run(self, candidate: Candidate) -> None:
        """Execute one candidate; sets its verdict to the outcome (succeeded, failed,
        unverified, skipped) and its reason.

        Whatever goes wrong while acting on one resource (an ActionError from the cloud,
        or any other exception: a bug, a header that cannot be encoded, a broken
        connection) ends this action as `failed` with the error and an `action.failed`
        audit entry, never left `running`, and the run goes on with the next action. An
        interrupt (KeyboardInterrupt, SystemExit) is recorded the same way, then
        re-raised."""
        record = candidate.record
        self.ctx.template_values = {"policy": candidate.policy.name, **candidate.values}
        self.ctx.idempotency_key = candidate.key
        if not self._claim(candidate):
            return
        stage = ["observe"]
        try:
            self._run_claimed(candidate, record, stage)
        except Exception as exc:  # noqa: BLE001 - one action's failure must not end the run
            self._fail(candidate, stage[0], exc)
        except BaseException as exc:
            self._fail(candidate, stage[0], exc)
            raise

    def _fail(self, candidate: Candidate, stage: str, exc: BaseException) -> None:
        error = str(exc) if isinstance(exc, ActionError) else f"{type(exc).__name__}: {exc}"
        if stage == "observe":
            reason = f"could not read the resource: {error}"
        elif stage == "verify" and not isinstance(exc, FailedInService):
            reason = f"verifying failed: {error}"
        else:
            reason = error
        if not isinstance(exc, ActionError):
            log.error(
                "%s on %s failed at %s",
                candidate.plan.action,
                target_of(candidate.record),
                stage,
                exc_info=exc,
            )
        self._finish(candidate, "failed", reason, {})
        self._audit(
            "action.failed",
            candidate,
            {"action": candidate.plan.action, "error": error, "stage": stage},
        )

    def _run_claimed(self, candidate: Candidate, record: dict[str, Any], stage: list[str]) -> None:
        plan = candidate.plan
        action = candidate.action
        observed = action.observe(self.ctx, record)
        if observed is not None and any(name not in observed for name in plan.expects):
            # the action reads nothing itself (notify) or less than the plan expects:
            # the kind's own live reader fills in the rest
            live = read_live(self.ctx, record)
            observed = None if live is None else {**live, **observed}
        if observed is None:
            self._skip(candidate, "the resource is gone since the pass", {})
            return
        changed = precheck(plan, observed, self._exclude_tag(candidate), record)
        if changed:
            self._skip(candidate, changed, observed)
            return
        stage[0] = "execute"
        self._audit(
            "action.started",
            candidate,
            {
                "action": plan.action,
                "summary": plan.summary,
                "diff": plan.diff_lines(),
                "options": plan.options,
                "idempotency_key": candidate.key,
                "before": observed,
                "expects": plan.expects,
            },
        )

        def recheck() -> str:
            """Read the resource again (after a pre-delete snapshot or backup) and say
            why it must not be acted on now ("" when it may)."""
            again = action.observe(self.ctx, record)
            if again is not None and any(name not in again for name in plan.expects):
                live = read_live(self.ctx, record)
                again = None if live is None else {**live, **again}
            if again is None:
                return "the resource is gone"
            why = precheck(plan, again, self._exclude_tag(candidate), record)
            if not why:
                self.ctx.observed = again
            return why

        self.ctx.recheck = recheck
        self.ctx.observed = observed
        try:
            result = action.execute(self.ctx, record)
        except Stale as exc:
            self._finish(candidate, "skipped", f"changed before acting: {exc}", exc.result)
            self._audit(
                "action.skipped",
                candidate,
                {"action": plan.action, "reason": candidate.reason, "result": exc.result},
            )
            return
        finally:
            self.ctx.recheck = None
            self.ctx.observed = None
        stage[0] = "verify"
        try:
            outcome = action.verify(self.ctx, record, result)
        except FailedInService:
            raise  # failed, not unverified (see run)
        except ActionError as exc:
            outcome = Outcome(verified=False, result=result, message=str(exc))
        outcome.result = outcome.result or result
        status = "succeeded" if outcome.verified else "unverified"
        if outcome.verified and plan.action in GONE_AFTER:
            # the service answers 404 for it now: the next pass must not count it as a
            # shrink of its kind (held: every destructive action on the kind blocked)
            self.store.mark_resource_gone(
                record["cloud"], record["region"], record["kind"], str(record["id"])
            )
        self._finish(candidate, status, outcome.message or plan.summary, outcome.result)
        self._audit(
            "action.completed",
            candidate,
            {
                "action": plan.action,
                "summary": plan.summary,
                "verified": outcome.verified,
                "after": outcome.observed,
                "result": outcome.result,
                "message": outcome.message,
            },
        )

    def _skip(self, candidate: Candidate, reason: str, observed: dict[str, Any]) -> None:
        self._finish(candidate, "skipped", reason, {})
        details: dict[str, Any] = {"action": candidate.plan.action, "reason": reason}
        if observed:
            details["observed"] = observed
        self._audit("action.skipped", candidate, details)

    def _exclude_tag(self, candidate: Candidate) -> str:
        return candidate.policy.spec.safety.exclude_tag or self.exclude_tag

    def _audit(self, event: str, candidate: Candidate, details: dict[str, Any]) -> None:
        self.audit.append(
            event,
            details,
            actor=self.actor,
            policy=candidate.policy.name,
            target=target_of(candidate.record),
            action_id=candidate.action_id,
        )

    def _claim(self, candidate: Candidate) -> bool:
        """Record the action as running; False when another run has it already."""
        record = candidate.record
        now = self.ctx.now
        if candidate.action_id is None:
            try:
                candidate.action_id = action_records.create(
                    self.store,
                    idempotency_key=candidate.key,
                    policy=candidate.policy.name,
                    action=candidate.plan.action,
                    cloud=record["cloud"],
                    region=record["region"],
                    kind=record["kind"],
                    resource_id=record["id"],
                    resource_name=_text(record.get("name")),
                    finding_id=candidate.finding_id,
                    status="running",
                    destructive=candidate.plan.destructive,
                    plan=plan_dict(candidate),
                    created_at=now,
                    updated_at=now,
                    executed_at=now,
                )
                return True
            except DuplicateAction:
                candidate.verdict, candidate.reason = "done", "carried out by another run"
                return False
        existing = action_records.get(self.store, candidate.action_id)
        if not action_records.claim(self.store, candidate.action_id, existing["status"], now):
            candidate.verdict, candidate.reason = "done", "carried out by another run"
            return False
        return True

    def _finish(
        self, candidate: Candidate, status: str, reason: str, result: dict[str, Any]
    ) -> None:
        candidate.verdict = status  # type: ignore[assignment]
        candidate.reason = reason
        assert candidate.action_id is not None
        action_records.set_status(
            self.store,
            candidate.action_id,
            self.ctx.now,
            status=status,
            result=result or None,
            error=reason if status in ("failed", "skipped", "unverified") else None,
        )


def queue_for_approval(
    store: Store, audit: AuditLog, candidate: Candidate, actor: str, now: datetime
) -> None:
    """Put a candidate in the approvals queue (once per idempotency key)."""
    record = candidate.record
    try:
        candidate.action_id = action_records.create(
            store,
            idempotency_key=candidate.key,
            policy=candidate.policy.name,
            action=candidate.plan.action,
            cloud=record["cloud"],
            region=record["region"],
            kind=record["kind"],
            resource_id=record["id"],
            resource_name=_text(record.get("name")),
            finding_id=candidate.finding_id,
            status="awaiting-approval",
            destructive=candidate.plan.destructive,
            plan=plan_dict(candidate),
            created_at=now,
            updated_at=now,
        )
    except DuplicateAction:
        return
    candidate.reason = f"waiting for approval: stackfleet approve {candidate.action_id}"
    audit.append(
        "approval.requested",
        {
            "action": candidate.plan.action,
            "summary": candidate.plan.summary,
            "diff": candidate.plan.diff_lines(),
        },
        actor=actor,
        policy=candidate.policy.name,
        target=target_of(record),
        action_id=candidate.action_id,
    )


def plan_dict(candidate: Candidate) -> dict[str, Any]:
    plan = candidate.plan
    return {
        "action": plan.action,
        "summary": plan.summary,
        "destructive": plan.destructive,
        "options": plan.options,
        "diff": plan.diff_lines(),
        "expects": plan.expects,
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:255]
