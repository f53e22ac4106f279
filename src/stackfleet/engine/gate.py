"""The safety gate: decides, for every planned action of a policy run, whether it may
run now. In order:

1. idempotency — an action already carried out (same key) is not repeated; one that
   was rejected stays rejected; one waiting for approval keeps waiting;
2. exclusions — the exclusion tag (or metadata key) and excluded projects;
3. incomplete passes — no destructive action on a cloud region whose newest listing of
   a kind the policy reads was incomplete;
4. blast radius — no more destructive actions on a kind in one run than `max_percent`
   of that kind's resources in the cloud region; a policy over the cap acts on none
   of them (a filter matching too much is more likely a mistake than a mess);
5. dry-run — without --execute everything that passed is only planned;
6. approvals — `require_approval` queues the action until `stackfleet approve ID`;
7. rate limits — per policy and overall, per run and over time.

Every decision carries the reason, shown in the run's output and kept in the records."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from stackfleet.actions.base import Action, Plan
from stackfleet.engine.settings import GlobalSafety
from stackfleet.policy.schema import Policy
from stackfleet.policy.view import FleetView, Record, Segment, segment_of
from stackfleet.store import action_records
from stackfleet.store.db import Store
from stackfleet.store.listing import aware

Verdict = Literal[
    "execute",
    "planned",
    "done",
    "excluded",
    "blocked",
    "deferred",
    "awaiting-approval",
    "rejected",
]


@dataclass
class Candidate:
    """One planned action on one resource."""

    policy: Policy
    action: Action
    record: Record
    plan: Plan
    key: str
    finding_id: int | None
    trusted: bool
    incomplete: list[str] = field(default_factory=list)
    # set by the gate
    verdict: Verdict = "planned"
    reason: str = ""
    action_id: int | None = None
    # "approved" when an approval lets it run, else "new"
    origin: str = "new"
    # placeholders for notification templates (lifecycle deadlines)
    values: dict[str, Any] = field(default_factory=dict)
    # checked just before executing: why the action must not run now ("" when it may),
    # e.g. a lifecycle step whose lease was extended while this run went on
    guard: Callable[[], str] | None = None
    # the status an earlier run recorded for this key (verdict "done"): only
    # "succeeded" means the action is known to have taken
    recorded: str | None = None

    @property
    def took(self) -> bool:
        """The action is known to have taken effect, in this run or an earlier one."""
        return self.verdict == "succeeded" or (
            self.verdict == "done" and self.recorded == "succeeded"
        )

    @property
    def segment(self) -> Segment:
        return segment_of(self.record)


def idempotency_key(
    policy: str, action: Action, record: Record, finding_id: int | None, step: str = ""
) -> str:
    """Stable per (finding, action, options): repeating a run does not repeat an action,
    while a resource that matches again later (a new finding) may be acted on again."""
    anchor = (
        f"finding:{finding_id}"
        if finding_id is not None
        else f"{record['cloud']}/{record['region']}/{record['kind']}/{record['id']}"
    )
    options = json.dumps(action.model_dump(mode="json"), sort_keys=True, default=str)
    text = f"{policy}\n{anchor}\n{options}\n{step}"
    return hashlib.sha256(text.encode()).hexdigest()[:48]


class SafetyGate:
    """Decides candidates policy by policy; keeps counts across the whole run."""

    def __init__(
        self,
        store: Store,
        settings: GlobalSafety,
        view: FleetView,
        now: datetime,
        execute: bool,
    ) -> None:
        self.store = store
        self.settings = settings
        self.view = view
        self.now = now
        self.execute = execute
        self.run_executed = 0
        # (cloud, region, kind) -> resources destructively acted on in this run
        self.run_destructive: Counter[tuple[str, str, str]] = Counter()
        self._project_names: dict[tuple[str, str], str] | None = None

    def decide(self, policy: Policy, candidates: list[Candidate]) -> None:
        """Set verdict and reason on each candidate of one policy."""
        open_: list[Candidate] = []
        for candidate in candidates:
            if self._settled(candidate):
                continue
            reason = self._excluded(policy, candidate.record)
            if reason:
                candidate.verdict, candidate.reason = "excluded", reason
                continue
            if candidate.plan.destructive and not candidate.trusted:
                candidate.verdict = "blocked"
                cloud, region = candidate.segment
                candidate.reason = (
                    "the newest pass was incomplete for "
                    f"{', '.join(candidate.incomplete)} in {cloud}/{region}"
                )
                continue
            open_.append(candidate)
        self._blast_radius(policy, open_)
        open_ = [c for c in open_ if c.verdict == "planned"]
        if not self.execute:
            for candidate in open_:
                candidate.reason = "dry-run: would run with --execute"
            return
        runnable: list[Candidate] = []
        for candidate in open_:
            if policy.spec.safety.require_approval and candidate.origin != "approved":
                candidate.verdict = "awaiting-approval"
                candidate.reason = "the policy requires approval: stackfleet approve ID"
                continue
            runnable.append(candidate)
        self._rate_limits(policy, runnable)

    def _settled(self, candidate: Candidate) -> bool:
        """Apply what the records say about this key already; True when decided."""
        existing = action_records.by_key(self.store, candidate.key)
        if existing is None:
            return False
        candidate.action_id = existing["id"]
        status = existing["status"]
        if status == "running":
            stamp = existing["executed_at"] or existing["updated_at"]
            started = aware(datetime.fromisoformat(stamp)) if stamp else None
            if started is not None and self.now - started < self.settings.running_stale_after:
                # another run is carrying it out now: neither repeat it nor count it done
                candidate.verdict = "deferred"
                candidate.reason = (
                    f"in progress in another run since {started:%Y-%m-%d %H:%M:%S} UTC "
                    f"(action {existing['id']})"
                )
                return True
            # the run that started it ended without recording an outcome (a crash):
            # it is not done; record it failed (when executing: a dry-run changes no
            # record), so that it may be tried again (the re-read before acting finds
            # out what it did)
            if not self.execute:
                return False
            action_records.set_status(
                self.store,
                existing["id"],
                self.now,
                status="failed",
                error="interrupted: the run carrying it out ended without an outcome",
            )
            return False
        if status in ("succeeded", "unverified"):
            candidate.verdict = "done"
            candidate.recorded = status
            candidate.reason = f"already carried out (action {existing['id']}, {status})"
            return True
        if status == "rejected":
            candidate.verdict = "rejected"
            candidate.reason = f"rejected by {existing['approved_by']} (action {existing['id']})"
            return True
        if status == "awaiting-approval":
            candidate.verdict = "awaiting-approval"
            candidate.reason = f"waiting for approval: stackfleet approve {existing['id']}"
            return True
        if status == "approved":
            candidate.origin = "approved"
        # failed or skipped earlier: may be tried again
        return False

    def _excluded(self, policy: Policy, record: Record) -> str:
        tag = policy.spec.safety.exclude_tag or self.settings.exclude_tag
        if tag in (record.get("tags") or ()):
            return f"excluded by tag {tag!r}"
        metadata = record.get("metadata")
        if isinstance(metadata, dict) and tag in metadata:
            return f"excluded by metadata key {tag!r}"
        excluded = policy.spec.safety.exclude_projects
        if excluded:
            project = record.get("project_id") or ""
            name = self._project_name(record["cloud"], project)
            if project in excluded or (name and name in excluded):
                return f"project {name or project} is excluded"
        return ""

    def _project_name(self, cloud: str, project_id: str) -> str:
        if self._project_names is None:
            self._project_names = {
                (p["cloud"], p["id"]): p.get("name") or "" for p in self.view.records("project")
            }
        return self._project_names.get((cloud, project_id), "")

    def _blast_radius(self, policy: Policy, candidates: list[Candidate]) -> None:
        percent = policy.spec.safety.max_percent
        if percent is None:
            percent = self.settings.max_percent
        destructive = [c for c in candidates if c.plan.destructive]
        by_place: dict[tuple[str, str, str], set[str]] = {}
        for candidate in destructive:
            place = (*candidate.segment, policy.kind)
            by_place.setdefault(place, set()).add(candidate.record["id"])
        for place, resources in by_place.items():
            total = sum(
                1
                for r in self.view.records(policy.kind)
                if r["cloud"] == place[0] and r["region"] == place[1]
            )
            cap = math.floor(total * percent / 100.0)
            wanted = self.run_destructive[place] + len(resources)
            if wanted > cap:
                for candidate in destructive:
                    if (*candidate.segment, policy.kind) == place:
                        candidate.verdict = "blocked"
                        candidate.reason = (
                            f"blast radius: {len(resources)} of {total} {policy.kind}s in "
                            f"{place[0]}/{place[1]} (plus {self.run_destructive[place]} earlier "
                            f"in this run) exceeds max_percent {percent:g}% (at most {cap})"
                        )
            elif self.execute:
                self.run_destructive[place] += len(resources)

    def _rate_limits(self, policy: Policy, candidates: list[Candidate]) -> None:
        safety = policy.spec.safety
        per_policy = (
            safety.max_actions
            if safety.max_actions is not None
            else self.settings.max_actions_per_policy
        )
        policy_budget: float = per_policy
        if safety.rate_limit is not None:
            used = action_records.executed_since(
                self.store, self.now - safety.rate_limit.per, policy.name
            )
            policy_budget = min(policy_budget, safety.rate_limit.count - used)
        global_budget: float = self.settings.max_actions_per_run - self.run_executed
        if self.settings.rate_limit is not None:
            used = action_records.executed_since(
                self.store, self.now - self.settings.rate_limit.per
            )
            # actions of this run are in the records already once executed
            global_budget = min(global_budget, self.settings.rate_limit.count - used)
        taken = 0
        for candidate in candidates:
            if taken >= policy_budget:
                candidate.verdict = "deferred"
                candidate.reason = "policy rate limit reached; deferred to a later run"
            elif taken >= global_budget:
                candidate.verdict = "deferred"
                candidate.reason = "global rate limit reached; deferred to a later run"
            else:
                candidate.verdict = "execute"
                candidate.reason = (
                    "approved" if candidate.origin == "approved" else "passed the safety gate"
                )
                taken += 1
        self.run_executed += taken
