"""POST /v1/events: push an OpenStack notification (for clouds whose message bus
StackFleet cannot reach: a webhook, a relay from the cloud's own consumer). It takes
the same path as one from the listener: mapped to a resource, debounced, re-read
through the API, recorded, and evaluated by the event policies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, Json

from stackfleet.api.errors import ErrorResponse, error_response
from stackfleet.sources.notifications import NotificationFormatError, parse_notification

router = APIRouter()


class EventAccepted(BaseModel):
    """What StackFleet made of a pushed notification."""

    accepted: bool = Field(description="Queued for refresh (false: not about a resource kept).")
    event_type: str
    kind: str | None = None
    id: str | None = None
    cloud: str
    region: str
    deleted: bool = False
    reason: str | None = None


class NotificationMessage(BaseModel):
    """An OpenStack notification as its service sends it (other keys are kept)."""

    model_config = ConfigDict(extra="allow")

    event_type: str = Field(min_length=1, max_length=255, examples=["instance.update"])
    payload: dict[str, Any] = Field(description="The notification's payload object.")
    publisher_id: str | None = Field(default=None, max_length=255)
    priority: str | None = Field(default=None, max_length=32)
    timestamp: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, max_length=255)


NOTIFICATION_JSON_FORMAT = "notification-json"


class OsloEnvelope(BaseModel):
    """The oslo.messaging envelope: the message JSON-encoded in `oslo.message`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    oslo_version: str = Field(alias="oslo.version", max_length=16, examples=["2.0"])
    oslo_message: Json[NotificationMessage] = Field(
        alias="oslo.message",
        description="The message, as a JSON string.",
        # a JSON string must hold the message, which JSON Schema cannot say: the format
        # names it for readers and for a fuzzer's generator (benchmarks/fuzz_api.py)
        json_schema_extra={"format": NOTIFICATION_JSON_FORMAT},
    )


NOTIFICATION_EXAMPLE = {
    "event_type": "instance.update",
    "publisher_id": "nova-compute:cmp1",
    "payload": {"nova_object.data": {"uuid": "3f5c4f57-5b0a-4d3b-8f6d-2b5f8d1c7a10"}},
}


@router.post(
    "/v1/events",
    response_model=EventAccepted,
    status_code=202,
    tags=["events"],
    responses={
        200: {
            "model": EventAccepted,
            "description": "Not about a resource StackFleet keeps: ignored (accepted false).",
        },
        400: {"model": ErrorResponse},
        503: {"model": ErrorResponse, "description": "Event processing is not running here."},
    },
)
def post_event(
    request: Request,
    body: Annotated[
        NotificationMessage | OsloEnvelope,
        Body(
            description="An OpenStack notification: the oslo.messaging envelope "
            '({"oslo.version": "2.0", "oslo.message": "<json>"}) or the message '
            "(event_type, payload, publisher_id, timestamp).",
            examples=[NOTIFICATION_EXAMPLE],
        ),
    ],
    cloud: Annotated[
        str, Query(min_length=1, max_length=255, description="The cloud (clouds.yaml name).")
    ],
    region: Annotated[
        str | None,
        Query(max_length=255, description="Its region (default: where the resource is known)."),
    ] = None,
) -> Any:
    """Queue the resource a notification is about for an event-driven refresh."""
    processor = getattr(request.app.state, "events", None)
    if processor is None:
        return error_response(
            503, "event processing is not running here: push events to `stackfleet serve`"
        )
    try:
        notification = parse_notification(body.model_dump(by_alias=True), cloud, region or "")
    except NotificationFormatError as exc:
        field = str(exc).split(":", 1)[0] if ":" in str(exc) else None
        return error_response(400, str(exc), field if field in ("event_type", "payload") else None)
    event = notification.resource_event()
    if event is None:
        processor.stats["notifications"] += 1
        processor.stats["ignored"] += 1
        return JSONResponse(
            EventAccepted(
                accepted=False,
                event_type=notification.event_type,
                cloud=cloud,
                region=region or "",
                reason="not about a resource StackFleet keeps (see docs/events.md)",
            ).model_dump(),
            status_code=200,
        )
    processor.stats["notifications"] += 1
    if not processor.submit(event):
        return error_response(503, "the event queue is full; the next collection pass catches up")
    return EventAccepted(
        accepted=True,
        event_type=event.event_type,
        kind=event.kind,
        id=event.resource_id,
        cloud=cloud,
        region=event.region,
        deleted=event.deleted,
    )


class EventStatus(BaseModel):
    """The daemon's event processing: counters and the newest outcomes."""

    pending: int = Field(description="Resources waiting to be re-read (or being re-read).")
    counters: dict[str, int] = Field(
        description="notifications, ignored, queued, merged, dropped, refreshes, "
        "refresh_errors, policy_runs (since the daemon started)."
    )
    recent: list[dict[str, Any]] = Field(description="The newest outcomes, newest first.")


@router.get(
    "/v1/events",
    response_model=EventStatus,
    tags=["events"],
    responses={503: {"model": ErrorResponse}},
)
def event_status(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200, description="How many outcomes.")] = 50,
) -> Any:
    """What event-driven refresh has done: counters and the newest outcomes (resource,
    event types, re-read result, policies run)."""
    processor = getattr(request.app.state, "events", None)
    if processor is None:
        return error_response(
            503, "event processing is not running here: it runs in `stackfleet serve`"
        )
    recent = list(processor.recent)[-limit:]
    return EventStatus(
        pending=processor.pending,
        counters=dict(processor.stats),
        recent=[outcome.summary() for outcome in reversed(recent)],
    )
