"""Alert endpoints: list, acknowledge, resolve; silences; and receiving alerts from
outside in Alertmanager's formats (its v2 `POST /api/v2/alerts` body, and its webhook
notification body), so Prometheus or an Alertmanager can send alerts to StackFleet."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from stackfleet.alerts import operations
from stackfleet.alerts.lifecycle import ingest
from stackfleet.alerts.model import MAX_PATTERN
from stackfleet.alerts.routing import InhibitRule
from stackfleet.api import auth, rbac
from stackfleet.api.deps import ActorName, RowId, get_store
from stackfleet.api.errors import error_responses
from stackfleet.core.errors import ConfigError, InvalidQueryError
from stackfleet.core.times import parse_duration
from stackfleet.engine.settings import load_settings
from stackfleet.store import alerts as alert_store

log = logging.getLogger(__name__)

router = APIRouter()


class AlertOut(BaseModel):
    id: int
    fingerprint: str
    alertname: str
    severity: str
    status: str = Field(description="firing or resolved")
    state: str = Field(description="firing, acknowledged, silenced (#id) or resolved")
    source: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str | None
    ends_at: str | None
    updated_at: str | None
    finding_id: int | None
    generator_url: str | None
    acked_by: str | None
    acked_at: str | None
    notified_at: str | None
    notified_status: str | None
    caused_by: int | None = Field(
        default=None, description="The id of the alert whose incident explains this one."
    )
    consequences: list[int] = Field(
        default_factory=list, description="Ids of the alerts this one's incident explains."
    )


class AlertList(BaseModel):
    items: list[AlertOut]


class IncidentAlert(BaseModel):
    id: int
    fingerprint: str
    alertname: str
    severity: str
    labels: dict[str, str]


class IncidentOut(BaseModel):
    cause: IncidentAlert
    reason: str = Field(description="What failed, e.g. 'compute host cmp1 is down'.")
    consequences: list[IncidentAlert]


class IncidentList(BaseModel):
    items: list[IncidentOut]


class PostableAlert(BaseModel):
    """One alert as Alertmanager's API v2 takes it."""

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None  # noqa: N815 - Alertmanager's field names
    endsAt: str | None = None  # noqa: N815
    generatorURL: str | None = None  # noqa: N815
    status: str | None = None


class WebhookMessage(BaseModel):
    """Alertmanager's webhook notification body (version 4)."""

    version: str = "4"
    status: str | None = None
    receiver: str | None = None
    alerts: list[PostableAlert]


class Received(BaseModel):
    fired: int
    refreshed: int
    resolved: int
    # alerts matching one of StackFleet's own alerts (policy, hardware, database, ...):
    # ignored, since only StackFleet's own checks fire and resolve those
    refused: int = 0


class Actor(BaseModel):
    # An unknown key (say `by` for `actor`) is a 400, not silently ignored.
    model_config = ConfigDict(extra="forbid")

    actor: ActorName = "api"


MAX_MATCHERS = 50
MAX_COMMENT = 4096
# The regular expression of =~ and !~ must compile (RE2), which JSON Schema cannot say:
# the format names it for readers and for a fuzzer's generator (benchmarks/fuzz_api.py).
MATCHER_FORMAT = "alertmanager-matcher"
MatcherText = Annotated[
    str,
    StringConstraints(
        pattern=r"^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=).*$", max_length=MAX_PATTERN + 256
    ),
    WithJsonSchema(
        {
            "type": "string",
            "format": MATCHER_FORMAT,
            "pattern": r"^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=).*$",
            "maxLength": MAX_PATTERN + 256,
        }
    ),
]


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: list[MatcherText] = Field(
        min_length=1,
        max_length=MAX_MATCHERS,
        description="name=value, name!=value, name=~regex, name!~regex (RE2)",
    )
    duration: str = Field(
        default="2h",
        max_length=32,
        # positive parts of at most 9999 units: a silence ends within centuries
        pattern=r"^([1-9][0-9]{0,3}(\.[0-9]{1,3})?[wdhms])+$",
        description="How long, e.g. 2h, 7d, 1d12h.",
    )
    comment: str = Field(default="", max_length=MAX_COMMENT)
    actor: ActorName = "api"


class SilenceOut(BaseModel):
    id: int
    matchers: list[dict[str, str]]
    starts_at: str | None
    ends_at: str | None
    created_by: str
    comment: str
    state: str


class SilenceList(BaseModel):
    items: list[SilenceOut]


