"""Policy endpoints: findings, policy validation, the audit log and the approvals
queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from stackfleet.api import auth, rbac
from stackfleet.api.deps import ActorName, OffsetQuery, RowId, get_store
from stackfleet.api.errors import error_responses
from stackfleet.core.errors import NotFoundError
from stackfleet.engine.approved_now import AT_NEXT_RUN, ON_APPROVAL_AT_ONCE, ON_APPROVAL_NEXT_RUN
from stackfleet.policy import PolicyError, load_text
from stackfleet.store import action_records
from stackfleet.store import leases as lease_store
from stackfleet.store.audit import AuditLog, checkpoints_path, target_in_project
from stackfleet.store.findings import get_finding, list_findings

router = APIRouter()

MAX_LIMIT = 1000


class FindingOut(BaseModel):
    """A policy matched a resource."""

    id: int
    policy: str
    status: str = Field(description="open or resolved")
    severity: str
    cloud: str
    region: str
    kind: str
    resource_id: str
    resource_name: str | None
    project_id: str | None
    opened_at: str | None
    last_matched_at: str | None
    resolved_at: str | None
    details: dict[str, Any]


class FindingPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[FindingOut]
    links: dict[str, str | None]


@router.get(
    "/v1/findings", response_model=FindingPage, tags=["policies"], responses=error_responses(400)
)
def findings(
    request: Request,
    status: Annotated[
        str | None, Query(pattern="^(open|resolved)$", description="open or resolved; empty: both.")
    ] = None,
    policy: Annotated[str | None, Query(description="Only this policy.")] = None,
    kind: Annotated[str | None, Query(description="Only this resource kind.")] = None,
    cloud: Annotated[str | None, Query(description="Only this cloud.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: OffsetQuery = 0,
) -> Any:
    """Findings, newest first."""
    items, total = list_findings(
        get_store(request),
        status or None,
        policy or None,
        kind or None,
        cloud or None,
        limit,
        offset,
        project=rbac.scope(request),
    )
    if rbac.scope(request) is not None:
        items = [{**f, "details": rbac.without_hidden_deep(f["kind"], f["details"])} for f in items]
    following = None
    if offset + len(items) < total:
        following = str(request.url.include_query_params(offset=offset + limit))
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": items,
        "links": {"next": following},
    }


@router.get(
    "/v1/findings/{finding_id}",
    response_model=FindingOut,
    tags=["policies"],
    responses=error_responses(404),
)
def finding(request: Request, finding_id: RowId) -> Any:
    """One finding."""
    found = get_finding(get_store(request), finding_id)
    project = rbac.scope(request)
    if project is not None:
        if found.get("project_id") != project:
            raise NotFoundError(f"no finding {finding_id}")
        found["details"] = rbac.without_hidden_deep(found["kind"], found["details"])
    return found


class ValidateRequest(BaseModel):
    """A policy file to check."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The YAML text of a policy file.")
    source: str = Field(default="<request>", description="A name for messages.")


class ProblemOut(BaseModel):
    file: str
    line: int | None
    field: str
    message: str


class ValidatedPolicy(BaseModel):
    name: str
    resource: str
    filters: int
    actions: list[str]
    mode: str


class ValidateResponse(BaseModel):
    valid: bool
    policies: list[ValidatedPolicy]
    problems: list[ProblemOut]


@router.post("/v1/policies/validate", response_model=ValidateResponse, tags=["policies"])
def validate(body: Annotated[ValidateRequest, Body()]) -> Any:
    """Validate a policy file as `stackfleet policy validate` does. Invalid policies are
    an answer, not an error: `valid` is false and `problems` name line and field."""
    try:
        policies = load_text(body.text, body.source)
    except PolicyError as exc:
        return {"valid": False, "policies": [], "problems": [p.__dict__ for p in exc.problems]}
    return {
        "valid": True,
        "problems": [],
        "policies": [
            {
                "name": p.name,
                "resource": p.kind,
                "filters": len(p.filters),
                "actions": [a.type for a in p.actions],
                "mode": p.spec.mode.type,
            }
            for p in policies
        ],
    }


class AuditEntryOut(BaseModel):
    seq: int
    at: str | None
    actor: str
    event: str
    policy: str | None
    target: str | None
    action_id: int | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    total: int
    items: list[AuditEntryOut]


class AuditVerification(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]
    # entries written before the log was keyed (plain SHA-256, accepted as a prefix)
    unkeyed: int = 0
    # checkpoints (from $STACKFLEET_AUDIT_CHECKPOINTS) found consistent with the log
    checkpoints: int = 0


