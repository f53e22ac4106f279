"""StackFleet's REST API: the inventory, read-only, over HTTP, plus Prometheus /metrics.

`create_app(store)` builds one application over one store; it keeps no global state,
so several apps (tests, one per store) live side by side in one process. Handlers are
plain functions because the store is synchronous: FastAPI runs them in its thread pool.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from stackfleet import __version__, web
from stackfleet.api import (
    alerts,
    auth,
    campaigns,
    capacity,
    dashboard,
    events,
    hardware,
    health,
    infra,
    nodes,
    policies,
    rbac,
    reports,
    usage,
    workloads,
)
from stackfleet.api import jobs as jobs_api
from stackfleet.api.deps import CloudQuery, OffsetQuery, RegionQuery, StoreDep
from stackfleet.api.errors import document_errors, error_responses, install_error_handlers
from stackfleet.api.limits import RequestLimits
from stackfleet.api.metrics import exposition, make_registry
from stackfleet.api.models import (
    FieldInfo,
    Health,
    KindInfo,
    KindList,
    PassList,
    RelationInfo,
    ResourceDetail,
    ResourceKind,
    ResourcePage,
    ReverseRelationInfo,
    Summary,
)
from stackfleet.api.origin import CrossSiteProtection
from stackfleet.core.errors import InvalidQueryError, NotFoundError
from stackfleet.model import KINDS, Kind
from stackfleet.store import Store
from stackfleet.store.health import ping

log = logging.getLogger(__name__)

# Query parameters of GET /v1/resources that are not field filters.
RESERVED_PARAMETERS = frozenset({"kind", "cloud", "region", "limit", "offset", "include_deleted"})
MAX_LIMIT = 1000

JSON_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}

BASE_FIELD_DOCS = {
    "id": "The resource's id in its service (for some kinds a name StackFleet builds).",
    "name": "Its name (for some kinds a name StackFleet builds, e.g. binary@host).",
    "project_id": "The owning project, if the kind has one.",
    "status": "The kind's main state (server status, service up/down, provision state).",
}

DESCRIPTION = """\
The inventory of your OpenStack fleet, as StackFleet's collection passes last saw it.

