"""Fault injection and request counting for the simulated cloud.

`FaultMiddleware` wraps the simulator's ASGI app. For every API request it applies the
`FaultRule`s whose method and path pattern match, in this order: added latency, a hang
(no answer until the client hangs up), then an injected error (HTTP 500/503 with the
error body the real service sends), else the real answer, with list pages optionally
truncated (next links dropped, items cut). It also counts requests per method and route
template ("GET /RegionOne/compute/v2.1/servers/detail").

Rules are set when the simulator starts (`FaultSettings(rules=...)`, `parse_fault_spec`
for the command line) and changed at runtime through the control routes:

    GET    /_sim/faults            the active rules
    PUT    /_sim/faults            replace them: {"faults": [rule, ...]}
    POST   /_sim/faults            add one rule (returns it with its id)
    DELETE /_sim/faults            remove all
    DELETE /_sim/faults/{id}       remove one
    GET    /_sim/requests          request counts: {"requests": {"GET /...": n}, "total": n}
    DELETE /_sim/requests          reset the counts
    GET    /_sim/ground-truth      CloudState.ground_truth
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stackfleet.simulator.hosts import HostControl, host_routes
from stackfleet.simulator.http import ApiError, empty_response, json_response, read_json

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator

CONTROL_PREFIX = "/_sim"
# answers kept per URL for stale reads
KEPT_ANSWERS = 4


class FaultRule(BaseModel):
    """One fault: which requests it hits and what it does to them."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    method: str = Field(default="*", description="HTTP method, or * for any")
    path: str = Field(description="regular expression searched in the request path")
    query: str | None = Field(
        default=None,
        description="regular expression searched in the query string (e.g. `marker=`: "
        "only the pages after the first)",
    )
    latency_ms: float = Field(default=0.0, ge=0, description="delay added before answering")
    hang: bool = Field(
        default=False,
        description="never answer: the request waits until the client gives up "
        "(a hung endpoint, to test timeouts)",
    )
    error_rate: float = Field(
        0.0, ge=0, le=1, description="share of requests answered with an error"
    )
    fail_always: bool = Field(
        default=False, description="answer every matching request with an error"
    )
    error_status: int = Field(
        default=503, description="status of injected errors: 500, 502, 503, 504 or 409"
    )
    drop_next_link: bool = Field(
        default=False, description="remove the next-page link of list answers"
    )
    max_items: int | None = Field(
        default=None, ge=0, description="cut list answers to this many items"
    )
    repeat_page: bool = Field(
        default=False,
        description="ignore the marker of list calls: serve the first page again (a caching "
        "proxy keying on the path only)",
    )
    stale: bool = Field(
        default=False,
        description="answer a GET with an earlier answer to the same URL (a lagging "
        "replica or cache); needs FaultSettings.keep_answers",
    )
    stale_by: int = Field(
        default=1, ge=1, le=KEPT_ANSWERS, description="stale: how many answers back"
    )
    times: int | None = Field(
        None, ge=1, description="apply to this many matching requests, then expire"
    )

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("path", "query")
    @classmethod
    def _regex(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid {info.field_name} pattern {value!r}: {exc}") from exc
        return value

    @field_validator("error_status")
    @classmethod
    def _server_error(cls, value: int) -> int:
        if value not in (409, 500, 502, 503, 504):
            raise ValueError("error_status must be 409, 500, 502, 503 or 504")
        return value

    def matches(self, method: str, path: str, query: str = "") -> bool:
        return (
            self.method in ("*", method)
            and re.search(self.path, path) is not None
            and (self.query is None or re.search(self.query, query) is not None)
        )

    @property
    def truncates(self) -> bool:
        return self.drop_next_link or self.max_items is not None


@dataclass
class Mutation:
    """One mutating API request (POST, PUT, PATCH, DELETE) as the simulator received it,
    with the state of the resource it addresses just before it was handled: the ground
    truth to judge an action by (FaultSettings.record_mutations)."""

    method: str
    path: str
    body: Any
    # the collection of RegionState holding the resource ("servers", "floatingips", ...)
    # and a deep copy of the resource before the request; None when the path names none
    collection: str | None
    before: dict[str, Any] | None
    status: int = 0
    # an injected fault answered instead of the service
    injected: bool = False


class FaultSettings:
    """The active fault rules of one simulator (thread-safe; the control routes and
    tests change them while requests are served)."""

    def __init__(self, rules: Iterable[FaultRule] = (), seed: int = 0) -> None:
        self._rules: list[FaultRule] = list(rules)
        self._remaining: dict[str, int] = {r.id: r.times for r in self._rules if r.times}
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        # keep the newest 200 answer of every GET (by path and query) for `stale` rules
        self.keep_answers = False
        self._answers: dict[str, deque[tuple[dict[str, Any], bytes]]] = {}
        # record every mutating API request with its resource's state before it
        self.record_mutations = False
        self.mutations: list[Mutation] = []
        # rule id -> how many answers the rule changed (an error, a delay, a page cut,
        # repeated or served stale); a rule that matched but changed nothing is not hit
        self.hits: dict[str, int] = {}

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def replace(self, rules: Iterable[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)
            self._remaining = {r.id: r.times for r in self._rules if r.times}

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
            if rule.times:
                self._remaining[rule.id] = rule.times
        return rule

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            self._remaining.pop(rule_id, None)
            return len(self._rules) != before

    def clear(self) -> None:
        self.replace(())

    def take(self, method: str, path: str, query: str = "") -> list[FaultRule]:
        """The rules that apply to this request, using up one of each rule's `times`."""
        with self._lock:
            matched = [r for r in self._rules if r.matches(method, path, query)]
            for rule in matched:
                if rule.id in self._remaining:
                    self._remaining[rule.id] -= 1
                    if self._remaining[rule.id] <= 0:
                        self._rules.remove(rule)
                        del self._remaining[rule.id]
            return matched

    def roll(self, rate: float) -> bool:
        with self._lock:
            return self._random.random() < rate

    def answer(self, url: str, back: int = 1) -> tuple[dict[str, Any], bytes] | None:
        """The answer `url` got `back` answers ago (1: the newest kept), if kept."""
        with self._lock:
            kept = self._answers.get(url)
            return kept[-back] if kept and len(kept) >= back else None

    def keep_answer(self, url: str, start: dict[str, Any], body: bytes) -> None:
        with self._lock:
            self._answers.setdefault(url, deque(maxlen=KEPT_ANSWERS)).append((start, body))

    def hit(self, rule: FaultRule) -> None:
        with self._lock:
            self.hits[rule.id] = self.hits.get(rule.id, 0) + 1

    def add_mutation(self, mutation: Mutation) -> None:
        with self._lock:
            self.mutations.append(mutation)

    def take_mutations(self) -> list[Mutation]:
        """The mutations recorded since the last call (and forget them)."""
        with self._lock:
            taken, self.mutations = self.mutations, []
            return taken


def parse_fault_spec(spec: str) -> FaultRule:
    """A rule from the compact command-line form ``[METHOD ]PATH_REGEX[;key=value...]``,
    e.g. ``GET /servers/detail;error_rate=0.3;error_status=500`` or
    ``/v2.0/ports;latency_ms=200``. Raises ValueError naming the problem."""
    head, *options = [part.strip() for part in spec.split(";")]
    method, _, path = head.partition(" ")
    if not path:
        method, path = "*", head
    fields: dict[str, Any] = {"method": method, "path": path.strip()}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            # bare flags: fail_always, drop_next_link
            fields[key.strip()] = True
            continue
        fields[key.strip()] = value.strip()
    try:
        return FaultRule(**fields)
    except ValidationError as exc:
        raise ValueError(f"invalid fault {spec!r}: {exc.errors()[0]['msg']}") from exc


# -- error bodies, as each service writes them -----------------------------------------

_REASONS = {
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def service_of(path: str) -> str:
    """The service prefix (``identity``, ``compute``, ``networking``, ...) of a path."""
    parts = path.strip("/").split("/")
    if parts and parts[0] == "identity":
        return "identity"
    return parts[1] if len(parts) > 1 else ""


def error_response(path: str, status: int) -> Response:
    """The answer the service under `path` gives when it fails with `status`."""
    reason = _REASONS.get(status, "Error")
    service = service_of(path)
    message = f"Simulated fault: the service answered {status} {reason}."
    if status == 409:
        return conflict_response(path)
    if service == "identity":
        return json_response(
            {"error": {"code": status, "title": reason, "message": message}}, status
        )
    if service in ("compute", "volume"):
        # nova/api/openstack/wsgi.py Fault: 503 -> serviceUnavailable, else computeFault
        key = "serviceUnavailable" if status == 503 else "computeFault"
        return json_response({key: {"code": status, "message": message}}, status)
    if service == "networking":
        error_type = "HTTPServiceUnavailable" if status == 503 else "HTTPInternalServerError"
        return json_response(
            {"NeutronError": {"type": error_type, "message": message, "detail": ""}}, status
        )
    if service == "placement":
        return json_response(
            {
                "errors": [
                    {
                        "status": status,
                        "title": reason,
                        "detail": message,
                        "request_id": f"req-{uuid.uuid4()}",
                    }
                ]
            },
            status,
        )
    if service == "baremetal":
        fault = {"faultstring": message, "faultcode": "Server", "debuginfo": None}
        return json_response({"error_message": json.dumps(fault)}, status)
    # Glance (webob) and anything else: the plain HTML page of the error.
    body = (
        f"<html>\n <head>\n  <title>{status} {reason}</title>\n </head>\n <body>\n"
        f"  <h1>{status} {reason}</h1>\n  {message}<br /><br />\n\n\n\n </body>\n</html>"
    )
    return Response(body, status_code=status, media_type="text/html")


def conflict_response(path: str) -> Response:
    """A 409 as the service under `path` answers a request that conflicts with the
    resource's state (an operation in progress)."""
    message = "Simulated fault: the resource is busy (another operation is in progress)."
    service = service_of(path)
    if service in ("compute", "volume"):
        return json_response({"conflictingRequest": {"code": 409, "message": message}}, 409)
    if service == "networking":
        return json_response(
            {"NeutronError": {"type": "Conflict", "message": message, "detail": ""}}, 409
        )
    if service == "placement":
        return json_response(
            {"errors": [{"status": 409, "title": "Conflict", "detail": message}]}, 409
        )
    return json_response({"error": {"code": 409, "title": "Conflict", "message": message}}, 409)


# -- truncation of list pages -------------------------------------------------------------


def truncate_page(body: Any, drop_next_link: bool, max_items: int | None) -> Any:
    """A list answer with its next link removed and/or its items cut.

    Knows every pagination style the simulated services use: ``<collection>_links``
    lists (Nova, Neutron, Cinder), a top-level ``next`` (Glance, Ironic) and Keystone's
    ``links.next``."""
    if not isinstance(body, dict):
        return body
    for key, value in list(body.items()):
        if max_items is not None and isinstance(value, list) and not key.endswith("_links"):
            body[key] = value[:max_items]
        if not drop_next_link:
            continue
        if key.endswith("_links") and isinstance(value, list):
            kept = [link for link in value if link.get("rel") != "next"]
            if kept:
                body[key] = kept
            else:
                del body[key]
        elif key == "next":
            del body[key]
        elif key == "links" and isinstance(value, dict) and value.get("next"):
            body[key] = {**value, "next": None}
    return body


# -- request templates --------------------------------------------------------------------

_ID_SEGMENT = re.compile(
    r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}|\d+)$"
)


def route_template(scope: Scope) -> str:
    """The request path with its variable parts named: the matched route's own template
    when a route matched, else ids (UUIDs, hex ids, integers) replaced by ``{id}``."""
    route = scope.get("route")
    if isinstance(route, Route):
        return scope.get("root_path", "") + route.path
    segments = scope["path"].split("/")
    return "/".join("{id}" if _ID_SEGMENT.match(s) else s for s in segments)


async def _until_disconnected(receive: Receive) -> None:
    """Read the request until the client hangs up, and answer nothing."""
    while (await receive())["type"] != "http.disconnect":
        pass


class FaultMiddleware:
    """ASGI middleware applying `sim.faults` and counting requests into
    `sim.request_counts`. Control routes (/_sim) are neither faulted nor counted."""

    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        faults = self.sim.faults
        rules = faults.take(method, path, scope.get("query_string", b"").decode())
        mutation: Mutation | None = None
        if faults.record_mutations and method in MUTATING:
            mutation, receive = await self._recorded(scope, receive)
            send = _status_into(mutation, send)
        try:
            latency = sum(rule.latency_ms for rule in rules)
            if latency:
                for rule in rules:
                    if rule.latency_ms:
                        faults.hit(rule)
                await asyncio.sleep(latency / 1000)
            if any(rule.hang for rule in rules):
                await _until_disconnected(receive)
                return
            for rule in rules:
                if rule.fail_always or (rule.error_rate and self.sim.faults.roll(rule.error_rate)):
                    if mutation is not None:
                        mutation.injected = True
                    faults.hit(rule)
                    await error_response(path, rule.error_status)(scope, receive, send)
                    return
            url = f"{path}?{scope.get('query_string', b'').decode()}"
            repeating = [rule for rule in rules if rule.repeat_page]
            repeated: list[FaultRule] = []
            if method == "GET" and repeating:
                query = parse_qsl(scope.get("query_string", b"").decode())
                if any(k == "marker" for k, _ in query):
                    repeated = repeating
                    query = [(k, v) for k, v in query if k != "marker"]
                    scope = {**scope, "query_string": urlencode(query).encode()}
            stale = [rule for rule in rules if rule.stale]
            kept = (
                faults.answer(url, max(r.stale_by for r in stale))
                if method == "GET" and stale
                else None
            )
            # a repeated page is hit only when it is what the client gets (a stale
            # answer to the same URL replaces it)
            if kept is None:
                for rule in repeated:
                    faults.hit(rule)
            if kept is not None:
                fresh = _Buffer()
                await self.app(scope, receive, fresh)
                if fresh.body != kept[1]:
                    for rule in stale:
                        faults.hit(rule)
                await send(kept[0])
                await send({"type": "http.response.body", "body": kept[1]})
                return
            if method == "GET" and faults.keep_answers:
                send = _kept_into(faults, url, send)
            truncating = [rule for rule in rules if rule.truncates]
            if truncating:
                await self._truncated(scope, receive, send, truncating)
            else:
                await self.app(scope, receive, send)
        finally:
            key = f"{method} {route_template(scope)}"
            counts = self.sim.request_counts
            counts[key] = counts.get(key, 0) + 1

    async def _recorded(self, scope: Scope, receive: Receive) -> tuple[Mutation, Receive]:
        """The Mutation record of a request (its body read ahead), and a `receive`
        replaying the body to the app."""
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        collection, before = resource_at(self.sim, scope["path"])
        mutation = Mutation(scope["method"], scope["path"], body, collection, before)
        self.sim.faults.add_mutation(mutation)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        return mutation, replay

    async def _truncated(
        self, scope: Scope, receive: Receive, send: Send, rules: list[FaultRule]
    ) -> None:
        drop_next = any(rule.drop_next_link for rule in rules)
        limits = [rule.max_items for rule in rules if rule.max_items is not None]
        max_items = min(limits) if limits else None
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            assert start is not None
            body = b"".join(chunks)
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
            ]
            if start["status"] == 200:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                if parsed is not None:
                    before = json.dumps(parsed, separators=(",", ":"))
                    cut = json.dumps(
                        truncate_page(parsed, drop_next, max_items), separators=(",", ":")
                    )
                    if cut != before:
                        for rule in rules:
                            self.sim.faults.hit(rule)
                    body = cut.encode()
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffer)


MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _Buffer:
    """A `send` that keeps the answer instead of sending it."""

    def __init__(self) -> None:
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def _status_into(mutation: Mutation, send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            mutation.status = message["status"]
        await send(message)

    return sending


def _kept_into(faults: FaultSettings, url: str, send: Send) -> Send:
    """A `send` that also keeps a 200 answer of `url` for later stale reads."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def sending(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body" and start is not None:
            chunks.append(message.get("body", b""))
            if not message.get("more_body") and start["status"] == 200:
                faults.keep_answer(url, dict(start), b"".join(chunks))
        await send(message)

    return sending


def resource_at(sim: Simulator, path: str) -> tuple[str | None, dict[str, Any] | None]:
    """The RegionState collection and a deep copy of the resource a request path names
    (its last id segment that is a resource of the region), or (None, None)."""
    parts = path.strip("/").split("/")
    region = sim.state.regions.get(parts[0]) if parts else None
    if region is None:
        return None, None
    for segment in reversed(parts[2:]):
        for name, value in vars(region).items():
            if isinstance(value, dict) and segment in value and isinstance(value[segment], dict):
                with sim.state.lock:
                    return name, deepcopy(value[segment])
    return None, None


# -- control routes -----------------------------------------------------------------------


def _bad_request(message: str) -> ApiError:
    return ApiError(400, {"error": {"code": 400, "title": "Bad Request", "message": message}})


def _rules_from(body: Any) -> list[FaultRule]:
    items = body.get("faults") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise _bad_request('expected {"faults": [rule, ...]}')
    try:
        return [FaultRule(**item) for item in items]
    except (ValidationError, TypeError) as exc:
        raise _bad_request(f"invalid fault rule: {exc}") from exc


def control_routes(sim: Simulator) -> list[BaseRoute]:
    """The /_sim control routes of `sim`, as one Mount."""
    if sim.hosts is None:
        sim.hosts = HostControl(sim.state.regions)
    hosts: HostControl = sim.hosts

    def listing() -> Response:
        return json_response({"faults": [rule.model_dump() for rule in sim.faults.rules]})

    async def get_faults(request: Request) -> Response:
        return listing()

    async def put_faults(request: Request) -> Response:
        sim.faults.replace(_rules_from(await read_json(request)))
        return listing()

    async def post_fault(request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, dict) and "fault" in body:
            body = body["fault"]
        try:
            rule = FaultRule(**body) if isinstance(body, dict) else None
        except ValidationError as exc:
            raise _bad_request(f"invalid fault rule: {exc}") from exc
        if rule is None:
            raise _bad_request('expected {"fault": rule}')
        sim.faults.add(rule)
        return json_response({"fault": rule.model_dump()}, 201)

    async def delete_faults(request: Request) -> Response:
        sim.faults.clear()
        return empty_response(204)

    async def delete_fault(request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        if not sim.faults.remove(rule_id):
            raise ApiError(
                404,
                {"error": {"code": 404, "title": "Not Found", "message": f"no fault {rule_id}"}},
            )
        return empty_response(204)

    async def get_requests(request: Request) -> Response:
        counts = dict(sorted(sim.request_counts.items()))
        return json_response({"requests": counts, "total": sum(counts.values())})

    async def delete_requests(request: Request) -> Response:
        sim.request_counts.clear()
        return empty_response(204)

    async def put_action_delay(request: Request) -> Response:
        body = await read_json(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise _bad_request('expected {"seconds": <number >= 0>}')
        sim.action_delay = float(seconds)
        return json_response({"action_delay": sim.action_delay})

    async def ground_truth(request: Request) -> Response:
        return json_response({"ground_truth": sim.state.ground_truth})

    return [
        Mount(
            CONTROL_PREFIX,
            routes=[
                Route("/faults", get_faults, methods=["GET"]),
                Route("/faults", put_faults, methods=["PUT"]),
                Route("/faults", post_fault, methods=["POST"]),
                Route("/faults", delete_faults, methods=["DELETE"]),
                Route("/faults/{rule_id}", delete_fault, methods=["DELETE"]),
                Route("/requests", get_requests, methods=["GET"]),
                Route("/requests", delete_requests, methods=["DELETE"]),
                Route("/ground-truth", ground_truth, methods=["GET"]),
                Route("/action-delay", put_action_delay, methods=["PUT"]),
                *host_routes(hosts),
            ],
        )
    ]
