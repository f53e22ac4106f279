"""Reconciling reclamation leases: for each resource a policy with a lease action matches,
which step is due now (mark, remind, stop, delete, cancel), as concrete actions that go
through the same safety gate and audit log as any other; and recording the step once
all its actions are done.

Level-triggered: the lease's state is in the store, each run compares it with the
fleet and the clock, and a step whose actions did not all complete is planned again at
the next run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stackfleet.actions.base import Action
from stackfleet.actions.leases import FINAL_VERB, ReclaimLease
from stackfleet.core.times import format_duration, parse_time
from stackfleet.engine.evaluate import PolicyMatches
from stackfleet.engine.gate import Candidate
from stackfleet.policy.filters import compile_all
from stackfleet.policy.schema import Policy
from stackfleet.policy.view import FleetView, Record
from stackfleet.store import leases
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store


@dataclass
class Step:
    """One due step of one resource's lease."""

    name: str
    record: Record
    actions: list[Action]
    row: dict[str, Any] | None
    # when the lease started (its identity in idempotency keys)
    anchor: str
    # the next deadline after this step (None: the lease ends)
    next_at: datetime | None = None
    stage: str | None = None
    reminder: str | None = None
    # the text the mark says after this step
    mark_text: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)


def _verb(kind: str, stage: str) -> str:
    if kind == "server" and stage == "marked":
        return "stopped"
    return FINAL_VERB.get(kind, "deleted")


