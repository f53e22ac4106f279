"""Fleet health, recoveries and SLAs over HTTP: ``GET /v1/health/{hosts,services,
instances,workloads}``, ``GET /v1/recoveries``, ``GET /v1/recoveries/{recovery_id}``,
``GET /v1/sla`` and their gauges on ``/metrics``.

Everything is answered from the store — the verdicts the daemon's `health` job saved
and the recovery records — so a request or a scrape never touches the cloud. Hosts,
services and recoveries are fleet-wide; a project-scoped token sees its own project's
instances, and the workloads whose members all belong to its project.
``install(app)`` adds the routes and the collector to one app.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from stackfleet.api import rbac
from stackfleet.api.collectors import Families, Gauge, StoreCollector
from stackfleet.api.deps import CloudQuery, RegionQuery, RowId, get_store
from stackfleet.api.errors import ErrorResponse, error_responses
from stackfleet.core.errors import ConfigError, NotFoundError
from stackfleet.engine.settings import load_settings
from stackfleet.engine.sla import service_sla_report, sla_report, window_start
from stackfleet.model.health import STATES
from stackfleet.model.sla import Availability
from stackfleet.store import health_states, recoveries

log = logging.getLogger(__name__)

router = APIRouter(tags=["fleet health"], responses=error_responses(500))

# The window of an SLA report over HTTP: a duration back from now, each part 1–9999 of a
# unit (w, d, h, m, s). The CLI also takes an ISO 8601 time (`--since 2026-01-01`).
SinceQuery = Annotated[
    str,
    Query(
        pattern=r"^([1-9][0-9]{0,3}[wdhms])+$",
        max_length=64,
        description="Window start: a duration back from now (30d, 1w2d, 12h).",
    ),
]

StateQuery = Annotated[
    str | None, Query(description="Only this state: healthy, degraded, down or unknown.")
]


class Verdict(BaseModel):
    """One subject's newest verdict, with the evidence that decided it."""

    model_config = ConfigDict(extra="allow")

    kind: str
    cloud: str
    region: str
    subject: str = Field(description="Host name, service id, server id or workload name.")
    name: str | None = None
    state: str = Field(description="healthy, degraded, down or unknown.")
    failure: str | None = Field(
        None,
        description="Hosts: host, process, undetermined; instances: error, stuck, "
        "power-mismatch, host-down.",
    )
    reason: str
    details: dict[str, Any] = Field(
        description="Hosts: evidence (signal by signal); services: heartbeat age, "
        "forced_down, disabled reason; instances: host, project; workloads: members."
    )
    checked_at: str
    changed_at: str = Field(description="When the state last changed.")


class VerdictList(BaseModel):
    items: list[Verdict]
    frozen: str | None = Field(
        None, description="Why every automatic recovery is frozen now (none: it may act)."
    )


