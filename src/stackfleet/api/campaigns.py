"""Patching campaigns over HTTP, for the dashboard's campaigns page and for scripts:
``GET /v1/campaigns`` (each campaign, its batches and how far its hosts got),
``GET /v1/campaigns/{name}`` (one campaign with every host's steps) and the operator's
``POST /v1/campaigns/{name}/pause|resume|abort|approve`` — the same state changes as
`stackfleet campaign pause|resume|abort|approve`, audited — and
``POST /v1/campaigns/{name}/rollback`` (a dry-run unless asked to execute). A resumed or
approved campaign is carried out by `stackfleet serve`'s campaigns job (the API never
runs one in the request); a rollback is carried out in the request, as the CLI's is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from stackfleet.api import auth
from stackfleet.api.deps import ActorName, get_store
from stackfleet.api.errors import error_responses
from stackfleet.core.errors import ConflictError, InvalidQueryError
from stackfleet.store import Store
from stackfleet.store import patching as records

router = APIRouter(tags=["campaigns"], responses=error_responses(500))

CampaignName = Annotated[str, Path(min_length=1, max_length=255, description="The campaign.")]
HostName = Annotated[str, Field(min_length=1, max_length=255)]
MAX_ROLLBACK_HOSTS = 1000
CAMPAIGN_LEASE_SECONDS = 60.0  # CampaignRunner's default lease
# which states each operator verb applies to (as the CLI's verbs)
PAUSABLE = ("running", "awaiting-approval")
ABORTABLE = ("running", "paused", "halted", "awaiting-approval")


class CampaignStep(BaseModel):
    model_config = ConfigDict(extra="allow")

    host: str
    batch: int = Field(description="0 is the canary batch.")
    position: int
    step: str = Field(description="pre-check, drain, apply, restart, gate, undrain, rollback.")
    status: str = Field(description="pending, running, done, failed, skipped.")
    detail: dict[str, Any]
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Campaign(BaseModel):
    """A campaign without its spec text: status, batches, progress (and, one campaign,
    its hosts' steps)."""

    model_config = ConfigDict(extra="allow")

    name: str
    status: str = Field(
        description="running, awaiting-approval, paused, halted, aborted, completed."
    )
    error: str | None = None
    cloud: str | None = None
    region: str | None = None
    batches: list[list[str]] = Field(description="Hosts by batch; the first is the canary.")
    waiting_batch: int | None = Field(None, description="The batch waiting for approval.")
    approved_batches: list[int]
    hosts: int
    hosts_done: int = Field(description="Hosts whose every step is done or skipped.")
    hosts_failed: int
    created_at: str | None = None
    updated_at: str | None = None
    steps: list[CampaignStep] | None = None


class CampaignList(BaseModel):
    items: list[Campaign]


class Verb(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: ActorName = "api"


class RollbackRequest(BaseModel):
    """What to roll back; without `execute`, only what it would do (dry-run)."""

    model_config = ConfigDict(extra="forbid")

    actor: ActorName = "api"
    hosts: list[HostName] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ROLLBACK_HOSTS,
        description="Hosts (or servers) to roll back; default: every host it changed.",
    )
    execute: bool = Field(default=False, description="Really roll back (default: dry-run).")


class RollbackTarget(BaseModel):
    host: str
    service: str
    digest: str = Field(description="The tested revision put back.")
    tested_at: str | None


class RollbackResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    host: str
    status: str = Field(description="rolled-back or failed.")
    error: str | None = None


class RollbackOut(BaseModel):
    campaign: str
    execute: bool
    targets: list[RollbackTarget] = Field(description="Each host's service and its revision.")
    results: list[RollbackResult] | None = Field(
        None, description="How each host ended (null for a dry-run)."
    )


def _out(campaign: dict[str, Any], steps: list[dict[str, Any]], detail: bool) -> dict[str, Any]:
    """The campaign as the API shows it: progress counted from its steps."""
    plan = campaign.get("plan") or {}
    spec = campaign.get("spec") or {}
    by_host: dict[str, list[str]] = {}
    for step in steps:
        by_host.setdefault(step["host"], []).append(step["status"])
    batches = [list(b) for b in plan.get("batches") or []]
    return {
        "name": campaign["name"],
        "status": campaign["status"],
        "error": campaign.get("error"),
        "cloud": plan.get("cloud") or spec.get("cloud"),
        "region": plan.get("region") or spec.get("region"),
        "batches": batches,
        "waiting_batch": plan.get("waiting_batch"),
        "approved_batches": campaign.get("approved_batches") or [],
        "hosts": sum(len(b) for b in batches) or len(by_host),
        "hosts_done": sum(1 for s in by_host.values() if all(x in ("done", "skipped") for x in s)),
        "hosts_failed": sum(1 for s in by_host.values() if "failed" in s),
        "created_at": campaign.get("created_at"),
        "updated_at": campaign.get("updated_at"),
        "steps": steps if detail else None,
    }


@router.get("/v1/campaigns", response_model=CampaignList)
def list_campaigns(request: Request) -> Any:
    """Every campaign, oldest first, with its batches and how many hosts are done."""
    store = get_store(request)
    return {
        "items": [
            _out(c, records.steps_of(store, c["id"]), detail=False)
            for c in records.list_campaigns(store)
        ]
    }


@router.get("/v1/campaigns/{name}", response_model=Campaign, responses=error_responses(400, 404))
def get_campaign(request: Request, name: CampaignName) -> Any:
    """One campaign with each host's steps (status, timing, what it found, errors)."""
    store = get_store(request)
    campaign = records.get_campaign(store, name)
    return _out(campaign, records.steps_of(store, campaign["id"]), detail=True)


def _change(
    request: Request, name: str, body: Verb | None, status: str, allowed: tuple[str, ...]
) -> dict[str, Any]:
    from stackfleet.engine.settings import load_settings
    from stackfleet.patching.campaign import CampaignRunner

    store = get_store(request)
    actor = auth.actor(request, (body or Verb()).actor)
    runner = CampaignRunner(store, load_settings(None), actor=actor)
    if status == "running":
        campaign = runner.resume(name)
    else:
        campaign = runner.set_status(name, status, f"campaign.{_VERBS[status]}", allowed=allowed)
    return _out(campaign, records.steps_of(store, campaign["id"]), detail=True)


_VERBS = {"paused": "paused", "aborted": "aborted"}


@router.post(
    "/v1/campaigns/{name}/pause",
    response_model=Campaign,
    responses=error_responses(400, 404, 409),
)
def pause_campaign(request: Request, name: CampaignName, body: Verb | None = None) -> Any:
    """Pause a running campaign: hosts finish the step they are in, nothing new starts."""
    return _change(request, name, body, "paused", PAUSABLE)


@router.post(
    "/v1/campaigns/{name}/resume",
    response_model=Campaign,
    responses=error_responses(400, 404, 409),
)
def resume_campaign(request: Request, name: CampaignName, body: Verb | None = None) -> Any:
    """Mark a paused or halted campaign running again; `stackfleet serve`'s campaigns
    job carries it on from what OpenStack and the hosts show (no step twice)."""
    return _change(request, name, body, "running", ())


@router.post(
    "/v1/campaigns/{name}/abort",
    response_model=Campaign,
    responses=error_responses(400, 404, 409),
)
def abort_campaign(request: Request, name: CampaignName, body: Verb | None = None) -> Any:
    """Abort a campaign: nothing more starts; hosts stay as they are (see its steps,
    and `stackfleet campaign rollback`)."""
    return _change(request, name, body, "aborted", ABORTABLE)


@router.post(
    "/v1/campaigns/{name}/approve",
    response_model=Campaign,
    responses=error_responses(400, 404, 409),
)
def approve_batch(request: Request, name: CampaignName, body: Verb | None = None) -> Any:
    """Approve the batch an `awaiting-approval` campaign waits on (its spec's
    approvals.per_batch): the campaign is running again and `stackfleet serve`'s
    campaigns job carries the batch out. 409 when no batch waits."""
    from stackfleet.engine.settings import load_settings
    from stackfleet.patching.campaign import CampaignRunner

    store = get_store(request)
    actor = auth.actor(request, (body or Verb()).actor)
    campaign = CampaignRunner(store, load_settings(None), actor=actor).approve(name)
    return _out(campaign, records.steps_of(store, campaign["id"]), detail=True)


def rollback_targets(
    store: Store, campaign: dict[str, Any], hosts: list[str] | None
) -> list[dict[str, Any]]:
    """The revision each host's services go back to, checked as `CampaignRunner.rollback`
    checks them but answered as the caller's mistake (400 naming `hosts`) or the
    campaign's state (409), never as a server error."""
    from stackfleet.patching.campaign import rollback_target
    from stackfleet.patching.spec import closest

    name = campaign["name"]
    steps = records.steps_of(store, campaign["id"])
    known = sorted({s["host"] for s in steps})
    for host in hosts or []:
        if host not in known:
            raise InvalidQueryError(
                f"body 'hosts': {host!r} is not in campaign {name}{closest(host, known)}",
                field="hosts",
            )
    # the hosts the runner rolls back by default: those whose change began
    changed = {
        s["host"]
        for s in steps
        if s["step"] in ("apply", "rebuild") and s["status"] in ("done", "running", "failed")
    }
    targets = list(dict.fromkeys(hosts)) if hosts else sorted(changed)
    if not targets:
        raise ConflictError(f"campaign {name} changed no host yet: nothing to roll back")
    plan, missing = [], []
    for host in targets:
        for service in campaign["spec"]["targets"]["services"]:
            tested = rollback_target(store, campaign["id"], host, service)
            if tested is None:
                missing.append(f"{service} on {host}")
                continue
            plan.append(
                {
                    "host": host,
                    "service": service,
                    "digest": tested["digest"],
                    "tested_at": tested["tested_at"],
                }
            )
    if missing:
        raise ConflictError(
            f"no tested revision to roll back to for {', '.join(missing)}; nothing was rolled back"
        )
    return plan


def _carried_out(campaign: dict[str, Any]) -> bool:
    """Whether a process holds the campaign's lease (a heartbeat within the runner's
    default lease, 60 s): a process that died lets go when its heartbeat goes stale."""
    beat = campaign.get("heartbeat_at")
    if not campaign.get("owner") or not beat:
        return False
    age = datetime.now(UTC) - datetime.fromisoformat(beat)
    return age < timedelta(seconds=CAMPAIGN_LEASE_SECONDS)


@router.post(
    "/v1/campaigns/{name}/rollback",
    response_model=RollbackOut,
    responses=error_responses(400, 404, 409),
)
def rollback_campaign(
    request: Request, name: CampaignName, body: RollbackRequest | None = None
) -> Any:
    """Put each host's last tested revision back (every host the campaign changed, or
    `hosts`), restart and gate it — what `stackfleet campaign rollback` does. Without
    `execute` (a dry-run) it answers the revisions it would put back; with it, also how
    each host ended. Refused
    (409, nothing done) while the campaign is running (pause or abort it first) or when
    a host has no tested revision."""
    from stackfleet.engine.settings import load_settings
    from stackfleet.patching.campaign import CampaignRunner

    body = body or RollbackRequest()
    store = get_store(request)
    actor = auth.actor(request, body.actor)
    campaign = records.get_campaign(store, name)
    targets = rollback_targets(store, campaign, body.hosts)
    answer: dict[str, Any] = {"campaign": name, "execute": body.execute, "targets": targets}
    if not body.execute:
        return answer
    # re-read before acting: a campaign being carried out is not rolled back under it
    campaign = records.get_campaign(store, name)
    if campaign["status"] == "running":
        raise ConflictError(f"campaign {name} is running; pause or abort it before rolling back")
    if _carried_out(campaign):
        # paused or aborted, but its process still finishes the step a host is in
        raise ConflictError(
            f"campaign {name} is still being carried out by {campaign['owner']} (finishing "
            "the step a host is in); roll back once it has let go (its steps show it)"
        )
    runner = CampaignRunner(store, load_settings(None), actor=actor)
    hosts = list(dict.fromkeys(body.hosts)) if body.hosts else None
    answer["results"] = runner.rollback(name, hosts)
    return answer