Every error answers `{"error": {"code": <status>, "message": "...", "field": "..."}}`
(`field` only when one request parameter was wrong). List endpoints page with `limit`
and `offset` and give the next page's URL in `links.next`.
"""


router = APIRouter(responses=error_responses(500))


@router.get(
    "/healthz",
    response_model=Health,
    tags=["health"],
    responses={503: {"description": "The store does not answer."}},
)
def healthz(store: StoreDep) -> Any:
    """Whether the API is up and its store answers a query."""
    try:
        ping(store)
    except SQLAlchemyError as exc:
        log.warning("health check: the store did not answer: %s", exc)
        return JSONResponse(
            {
                "status": "error",
                "store": "error",
                "error": {"code": 503, "message": "the store does not answer a query"},
            },
            status_code=503,
        )
    return {"status": "ok", "store": "ok"}


@router.get(
    "/v1/resources",
    response_model=ResourcePage,
    tags=["inventory"],
    responses=error_responses(400),
)
def list_resources(
    request: Request,
    store: StoreDep,
    kind: Annotated[ResourceKind, Query(description="The resource kind to list.")],
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 50,
    offset: OffsetQuery = 0,
    include_deleted: Annotated[
        bool, Query(description="Include resources a complete pass no longer saw.")
    ] = False,
) -> Any:
    """Resources of one kind, filtered and paged, ordered by name then id.

    Every other query parameter filters on a field of the kind (see `GET /v1/kinds`),
    compared as the field's type: `status=ACTIVE&host=cmp1`, `vcpus=4`, `locked=true`.
    A list field matches when it contains the value (`tags=prod`); a dict field when it
    has the key (`metadata=owner`) or the key with that value (`metadata=owner=ops`).
    """
    filters = field_filters(request)
    project = project_scope(request, kind.value)
    if project is not None:
        hidden = sorted(rbac.hidden_fields(kind.value) & set(filters))
        if hidden:
            # filtering on a field it may not see would tell it the value
            raise auth.Forbidden(
                f"{kind.value} field {hidden[0]} is shown to administrators only: it needs "
                "a system-scoped token or the operator role"
            )
    items, total = store.list_resources(
        kind.value,
        filters=filters,
        cloud=cloud or None,
        region=region or None,
        include_deleted=include_deleted,
        limit=limit,
        offset=offset,
        visible_to=project,
    )
    if project is not None:
        items = [rbac.without_hidden(kind.value, item) for item in items]
    following = None
    if offset + len(items) < total:
        following = str(request.url.include_query_params(offset=offset + limit))
    return {
        "kind": kind.value,
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": items,
        "links": {"next": following},
    }


def field_filters(request: Request) -> dict[str, str]:
    """The field filters of a listing: every query parameter that is not reserved."""
    filters: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in RESERVED_PARAMETERS:
            continue
        if name in filters:
            raise InvalidQueryError(f"filter {name!r} is given more than once; give it once")
        filters[name] = value
    return filters


@router.get(
    "/v1/resources/{kind}/{resource_id:path}",
    # documented, not re-validated: the store's own key order (fields, then where and
    # when, then relations and changes) reads best
    response_model=None,
    tags=["inventory"],
    responses={200: {"model": ResourceDetail}, **error_responses(400, 404)},
)
def get_resource(
    request: Request,
    store: StoreDep,
    kind: Annotated[ResourceKind, Path(description="The resource kind.")],
    resource_id: Annotated[str, Path(description="The resource's id, or its unique name.")],
    cloud: CloudQuery = None,
    region: RegionQuery = None,
) -> Any:
    """One resource, with its relations (both directions) and its recent changes."""
    found = store.get_resource(kind.value, resource_id, cloud=cloud or None, region=region or None)
    project = project_scope(request, kind.value)
    if project is not None:
        if found.get("project_id") != project and not store.visible_to_project(found, project):
            raise NotFoundError(f"no {kind.value} {resource_id}")
        return project_view(store, found, project)
    return found


def project_view(store: Store, found: dict[str, Any], project: str) -> dict[str, Any]:
    """A resource as a project-scoped caller sees it: no administrator-only field (nor
    its history); among its relations only what the project may read itself — no
    fleet-wide resource (hypervisors, agents...), no other project's private one (the
    ports of other projects on a shared network)."""
    kind = found["kind"]
    hidden = rbac.hidden_fields(kind)
    view = rbac.without_hidden(kind, found)
    view["changes"] = [c for c in found.get("changes") or [] if c.get("field") not in hidden]

    def readable(related: dict[str, Any]) -> bool:
        if related.get("kind") not in rbac.RELATED_KINDS:
            return False
        if related.get("project_id") == project:
            return True
        if related["kind"] not in rbac.SHARED_KINDS:
            return False
        where = {"cloud": found["cloud"], "region": found["region"]}
        return store.visible_to_project({**related, **where}, project)

    view["relations"] = {
        name: [r for r in related if readable(r)]
        for name, related in (found.get("relations") or {}).items()
    }
    return view


def project_scope(request: Request, kind: str) -> str | None:
    """The project a project-scoped caller's inventory read is narrowed to (None: no
    narrowing); its token does not show fleet-wide kinds (hypervisors, services...)."""
    project = rbac.scope(request)
    if project is not None and kind not in rbac.VISIBLE_KINDS:
        raise auth.Forbidden(
            f"{kind} is fleet-wide: it needs a system-scoped token or the operator role"
        )
    return project


def kind_info(spec: Kind) -> KindInfo:
    """A kind's declaration as the API shows it."""
    fields = [
        FieldInfo(name=name, type="string", history=name == "status", doc=BASE_FIELD_DOCS[name])
        for name in ("id", "name", "project_id", "status")
    ]
    fields += [
        FieldInfo(name=f.name, type=JSON_TYPES.get(f.type, "string"), history=f.history, doc=f.doc)
        for f in spec.fields
    ]
    return KindInfo(
        name=spec.name,
        collection=spec.collection,
        service=spec.service,
        doc=spec.doc,
        fields=fields,
        relations=[
            RelationInfo(
                name=r.name,
                target=r.target,
                field=r.field,
                target_field=r.target_field,
                many=r.many,
                reverse=r.reverse,
            )
            for r in spec.relations
        ],
        reverse_relations=[
            ReverseRelationInfo(name=r.reverse, source=other.name, field=r.field)
            for other in KINDS.values()
            for r in other.relations
            if r.target == spec.name and r.reverse
        ],
    )