class LeaseReconciler:
    """Plans and records lease steps for one run."""

    def __init__(self, store: Store, view: FleetView, now: datetime, audit: AuditLog) -> None:
        self.store = store
        self.view = view
        self.now = now
        self.audit = audit

    def steps(self, policy: Policy, action: ReclaimLease, evaluated: PolicyMatches) -> list[Step]:
        """The due steps of every lease of `policy` (trusted cloud regions only)."""
        kind = policy.kind
        trusted = evaluated.trusted
        rows = leases.active(self.store, policy.name)
        cancel_filters = action.nested.get("cancel_when") or []
        in_use = compile_all(cancel_filters, self.view) if cancel_filters else None
        matched = {
            (r["cloud"], r["region"], kind, r["id"]): r
            for r in evaluated.matches
            if (r["cloud"], r["region"]) in trusted
        }
        # Resources this policy already reclaimed: until the next pass the inventory still
        # lists them, and their ids never come back, so no new lease starts for them.
        reclaimed = {
            (r["cloud"], r["region"], r["kind"], r["resource_id"])
            for r in leases.list_leases(self.store, stage="done", policy=policy.name, limit=None)
        }
        # mark steps begun by an earlier run that did not see them through (a crash, a
        # notice that failed): carried on from the same start, with the same keys, so
        # an action that took is not repeated and one in doubt is not sent again
        begun = leases.pending(self.store, policy.name)
        steps: list[Step] = []
        for key, record in matched.items():
            if key in rows or key in reclaimed or (in_use is not None and in_use(record)):
                continue
            row = begun.pop(key, None)
            started = (parse_time(row["started_at"]) if row else None) or self.now
            deadline = started + action.stop_after
            steps.append(self._mark_step(policy, action, record, row, deadline, "marked", started))
        live = {(r["cloud"], r["region"], kind, r["id"]): r for r in self.view.records(kind)}
        for key, row in begun.items():
            # no longer matched (or in use): take back whatever mark the begun step set
            if (key[0], key[1]) in trusted:
                steps.append(self._abandon_step(policy, action, live.get(key), key, row))
        for key, row in rows.items():
            if (key[0], key[1]) not in trusted:
                continue
            current = live.get(key)
            anchor = row["started_at"] or ""
            if current is None:
                steps.append(
                    Step(
                        "gone",
                        {"id": key[3], "kind": kind, "cloud": key[0], "region": key[1]},
                        [],
                        row,
                        anchor,
                        stage="done",
                    )
                )
                continue
            record = current
            stopped_by_us = row["stage"] == "stopped"
            used_again = (
                (stopped_by_us and kind == "server" and record.get("status") != "SHUTOFF")
                or (in_use is not None and in_use(record))
                or (in_use is None and not stopped_by_us and key not in matched)
            )
            if used_again:
                steps.append(self._cancel_step(policy, action, record, row, stopped_by_us))
                continue
            steps.extend(self._due(policy, action, record, row))
        return steps

    def _values(
        self, policy: Policy, record: Record, verb: str, deadline: datetime | None
    ) -> dict[str, Any]:
        return {
            "policy": policy.name,
            "kind": record["kind"],
            "verb": verb,
            "deadline": f"{deadline:%Y-%m-%d %H:%M} UTC" if deadline else "",
            "extend": f"stackfleet lease extend {record['id']} --days N",
        }

    def _mark_step(
        self,
        policy: Policy,
        action: ReclaimLease,
        record: Record,
        row: dict[str, Any] | None,
        deadline: datetime,
        stage: str,
        started: datetime,
        name: str = "mark",
        notify: bool = True,
    ) -> Step:
        kind = record["kind"]
        verb = _verb(kind, stage)
        values = self._values(policy, record, verb, deadline)
        text = action.mark_text(f"{kind} will be {verb}", deadline, policy.name)
        actions = action.mark(kind, text, deadline)
        if notify:
            actions.append(
                action.notice(
                    "[StackFleet] {kind} {name} will be {verb} after {deadline}",
                    "StackFleet policy {policy} found {kind} {name} ({id}) in {cloud}/{region} "
                    "unused. It will be {verb} after {deadline} unless it is used again. "
                    "To keep it longer: {extend}",
                )
            )
        return Step(
            name,
            record,
            actions,
            row,
            started.isoformat(),
            next_at=deadline,
            stage=stage,
            values=values,
            mark_text=text,
        )

    def _cancel_step(
        self,
        policy: Policy,
        action: ReclaimLease,
        record: Record,
        row: dict[str, Any],
        stopped: bool,
    ) -> Step:
        actions = action.unmark(record["kind"], locked_by_us=stopped and action.lock)
        actions.append(
            action.notice(
                "[StackFleet] {kind} {name} is in use again: reclamation cancelled",
                "{kind} {name} ({id}) is in use again; StackFleet policy {policy} cancelled "
                "its reclamation and removed the mark.",
            )
        )
        return Step(
            "cancel",
            record,
            actions,
            row,
            row["started_at"] or "",
            stage="cancelled",
            values=self._values(policy, record, "", None),
        )

    def _abandon_step(
        self,
        policy: Policy,
        action: ReclaimLease,
        record: Record | None,
        key: tuple[str, str, str, str],
        row: dict[str, Any],
    ) -> Step:
        """End a begun mark step whose resource no longer qualifies: remove the mark
        (no notice: the owner may never have heard of it); nothing to do when it is gone."""
        anchor = row["started_at"] or ""
        if record is None:
            gone = {"id": key[3], "kind": key[2], "cloud": key[0], "region": key[1]}
            return Step("gone", gone, [], row, anchor, stage="cancelled")
        return Step(
            "cancel",
            record,
            action.unmark(record["kind"], locked_by_us=False),
            row,
            anchor,
            stage="cancelled",
            values=self._values(policy, record, "", None),
        )

    def begin(self, policy: Policy, action: ReclaimLease, step: Step) -> None:
        """Record that a new lease's mark step is about to act (stage `pending`),
        before any of its actions runs: its start is kept, so the next run plans the
        same step with the same idempotency keys whatever this run completes."""
        if step.row is not None or step.name != "mark":
            return
        record = step.record
        started = parse_time(step.anchor) or self.now
        lease_id = leases.create(
            self.store,
            policy=policy.name,
            cloud=record["cloud"],
            region=record["region"],
            kind=record["kind"],
            resource_id=record["id"],
            resource_name=_text(record.get("name")),
            project_id=_text(record.get("project_id")),
            stage=leases.PENDING,
            started_at=started,
            next_at=step.next_at,
            updated_at=self.now,
            extended_seconds=0.0,
            max_extension_seconds=action.max_extension.total_seconds(),
            reminded=[],
            history=[],
        )
        step.row = leases.get(self.store, lease_id)

    def _due(
        self, policy: Policy, action: ReclaimLease, record: Record, row: dict[str, Any]
    ) -> list[Step]:
        kind = record["kind"]
        next_at = parse_time(row["next_at"]) or self.now
        anchor = row["started_at"] or ""
        stage = row["stage"]
        if self.now >= next_at:
            if stage == "marked" and kind == "server":
                deadline = self.now + action.delete_after
                step = self._mark_step(
                    policy,
                    action,
                    record,
                    row,
                    deadline,
                    "stopped",
                    parse_time(anchor) or self.now,
                    name="stop",
                    notify=False,
                )
                step.actions = action.stop() + step.actions
                step.actions.append(
                    action.notice(
                        "[StackFleet] {kind} {name} was stopped; "
                        "it will be deleted after {deadline}",
                        "StackFleet policy {policy} stopped{locked} {kind} {name} ({id}). "
                        "It will be deleted after {deadline}. To keep it: {extend}",
                    )
                )
                step.values["locked"] = " and locked" if action.lock else ""
                return [step]
            verb = FINAL_VERB.get(kind, "deleted")
            actions = [
                *action.final(kind),
                action.notice(
                    "[StackFleet] {kind} {name} was {verb}",
                    "StackFleet policy {policy} {verb} {kind} {name} ({id}) after its grace "
                    "period."
                    + (
                        " A snapshot was kept."
                        if action.snapshot and kind in ("server", "volume")
                        else ""
                    ),
                ),
            ]
            return [
                Step(
                    "delete",
                    record,
                    actions,
                    row,
                    anchor,
                    stage="done",
                    values=self._values(policy, record, verb, None),
                )
            ]
        steps: list[Step] = []
        open_windows = [r for r in action.remind_before if next_at - r <= self.now]
        if open_windows:
            window = max(open_windows)
            tag = f"{stage}:{format_duration(window)}"
            if tag not in row["reminded"]:
                verb = _verb(kind, stage)
                steps.append(
                    Step(
                        "remind",
                        record,
                        [
                            action.notice(
                                "[StackFleet] reminder: {kind} {name} will be {verb} "
                                "after {deadline}",
                                "Reminder: {kind} {name} ({id}) will be {verb} after {deadline} "
                                "by StackFleet policy {policy}. To keep it: {extend}",
                            )
                        ],
                        row,
                        anchor,
                        reminder=tag,
                        values=self._values(policy, record, verb, next_at),
                    )
                )
        # keep the mark saying the current deadline (it moves when the owner extends)
        refresh = self._mark_step(
            policy,
            action,
            record,
            row,
            next_at,
            stage,
            parse_time(anchor) or self.now,
            name="refresh",
            notify=False,
        )
        if refresh.mark_text != _last_mark(row):
            refresh.stage = None
            steps.append(refresh)
        return steps

    def record(self, policy: Policy, action: ReclaimLease, step: Step) -> None:
        """Record a step whose actions all took (or that needed none). An action that
        failed, was skipped, is unverified (a notice that reached nobody) or is still
        running holds the step back: it is planned again at the next run."""
        if not all(c.took for c in step.candidates):
            row = step.row
            if (
                row is not None
                and row["stage"] == leases.PENDING
                and not any(c.verdict in _MAY_HAVE_ACTED for c in step.candidates)
            ):
                # the mark step began and nothing of it acted (all skipped on the live
                # record, blocked, excluded): no lease started
                leases.delete(self.store, row["id"])
            return
        record = step.record
        history_entry: dict[str, Any] = {"step": step.name, "at": self.now.isoformat()}
        if step.mark_text:
            history_entry["mark"] = step.mark_text
        if step.row is None:
            if step.name != "mark":
                return
            lease_id = leases.create(
                self.store,
                policy=policy.name,
                cloud=record["cloud"],
                region=record["region"],
                kind=record["kind"],
                resource_id=record["id"],
                resource_name=_text(record.get("name")),
                project_id=_text(record.get("project_id")),
                stage="marked",
                started_at=parse_time(step.anchor) or self.now,
                next_at=step.next_at,
                updated_at=self.now,
                extended_seconds=0.0,
                max_extension_seconds=action.max_extension.total_seconds(),
                reminded=[],
                history=[history_entry],
            )
        else:
            lease_id = step.row["id"]
            # on the row as it is now (locked), not as this run read it: an owner's
            # extension made meanwhile is kept
            leases.record_step(
                self.store,
                lease_id,
                self.now,
                history_entry=(
                    history_entry if step.stage is not None or step.name == "refresh" else None
                ),
                reminder=step.reminder,
                stage=step.stage,
                next_at=step.next_at,
            )
        self.audit.append(
            f"lifecycle.{step.name}",
            {
                "lease_id": lease_id,
                "stage": step.stage,
                "next_at": step.next_at.isoformat() if step.next_at else None,
                "actions": [c.action_id for c in step.candidates],
            },
            policy=policy.name,
            target=f"{record['cloud']}/{record['region']}/{record['kind']}/{record['id']}",
        )


# verdicts of an action that took, may have taken, or is under way
_MAY_HAVE_ACTED = frozenset({"succeeded", "unverified", "failed", "done", "deferred"})


def _last_mark(row: dict[str, Any]) -> str | None:
    """What the mark on the resource says, by the lease's history."""
    for entry in reversed(row["history"] or []):
        if entry.get("step") == "extended":
            return None  # the deadline moved: the mark must say so
        if entry.get("mark"):
            return str(entry["mark"])
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:255]
