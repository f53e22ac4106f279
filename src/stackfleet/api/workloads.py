"""Workload endpoints: the workloads of the inventory (kind `workload`, derived from the
labels provisioning sets on members), and plan / apply of a workload spec sent as the
request body. Apply goes through the safety gate, the audit log and, when the spec or
the settings ask for it, the approvals queue (`POST /v1/actions/{id}/approve`)."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from stackfleet.api import rbac
from stackfleet.api.deps import CloudQuery, OffsetQuery, RegionQuery, StoreDep
from stackfleet.api.errors import error_responses
from stackfleet.core.errors import NotFoundError

router = APIRouter()

MAX_LIMIT = 1000


class WorkloadPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]] = Field(
        description="Workload records: backend, member_ids, member_names, member_count, "
        "active_count, failed_count, hosts, spec_hashes, plus cloud, region and times."
    )


# OpenAPI format of a workload spec's YAML text (the fuzzer generates valid ones)
WORKLOAD_SPEC_FORMAT = "workload-spec-yaml"


class SpecRequest(BaseModel):
    """A workload spec: the YAML text `stackfleet provision` reads. Workloads that name
    no `cloud` go to the API's default cloud ($OS_CLOUD of `stackfleet serve`)."""

    model_config = ConfigDict(extra="forbid")

    spec: str = Field(
        min_length=1,
        max_length=1_000_000,
        description="The spec's YAML text (docs/provisioning.md).",
        json_schema_extra={"format": WORKLOAD_SPEC_FORMAT},
    )


class ApplyRequest(SpecRequest):
    execute: bool = Field(
        default=False,
        strict=True,
        description="Change the cloud (default: a dry run, nothing changes).",
    )


class PlanStep(BaseModel):
    workload: str
    change: str = Field(description="create, replace, delete or keep")
    member: str
    reason: str


class WorkloadPlanOut(BaseModel):
    workload: str
    kind: str
    backend: str
    count: int
    flavor: str | None
    image: str | None
    counts: dict[str, int]
    server_group_needed: bool
    steps: list[PlanStep]


class PlanOut(BaseModel):
    workloads: list[WorkloadPlanOut]
    notes: list[str] = Field(default_factory=list)


class OutcomeOut(BaseModel):
    workload: str
    action: str
    member: str
    status: str = Field(
        description="active, failed, timeout, deleted, planned, awaiting-approval, deferred, ..."
    )
    server_id: str | None
    message: str


class ApplyOut(PlanOut):
    executed: bool
    outcomes: list[OutcomeOut]


@router.get(
    "/v1/workloads", response_model=WorkloadPage, tags=["workloads"], responses=error_responses(400)
)
def list_workloads(
    request: Request,
    store: StoreDep,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    status: Annotated[str | None, Query(description="ACTIVE, ERROR, BUILDING, MIXED")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: OffsetQuery = 0,
) -> Any:
    """Workloads as the newest pass saw them (a project token: its project's only)."""
    filters: dict[str, str] = {}
    project = rbac.scope(request)
    if project is not None:
        filters["project_id"] = project
    if status:
        filters["status"] = status
    items, total = store.list_resources(
        "workload", filters=filters, cloud=cloud or None, region=region or None,
        limit=limit, offset=offset,
    )  # fmt: skip
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def _provisioner(request: Request, body: SpecRequest) -> Any:
    from stackfleet.engine.settings import load_settings
    from stackfleet.provision.apply import Provisioner

    return Provisioner(
        request.app.state.store, load_settings(None), default_cloud=os.environ.get("OS_CLOUD"),
        actor="stackfleet-api",
    )  # fmt: skip


def _plans_out(plans: list[Any]) -> list[dict[str, Any]]:
    out = []
    for plan in plans:
        w = plan.resolved.workload
        out.append(
            {
                "workload": w.name,
                "kind": w.kind,
                "backend": plan.resolved.backend,
                "count": w.count,
                "flavor": (plan.resolved.flavor or {}).get("name"),
                "image": plan.resolved.image_name,
                "counts": plan.counts(),
                "server_group_needed": plan.group_needed,
                "steps": [
                    {"workload": w.name, "change": s.kind, "member": s.name, "reason": s.reason}
                    for s in plan.steps
                ],
            }
        )
    return out


@router.post(
    "/v1/workloads/plan",
    response_model=PlanOut,
    tags=["workloads"],
    responses=error_responses(400, 502),
)
def plan_workloads(request: Request, body: Annotated[SpecRequest, Body()]) -> Any:
    """What apply would create, replace or delete (a diff against what exists); the
    spec is validated first (400 naming line and field, nothing created)."""
    from stackfleet.provision.spec import load_spec_text

    workloads = load_spec_text(body.spec, "<request body>")
    provisioner = _provisioner(request, body)
    try:
        plans = provisioner.plan(provisioner.prepare(workloads))
    finally:
        provisioner.close()
    return {"workloads": _plans_out([p for p, _ in plans])}


@router.post(
    "/v1/workloads/apply",
    response_model=ApplyOut,
    tags=["workloads"],
    responses=error_responses(400, 409, 502),
)
def apply_workloads(request: Request, body: Annotated[ApplyRequest, Body()]) -> Any:
    """Converge the spec's workloads (dry run unless `execute`): quota and capacity
    checked first, every create and delete through the safety gate and the audit log;
    with approvals configured (the spec's `require_approval` or the settings'
    `provision.require_approval`) they wait in the approvals queue instead."""
    from stackfleet.provision.spec import load_spec_text

    workloads = load_spec_text(body.spec, "<request body>")
    provisioner = _provisioner(request, body)
    try:
        plans = provisioner.plan(provisioner.prepare(workloads))
        notes: list[str] = []
        outcomes: list[dict[str, Any]] = []
        executed = False
        if any(p.changes for p, _ in plans):
            notes = provisioner.check_capacity(plans)
            report = provisioner.apply(plans, execute=body.execute)
            executed = report.executed
            outcomes = [
                {
                    "workload": o.workload,
                    "action": o.action,
                    "member": o.name,
                    "status": o.status,
                    "server_id": o.server_id,
                    "message": o.message,
                }
                for o in report.outcomes
            ]
    finally:
        provisioner.close()
    return {
        "workloads": _plans_out([p for p, _ in plans]),
        "notes": notes,
        "executed": executed,
        "outcomes": outcomes,
    }


# after the literal /v1/workloads/plan and /apply: the first route matching a path wins
@router.get("/v1/workloads/{name}", tags=["workloads"], responses=error_responses(400, 404, 409))
def get_workload(
    request: Request,
    store: StoreDep,
    name: Annotated[str, Path(description="The workload's name (or <project id>/<name>).")],
    project_id: Annotated[
        str | None, Query(description="The project, when several have a workload of that name.")
    ] = None,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
) -> Any:
    """One workload with its members (relations) and recent changes."""
    scope = rbac.scope(request)
    filters = {"name": name}
    if scope is not None or project_id:
        filters["project_id"] = scope or str(project_id)
    items, total = store.list_resources(
        "workload", filters=filters, cloud=cloud or None, region=region or None, limit=20
    )
    if not items:
        raise NotFoundError(f"no workload {name}")
    if total > 1:
        from stackfleet.core.errors import ConflictError

        where = ", ".join(f"{i['project_id']} ({i['cloud']}/{i['region']})" for i in items)
        raise ConflictError(
            f"{total} workloads are called {name}: in {where}; give project_id, cloud, region"
        )
    found = items[0]
    return store.get_resource("workload", found["id"], cloud=found["cloud"], region=found["region"])