@router.get("/v1/kinds", response_model=KindList, tags=["model"])
def list_kinds() -> Any:
    """Every resource kind with its fields (and their types), relations and docs."""
    return {"kinds": [kind_info(spec) for spec in KINDS.values()]}


@router.get("/v1/summary", response_model=Summary, tags=["inventory"])
def summary(store: StoreDep, cloud: CloudQuery = None, region: RegionQuery = None) -> Any:
    """Hypervisors up/down, capacity and use, servers by status, services up/down."""
    return store.summary(cloud=cloud or None, region=region or None)


@router.get(
    "/v1/passes", response_model=PassList, tags=["inventory"], responses=error_responses(400)
)
def list_passes(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many passes.")] = 20,
    cloud: CloudQuery = None,
) -> Any:
    """Collection passes, newest first, each with how listing each kind went."""
    return {"passes": store.list_passes(limit=limit, cloud=cloud or None)}


@router.get(
    "/metrics",
    tags=["metrics"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    """The fleet's gauges in the Prometheus text format (or OpenMetrics when asked), read
    from the store at each scrape."""
    body, content_type = exposition(request.app.state.registry, request.headers.get("accept"))
    return Response(body, media_type=content_type)


class StackFleetAPI(FastAPI):
    """FastAPI with an OpenAPI document that says what the API really answers: request
    validation fails with 400 and the error shape, not FastAPI's 422."""

    def openapi(self) -> dict[str, Any]:
        schema = super().openapi()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault(
                        "400",
                        {
                            "description": "Bad Request",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                                }
                            },
                        },
                    )
        components = schema.get("components", {}).get("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        authenticator = getattr(self.state, "auth", None)
        # with any authenticator (Keystone or the local token) a write needs a token,
        # and a read that carries one is checked and may be refused (rbac.py)
        return document_errors(
            schema,
            auth_writes=authenticator is not None,
            auth_reads=authenticator is not None,
            open_paths=frozenset(
                path for (_method, path), rule in rbac.RULES.items() if rule is rbac.Rule.PUBLIC
            ),
        )


def create_app(
    store: Store,
    keystone: auth.Authenticator | None = None,
    jobs: jobs_api.JobsView | None = None,
    metrics: auth.MetricsAccess | None = None,
) -> FastAPI:
    """The API over `store`, with its own Prometheus registry. `keystone`: check
    Keystone tokens on writes (see api/auth.py); None leaves the API open. `jobs`: the
    daemon's job states for GET /v1/jobs and /metrics (None: no daemon, no jobs).
    `metrics`: who may scrape /metrics without a role (a scrape token, or anyone)."""
    app = StackFleetAPI(
        title="StackFleet",
        version=__version__,
        description=DESCRIPTION,
        # the docs pages come from the bundled assets (web/), not from a CDN
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.store = store
    app.state.registry = make_registry(store)
    install_error_handlers(app)
    app.add_middleware(RequestLimits)
    app.add_middleware(CrossSiteProtection)
    auth.install(app, keystone, metrics)
    app.include_router(router)
    infra.install(app)
    app.include_router(policies.router)
    app.include_router(alerts.router)
    app.include_router(reports.router)
    app.include_router(events.router)
    hardware.install(app)
    health.install(app)
    app.include_router(nodes.router)
    capacity.install(app)
    usage.install(app)
    jobs_api.install(app, jobs)
    dashboard.install(app)
    web.install(app)
    app.include_router(workloads.router)
    app.include_router(campaigns.router)
    return app