@router.get("/v1/audit", response_model=AuditPage, tags=["audit"])
def audit(
    request: Request,
    event: Annotated[str | None, Query(description="e.g. action.completed")] = None,
    policy: Annotated[str | None, Query()] = None,
    target: Annotated[str | None, Query(description="Part of cloud/region/kind/id.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: OffsetQuery = 0,
) -> Any:
    """Audit entries, newest first."""
    project = rbac.scope(request)
    items, total = AuditLog(get_store(request)).list(
        limit, offset, event, policy, target, project=project
    )
    if project is not None:
        items = [rbac.without_hidden_deep(rbac.kind_of_target(e["target"]), e) for e in items]
    return {"total": total, "items": items}


@router.get("/v1/audit/verify", response_model=AuditVerification, tags=["audit"])
def audit_verify(request: Request) -> Any:
    """Walk the keyed hash chain (and the checkpoints kept outside the database, when
    $STACKFLEET_AUDIT_CHECKPOINTS names them); `ok` is false and `problems` say where
    an entry was edited, deleted or rewritten."""
    return AuditLog(get_store(request)).verify(checkpoints_path()).__dict__


@router.get(
    "/v1/audit/{seq}", response_model=AuditEntryOut, tags=["audit"], responses=error_responses(404)
)
def audit_entry(request: Request, seq: RowId) -> Any:
    """One audit entry."""
    store = get_store(request)
    entry = AuditLog(store).get(seq)
    project = rbac.scope(request)
    if project is not None:
        if not target_in_project(store, entry.get("target"), project):
            raise NotFoundError(f"no audit entry {seq}")
        return rbac.without_hidden_deep(rbac.kind_of_target(entry.get("target")), entry)
    return entry


class ActionOut(BaseModel):
    id: int
    idempotency_key: str
    policy: str
    action: str
    status: str
    destructive: bool
    cloud: str
    region: str
    kind: str
    resource_id: str
    resource_name: str | None
    finding_id: int | None
    plan: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: str | None
    updated_at: str | None
    executed_at: str | None
    approved_by: str | None
    approved_at: str | None
    on_approval: Literal["at-once", "next-run"] = Field(
        ON_APPROVAL_NEXT_RUN,
        description="What approving it does here: at-once (a workload's action; in the "
        "demo, an action of the demo's own packs) or next-run (at its policy's next run "
        "with --execute).",
    )


class ActionPage(BaseModel):
    total: int
    items: list[ActionOut]
    approval_runs: str = Field(
        description="What approving an action does on this server: it runs at its "
        "policy's next run with --execute, or (the demo) at once."
    )


class Decision(BaseModel):
    # An unknown key (say `by` for `actor`) is a 400, not silently ignored.
    model_config = ConfigDict(extra="forbid")

    actor: ActorName = "api"


@router.get(
    "/v1/actions", response_model=ActionPage, tags=["actions"], responses=error_responses(400)
)
def actions(
    request: Request,
    status: Annotated[
        str | None, Query(description="e.g. awaiting-approval, succeeded, failed")
    ] = None,
    policy: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: OffsetQuery = 0,
) -> Any:
    """Action records, newest first (`status=awaiting-approval` is the approvals queue)."""
    project = rbac.scope(request)
    items, total = action_records.list_actions(
        get_store(request), status, policy, limit, offset, project=project
    )
    if project is not None:
        items = [rbac.without_hidden_deep(a["kind"], a) for a in items]
    hook = _carry_out_approved(request)
    return {
        "total": total,
        "items": [_with_on_approval(request, a) for a in items],
        "approval_runs": hook.describe if hook is not None else AT_NEXT_RUN,
    }


def _carry_out_approved(request: Request) -> Any:
    """The demo's CarryOutApproved, when this server acts on approvals at once."""
    return getattr(request.app.state, "carry_out_approved", None)


def _with_on_approval(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    """The action with what approving it does on this server (`on_approval`): the page
    says it per action, since in the demo only the demo's own policies act at once."""
    from stackfleet.provision.approvals import is_provisioning

    hook = _carry_out_approved(request)
    at_once = is_provisioning(row) or (hook is not None and hook.carries_out(row))
    return {**row, "on_approval": ON_APPROVAL_AT_ONCE if at_once else ON_APPROVAL_NEXT_RUN}


def _decide(request: Request, action_id: int, approve: bool, actor: str) -> Any:
    store = get_store(request)
    row = action_records.decide(store, action_id, approve, actor, datetime.now(UTC))
    AuditLog(store).append(
        "approval.granted" if approve else "approval.rejected",
        {"action": row["action"], "summary": (row["plan"] or {}).get("summary")},
        actor=actor,
        policy=row["policy"],
        target=f"{row['cloud']}/{row['region']}/{row['kind']}/{row['resource_id']}",
        action_id=action_id,
    )
    return row


@router.post(
    "/v1/actions/{action_id}/approve",
    response_model=ActionOut,
    tags=["actions"],
    responses=error_responses(400, 404, 409),
)
def approve(request: Request, action_id: RowId, body: Decision | None = None) -> Any:
    """Approve an action waiting for approval; a policy's runs at its next run with
    execute (in `stackfleet demo`: at once, against the simulated cloud), a workload's
    (`provision/...`) is carried out now (the answer shows how it ended)."""
    actor = auth.actor(request, (body or Decision()).actor)
    row = _decide(request, action_id, True, actor)
    from stackfleet.provision.approvals import carry_out, is_provisioning

    store = get_store(request)
    if is_provisioning(row):
        from stackfleet.engine.settings import load_settings

        carry_out(store, action_id, load_settings(None), actor=actor)
        row = action_records.get(store, action_id)
    elif (hook := _carry_out_approved(request)) is not None:
        hook(store, row, actor)
        row = action_records.get(store, action_id)
    return _with_on_approval(request, row)


@router.post(
    "/v1/actions/{action_id}/reject",
    response_model=ActionOut,
    tags=["actions"],
    responses=error_responses(400, 404, 409),
)
def reject(request: Request, action_id: RowId, body: Decision | None = None) -> Any:
    """Reject an action waiting for approval; it is never carried out."""
    row = _decide(request, action_id, False, auth.actor(request, (body or Decision()).actor))
    return _with_on_approval(request, row)


class LeaseOut(BaseModel):
    id: int
    policy: str
    cloud: str
    region: str
    kind: str
    resource_id: str
    resource_name: str | None
    project_id: str | None
    stage: str = Field(
        description="pending (mark step under way), marked, stopped, done or cancelled"
    )
    started_at: str | None
    next_at: str | None = Field(description="When the next step is due.")
    updated_at: str | None
    extended_days: float
    max_extension_days: float
    reminded: list[str]
    history: list[dict[str, Any]]


class LeaseList(BaseModel):
    items: list[LeaseOut]


class Extension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # at least a minute and a half, at most ten years: a shorter one rounds to nothing,
    # a longer one is past any policy's cap (and past what a date can hold)
    days: float = Field(ge=0.001, le=3650, description="Days to push the next step back.")
    actor: ActorName = "api"


@router.get("/v1/leases", response_model=LeaseList, tags=["leases"])
def leases(
    request: Request,
    resource: Annotated[str | None, Query(description="A resource id or name.")] = None,
    stage: Annotated[
        str | None, Query(description="active (default), pending, marked, stopped, done, cancelled")
    ] = "active",
) -> Any:
    """Resources on a reclamation lease and when their next step is due."""
    items = lease_store.list_leases(get_store(request), stage or None, resource=resource)
    project = rbac.scope(request)
    if project is not None:
        items = [row for row in items if row.get("project_id") == project]
    return {"items": items}


@router.post(
    "/v1/leases/{resource}/extend",
    response_model=LeaseList,
    tags=["leases"],
    responses=error_responses(400, 401, 403, 404, 409),
)
def extend_lease(
    request: Request,
    resource: Annotated[str, Path(description="The resource's id or name.")],
    body: Extension,
) -> Any:
    """Owner self-service: push back the next step of the resource's lease, within
    the policy's cap (409 says how much is left)."""
    store = get_store(request)
    # a project member may extend only its own project's resources
    current = lease_store.list_leases(store, "active", resource=resource, limit=None)
    auth.require_projects(request, [r["project_id"] for r in current], resource)
    changed = lease_store.extend(store, resource, body.days, datetime.now(UTC))
    for row in changed:
        AuditLog(store).append(
            "lease.extended",
            {"days": body.days, "next_at": row["next_at"], "lease_id": row["id"]},
            actor=auth.actor(request, body.actor),
            policy=row["policy"],
            target=f"{row['cloud']}/{row['region']}/{row['kind']}/{row['resource_id']}",
        )
    return {"items": changed}