class RecoveryStep(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int
    name: str = Field(description="fence, force-down, evacuate, start, verify, ...")
    target: str
    status: str = Field(description="running, done, failed, skipped, planned.")
    details: dict[str, Any]
    error: str | None = None
    action_id: int | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Recovery(BaseModel):
    """A recovery: what triggered it, the evidence, and (one recovery) its steps."""

    model_config = ConfigDict(extra="allow")

    id: int
    cloud: str
    region: str
    kind: str = Field(description="host (fence and evacuate) or service (restart hook).")
    subject: str
    trigger: str
    status: str = Field(description="planned, running, succeeded, failed, stopped, dry-run.")
    execute: bool
    evidence: list[str]
    error: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    steps: list[RecoveryStep] | None = None


class RecoveryList(BaseModel):
    items: list[Recovery]


def _verdicts(
    request: Request, kind: str, cloud: str | None, region: str | None, state: str | None
) -> list[dict[str, Any]]:
    return [
        v
        for v in health_states.load(get_store(request), kind)
        if (not cloud or v["cloud"] == cloud)
        and (not region or v["region"] == region)
        and (not state or v["state"] == state)
    ]


def _frozen(request: Request) -> str | None:
    for fleet in health_states.load(get_store(request), "fleet"):
        if fleet["failure"] == "frozen":
            return str(fleet["reason"])
    return None


@router.get("/v1/health/hosts", response_model=VerdictList)
def health_hosts(
    request: Request,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    state: StateQuery = None,
) -> Any:
    """Each compute host's verdict (healthy, degraded, down, unknown), the kind of
    failure and the evidence, signal by signal; `frozen` says whether recovery may act."""
    return {
        "items": _verdicts(request, "host", cloud, region, state),
        "frozen": _frozen(request),
    }


@router.get("/v1/health/services", response_model=VerdictList)
def health_services(
    request: Request,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    state: StateQuery = None,
) -> Any:
    """Each compute service: up or down, disabled and why, forced down, heartbeat age."""
    return {"items": _verdicts(request, "service", cloud, region, state)}


@router.get("/v1/health/instances", response_model=VerdictList)
def health_instances(
    request: Request,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    state: StateQuery = None,
) -> Any:
    """Each instance's verdict (ERROR, stuck task, power mismatch, on a down host). A
    project-scoped token sees its own project's instances."""
    rows = _verdicts(request, "instance", cloud, region, state)
    project = rbac.scope(request)
    if project is not None:
        rows = [r for r in rows if r["details"].get("project_id") == project]
    return {"items": rows}


@router.get("/v1/health/workloads", response_model=VerdictList)
def health_workloads(request: Request, state: StateQuery = None) -> Any:
    """Each workload (k of n members healthy). A project-scoped token sees the workloads
    whose members all belong to its project."""
    rows = _verdicts(request, "workload", None, None, state)
    project = rbac.scope(request)
    if project is not None:
        rows = [r for r in rows if r["details"].get("projects") == [project]]
    return {"items": rows}


@router.get("/v1/recoveries", response_model=RecoveryList, responses=error_responses(400))
def list_recoveries(
    request: Request,
    status: Annotated[
        str | None,
        Query(description="Only this status: planned, running, succeeded, failed, ..."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Recoveries, newest first (without their steps: see /v1/recoveries/{id})."""
    return {"items": recoveries.list_recoveries(get_store(request), status or None, limit)}


@router.get(
    "/v1/recoveries/{recovery_id}",
    response_model=Recovery,
    responses={404: {"model": ErrorResponse}},
)
def get_recovery(request: Request, recovery_id: RowId) -> Any:
    """One recovery with each step: when it started and ended, what it found (the
    action's record id, OpenStack's state read back) and why it failed."""
    return recoveries.get(get_store(request), recovery_id)


class SlaIncident(BaseModel):
    start: str
    end: str | None = Field(None, description="None: still down.")
    cause: str = Field(description="Why the workload went down (its members' verdicts).")
    seconds: float


class WorkloadSla(BaseModel):
    """One workload's availability over the window, from recorded state changes."""

    name: str
    since: str
    until: str
    target: float | None = Field(None, description="Availability target, %.")
    achieved: float | None = Field(None, description="Available / measured time, %.")
    met: bool | None = None
    measured_seconds: float = Field(
        description="Time with a known state in the window (unknown time is not counted)."
    )
    down_seconds: float
    error_budget_seconds: float | None = None
    error_budget_left_seconds: float | None = None
    error_budget_left_percent: float | None = None
    incidents: list[SlaIncident]


class SlaReport(BaseModel):
    items: list[WorkloadSla]


@router.get("/v1/sla", response_model=SlaReport, responses=error_responses(400, 404))
def sla(
    request: Request,
    since: SinceQuery = "30d",
    workload: Annotated[
        str | None, Query(min_length=1, max_length=255, description="Only this workload.")
    ] = None,
    target: Annotated[
        float | None, Query(description="Availability target in % (default: each workload's).")
    ] = None,
) -> Any:
    """Each workload's availability against its target (health.workloads of the settings
    file), its incidents (start, end, cause) and the error budget left. A project-scoped
    token sees the workloads whose members all belong to its project."""
    now = datetime.now(UTC)
    store = get_store(request)
    workloads = load_settings(None).health.workloads
    project = rbac.scope(request)
    if project is not None:
        mine = {
            v["subject"]
            for v in health_states.load(store, "workload")
            if v["details"].get("projects") == [project]
        }
        if workload is not None and workload not in mine:
            raise NotFoundError(f"no workload {workload!r} of your project")
        workloads = [w for w in workloads if w.name in mine]
    if workload is not None and workload not in {w.name for w in workloads}:
        raise NotFoundError(f"no workload {workload!r} in the settings' health.workloads")
    reports = sla_report(store, workloads, window_start(since, now), now, workload, target)
    return {"items": [r.to_dict() for r in reports]}


@router.get("/v1/sla/services", response_model=SlaReport, responses=error_responses(400, 404))
def service_sla(
    request: Request,
    since: SinceQuery = "30d",
    service: Annotated[
        str | None,
        Query(min_length=1, max_length=255, description="Only this service (its binary)."),
    ] = None,
    target: Annotated[
        float | None,
        Query(description="Availability target in % (default: health.service_target)."),
    ] = None,
) -> Any:
    """Each OpenStack service's availability (nova-compute, neutron agents, cinder-volume
    ...: the time its hosts' instances were down, summed) against its target, with each
    host's down stretch as an incident."""
    now = datetime.now(UTC)
    chosen = load_settings(None).health.service_target if target is None else target
    reports = service_sla_report(get_store(request), window_start(since, now), now, chosen, service)
    return {"items": [r.to_dict() for r in reports]}


# -- /metrics ----------------------------------------------------------------------------

SLA_WINDOW = timedelta(days=30)

HEALTH_GAUGES = {
    "stackfleet_host_health": Gauge(
        "1 for the compute host's current health state (healthy, degraded, down, "
        "unknown), 0 for the others.",
        ("cloud", "region", "host", "state"),
    ),
    "stackfleet_instances_by_health": Gauge(
        "Instances in each health state.", ("cloud", "region", "state")
    ),
    "stackfleet_workload_health": Gauge(
        "1 for the workload's current health state, 0 for the others.", ("workload", "state")
    ),
    "stackfleet_workload_healthy_members": Gauge("Healthy members of the workload.", ("workload",)),
    "stackfleet_recoveries": Gauge("Recoveries recorded, by kind and status.", ("kind", "status")),
    "stackfleet_workload_availability_percent": Gauge(
        "Availability over the last 30 days, from recorded state changes.", ("workload",)
    ),
    "stackfleet_workload_availability_target_percent": Gauge(
        "The workload's availability target.", ("workload",)
    ),
    "stackfleet_workload_error_budget_left_ratio": Gauge(
        "What is left of the error budget over the last 30 days (1: untouched, below 0: "
        "overspent).",
        ("workload",),
    ),
    "stackfleet_service_availability_percent": Gauge(
        "Availability of each OpenStack service (its hosts' time summed) over the last "
        "30 days, from recorded state changes.",
        ("service",),
    ),
    "stackfleet_recovery_frozen": Gauge(
        "1 while every automatic recovery is frozen (control-plane fault, too many hosts "
        "down), else 0.",
    ),
}


@dataclass
class HealthReading:
    hosts: list[dict[str, Any]]
    instances: list[dict[str, Any]]
    workloads: list[dict[str, Any]]
    fleet: list[dict[str, Any]]
    recoveries: dict[tuple[str, str], int]
    slas: list[Availability] = field(default_factory=list)
    service_slas: list[Availability] = field(default_factory=list)


class HealthCollector(StoreCollector[HealthReading]):
    """The stored verdicts and recovery counts, read at each scrape."""

    gauges = HEALTH_GAUGES
    topic = "health verdicts"

    def read(self) -> HealthReading:
        return HealthReading(
            hosts=health_states.load(self.store, "host"),
            instances=health_states.load(self.store, "instance"),
            workloads=health_states.load(self.store, "workload"),
            fleet=health_states.load(self.store, "fleet"),
            recoveries=recoveries.count_by_status(self.store),
            slas=self._slas(),
            service_slas=self._service_slas(),
        )

    def _service_slas(self) -> list[Availability]:
        now = datetime.now(UTC)
        return service_sla_report(self.store, now - SLA_WINDOW, now, 100.0)

    def _slas(self) -> list[Availability]:
        try:
            workloads = load_settings(None).health.workloads
        except ConfigError as exc:
            log.warning("metrics scrape: no SLA gauges: %s", exc)
            return []
        now = datetime.now(UTC)
        return sla_report(self.store, workloads, now - SLA_WINDOW, now)

    def fill(self, families: Families, reading: HealthReading) -> None:
        for host in reading.hosts:
            for state in STATES:
                families.add(
                    "stackfleet_host_health",
                    [host["cloud"], host["region"], host["name"] or host["subject"], state],
                    float(host["state"] == state),
                )
        counts: dict[tuple[str, str, str], int] = {}
        for instance in reading.instances:
            key = (instance["cloud"], instance["region"], instance["state"])
            counts[key] = counts.get(key, 0) + 1
        for key, count in sorted(counts.items()):
            families.add("stackfleet_instances_by_health", list(key), count)
        for workload in reading.workloads:
            for state in STATES:
                families.add(
                    "stackfleet_workload_health",
                    [workload["subject"], state],
                    float(workload["state"] == state),
                )
            families.add(
                "stackfleet_workload_healthy_members",
                [workload["subject"]],
                float(workload["details"].get("healthy") or 0),
            )
        for (kind, status), count in sorted(reading.recoveries.items()):
            families.add("stackfleet_recoveries", [kind, status], count)
        for report in reading.slas:
            if report.achieved is not None:
                families.add(
                    "stackfleet_workload_availability_percent", [report.name], report.achieved
                )
            if report.target is not None:
                families.add(
                    "stackfleet_workload_availability_target_percent", [report.name], report.target
                )
            left = report.budget_left_percent
            if left is not None and report.achieved is not None:
                families.add(
                    "stackfleet_workload_error_budget_left_ratio", [report.name], left / 100.0
                )
        for report in reading.service_slas:
            if report.achieved is not None:
                families.add(
                    "stackfleet_service_availability_percent", [report.name], report.achieved
                )
        frozen = any(f["failure"] == "frozen" for f in reading.fleet)
        families.add("stackfleet_recovery_frozen", [], float(frozen))


def install(app: FastAPI) -> None:
    """Add the health routes to `app` and its gauges to the app's registry."""
    app.include_router(router)
    app.state.registry.register(HealthCollector(app.state.store))