@router.get("/v1/alerts", response_model=AlertList, tags=["alerts"])
def list_alerts(
    request: Request,
    status: Annotated[
        str | None, Query(pattern="^(firing|resolved)$", description="Empty: both.")
    ] = "firing",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Any:
    """Alerts, newest first, each with its state (firing, acknowledged, silenced,
    inhibited, resolved)."""
    store = get_store(request)
    project = rbac.scope(request)
    if project is None:
        rows = alert_store.list_alerts(store, status or None, limit)
    else:
        # a project's alerts: filtered by label before the limit
        rows = alert_store.list_alerts(store, status or None, None)
        rows = [r for r in rows if project_of(r.get("labels") or {}) == project][:limit]
    return {"items": operations.with_state(store, rows, datetime.now(UTC), _inhibit_rules())}


@router.get("/v1/incidents", response_model=IncidentList, tags=["alerts"])
def list_incidents(request: Request) -> Any:
    """Firing alerts grouped by cause: a dead compute host with the alerts of its servers,
    services, agents and hardware; an L3 or DHCP agent with its routers or networks; a
    Cinder back end with its volumes. The consequences are not notified on their own."""
    return {"items": operations.incidents(get_store(request))}


def project_of(labels: dict[str, str]) -> str | None:
    """The project an alert is about: its `project_id` (or `project`) label."""
    return labels.get("project_id") or labels.get("project")


def _inhibit_rules() -> list[InhibitRule]:
    """The inhibition rules of the settings file ($STACKFLEET_CONFIG), read per request
    like the hardware thresholds; a broken file only costs the `inhibited` state."""
    try:
        return load_settings(None).alerts.inhibit_rules
    except ConfigError as exc:
        log.warning("alert states without inhibition: %s", exc)
        return []


@router.post("/v1/alerts", response_model=Received, tags=["alerts"])
def post_alerts(request: Request, body: list[PostableAlert]) -> Any:
    """Receive alerts in Alertmanager's API v2 shape (Prometheus can send here)."""
    changes = ingest(get_store(request), [a.model_dump() for a in body], "api", datetime.now(UTC))
    return changes.__dict__


@router.post("/v1/alerts/webhook", response_model=Received, tags=["alerts"])
def alertmanager_webhook(request: Request, body: WebhookMessage) -> Any:
    """Receive an Alertmanager webhook notification (point a webhook receiver here)."""
    changes = ingest(
        get_store(request), [a.model_dump() for a in body.alerts], "alertmanager", datetime.now(UTC)
    )
    return changes.__dict__


@router.post(
    "/v1/alerts/{alert_id}/ack",
    response_model=AlertOut,
    tags=["alerts"],
    responses=error_responses(400, 404, 409),
)
def ack_alert(request: Request, alert_id: RowId, body: Actor | None = None) -> Any:
    """Acknowledge a firing alert: receivers are not told again."""
    store = get_store(request)
    now = datetime.now(UTC)
    row = operations.acknowledge(store, alert_id, auth.actor(request, (body or Actor()).actor), now)
    return operations.with_state(store, [row], now)[0]


@router.post(
    "/v1/alerts/{alert_id}/resolve",
    response_model=AlertOut,
    tags=["alerts"],
    responses=error_responses(400, 404, 409),
)
def resolve_alert(request: Request, alert_id: RowId, body: Actor | None = None) -> Any:
    """Resolve a firing alert by hand."""
    store = get_store(request)
    now = datetime.now(UTC)
    row = operations.resolve(store, alert_id, auth.actor(request, (body or Actor()).actor), now)
    return operations.with_state(store, [row], now)[0]


@router.get("/v1/silences", response_model=SilenceList, tags=["alerts"])
def list_silences(
    request: Request, all: Annotated[bool, Query(description="Expired ones too.")] = False
) -> Any:
    """Active silences (with all=true, expired ones too)."""
    return {"items": alert_store.list_silences(get_store(request), datetime.now(UTC), not all)}


@router.post(
    "/v1/silences", response_model=SilenceOut, tags=["alerts"], responses=error_responses(400)
)
def create_silence(request: Request, body: SilenceIn) -> Any:
    """Silence the alerts matching every matcher for `duration`."""
    try:
        duration = parse_duration(body.duration)
    except (ValueError, OverflowError) as exc:
        raise InvalidQueryError(f"duration: {exc}") from None
    return operations.silence(
        get_store(request),
        body.matchers,
        duration,
        auth.actor(request, body.actor),
        body.comment,
        datetime.now(UTC),
    )


@router.delete(
    "/v1/silences/{silence_id}",
    response_model=SilenceOut,
    tags=["alerts"],
    responses=error_responses(404),
)
def expire_silence(request: Request, silence_id: RowId) -> Any:
    """End a silence now."""
    return operations.expire(
        get_store(request), silence_id, auth.actor(request, "api"), datetime.now(UTC)
    )
