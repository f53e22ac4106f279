"""Carrying out an approved provisioning action (`stackfleet approve ID`, the API's
approve): a create, delete or verb that a workload's apply or verb queued.

The action is rebuilt from its record (type and options, the project it acts as) and
run by the executor with the plan that was approved: the member is re-read first (still
labelled, not excluded, as the plan expects), with audit entries before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stackfleet.actions.base import Change, Plan
from stackfleet.core.errors import ConflictError
from stackfleet.engine.gate import Candidate
from stackfleet.engine.settings import Settings
from stackfleet.provision import ironic, nova, zun
from stackfleet.provision.apply import Provisioner, member_policy
from stackfleet.store import action_records
from stackfleet.store.db import Store

POLICY_PREFIX = "provision/"

# action type -> class, for every provisioning action that can wait for approval
_CLASSES: list[type[nova.MemberAction]] = [
    nova.CreateMember,
    *nova.VERBS.values(),
    ironic.CreateNodeMember,
    *ironic.VERBS.values(),
    zun.CreateContainerMember,
    *zun.VERBS.values(),
]
ACTIONS: dict[str, type[nova.MemberAction]] = {
    str(cls.model_fields["type"].default): cls for cls in _CLASSES
}


@dataclass
class Carried:
    """What carrying out an approved action did."""

    action_id: int
    status: str  # succeeded | failed | skipped | unverified | done
    message: str
    result: dict[str, Any]


def is_provisioning(row: dict[str, Any]) -> bool:
    return str(row.get("policy") or "").startswith(POLICY_PREFIX) and row.get("action") in ACTIONS


def carry_out(
    store: Store,
    action_id: int,
    settings: Settings | None = None,
    config_files: list[str] | None = None,
    actor: str = "stackfleet-approve",
) -> Carried:
    """Run an approved provisioning action now; ConflictError when it is not approved."""
    row = action_records.get(store, action_id)
    if not is_provisioning(row):
        raise ConflictError(f"action {action_id} is not a provisioning action")
    if row["status"] != "approved":
        raise ConflictError(f"action {action_id} is {row['status']}, not approved")
    stored = row["plan"] or {}
    options = dict(stored.get("options") or {})
    action = ACTIONS[row["action"]].model_validate({"type": row["action"], **options})
    provisioner = Provisioner(store, settings, config_files, actor=actor)
    try:
        scope = provisioner.scope_for(row["cloud"], row["region"], action.project_id or None)
        now = datetime.now(UTC)
        record = {
            "cloud": row["cloud"],
            "region": row["region"],
            "kind": row["kind"],
            "id": row["resource_id"],
            "name": row["resource_name"],
            "project_id": scope.project_id,
            "tags": [],
            "metadata": {},
        }
        plan = Plan(
            action=row["action"],
            summary=str(stored.get("summary") or ""),
            changes=tuple(_changes(stored.get("diff") or [])),
            destructive=bool(row["destructive"]),
            options=options,
            expects=dict(stored.get("expects") or {}),
        )
        candidate = Candidate(
            policy=member_policy(action.workload, True),
            action=action,
            record=record,
            plan=plan,
            key=row["idempotency_key"],
            finding_id=None,
            trusted=True,
            verdict="execute",
            reason="approved",
            action_id=action_id,
            origin="approved",
        )
        _gate, executor = provisioner.machinery(scope, True, now, 600.0)
        executor.run(candidate)
        after = action_records.get(store, action_id)
        return Carried(action_id, candidate.verdict, candidate.reason, after.get("result") or {})
    finally:
        provisioner.close()


def _changes(diff: list[str]) -> list[Change]:
    """The approved plan's diff lines back as changes (shown again in the audit)."""
    changes: list[Change] = []
    for line in map(str, diff):
        name, _, value = line[1:].partition(": ")
        if line.startswith("-"):
            changes.append(Change(name, value, None))
        elif line.startswith("+"):
            changes.append(Change(name, None, value))
    return changes
