"""Keystone token authentication and authorization for the REST API.

Off by default (the API is open, as before, and `stackfleet serve` warns so). With
`stackfleet serve --auth-cloud NAME`, every request that changes something (every
method but GET, HEAD and OPTIONS) must carry a Keystone token in `X-Auth-Token`;
StackFleet validates it with `GET /v3/auth/tokens` (`X-Subject-Token`) through the
identity proxy of that cloud's openstacksdk connection, and keeps a valid token's
user, project and roles until it expires or for 5 minutes, whichever is sooner.

Who may do what:

* operators — tokens with the `admin` role (project or system scope) — everything;
* a project `member` only `POST /v1/leases/{resource}/extend`, and only for resources
  of the token's project (the route checks that against the lease records);
* anything else is 403; a missing, unknown or expired token is 401.

With auth on, the audit actor of a write is the token's user name; an `actor` in the
request body is ignored. With `read="authenticated"`, reads need a valid token too
(any role), except /healthz, /metrics and the API's own docs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stackfleet.api.errors import error_response
from stackfleet.core.errors import CloudError, StackFleetError

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Auth-Token"
CACHE_SECONDS = 300.0
MAX_CACHED = 10_000
OPERATOR_ROLE = "admin"
MEMBER_ROLE = "member"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# open even when reads need a token: probes, Prometheus scrapes, the API's own docs
ALWAYS_OPEN = frozenset({"/healthz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
# what a project member may do: extend a lease (the route checks the project)
MEMBER_WRITES = (("POST", re.compile(r"^/v1/leases/[^/]+/extend$")),)

ReadMode = Literal["open", "authenticated"]


class Forbidden(StackFleetError):
    """The caller's token does not allow this request."""

    http_status = 403


@dataclass(frozen=True)
class Identity:
    """Who a valid token speaks for."""

    user_id: str
    user_name: str
    project_id: str | None
    roles: frozenset[str]
    system: bool
    expires_at: datetime | None

    @property
    def operator(self) -> bool:
        """An operator: the `admin` role, project- or system-scoped."""
        return OPERATOR_ROLE in self.roles

    @property
    def member(self) -> bool:
        """A project member (project-scoped, with the `member` role)."""
        return self.project_id is not None and MEMBER_ROLE in self.roles


def identity_from_token(body: dict[str, Any]) -> Identity:
    """The identity in a Keystone `GET /v3/auth/tokens` answer (`{"token": {...}}`)."""
    token = body.get("token") or {}
    user = token.get("user") or {}
    project = token.get("project") or {}
    expires = token.get("expires_at")
    expires_at = None
    if expires:
        expires_at = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
    return Identity(
        user_id=str(user.get("id") or ""),
        user_name=str(user.get("name") or user.get("id") or ""),
        project_id=project.get("id"),
        roles=frozenset(str(r.get("name", "")).lower() for r in token.get("roles") or []),
        system=bool(token.get("system")),
        expires_at=expires_at,
    )


class KeystoneAuth:
    """Validates callers' tokens against Keystone through `conn` (an authenticated
    openstacksdk connection, normally the admin cloud StackFleet collects with) and
    caches valid ones."""

    def __init__(
        self,
        conn: Any,
        read: ReadMode = "open",
        cache_seconds: float = CACHE_SECONDS,
        cloud: str = "",
    ) -> None:
        self.conn = conn
        self.read = read
        self.cache_seconds = cache_seconds
        self.cloud = cloud
        self._cache: dict[str, tuple[Identity, float]] = {}
        self._lock = threading.Lock()

    def identify(self, token: str) -> Identity | None:
        """The identity `token` speaks for, or None when Keystone does not know it (or it
        expired). Raises CloudError when Keystone cannot be asked."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token)
            if cached is not None:
                if cached[1] > now:
                    return cached[0]
                del self._cache[token]
        try:
            response = self.conn.identity.get(
                "/auth/tokens",
                headers={"X-Subject-Token": token},
                params={"nocatalog": "1"},
                raise_exc=False,
            )
        except Exception as exc:  # keystoneauth's connection errors and the like
            raise CloudError(f"cannot validate the token with Keystone: {exc}") from exc
        if response.status_code in (401, 403, 404):
            return None
        if response.status_code != 200:
            raise CloudError(
                f"Keystone answered {response.status_code} validating a token: "
                f"{response.text[:200]}"
            )
        identity = identity_from_token(response.json())
        lifetime = self.cache_seconds
        if identity.expires_at is not None:
            left = (identity.expires_at - datetime.now(UTC)).total_seconds()
            if left <= 0:
                return None
            lifetime = min(lifetime, left)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._prune(now)
            self._cache[token] = (identity, now + lifetime)
        return identity

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, until) in self._cache.items() if until <= now]:
            del self._cache[key]
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()


def _member_may(method: str, path: str) -> bool:
    return any(method == m and pattern.match(path) for m, pattern in MEMBER_WRITES)


def _unauthorized(message: str) -> Response:
    response = error_response(401, message)
    response.headers["WWW-Authenticate"] = "Keystone"
    return response


def install(app: FastAPI, auth: KeystoneAuth | None) -> None:
    """Check tokens on `app`'s requests when `auth` is given (else leave it open)."""
    app.state.auth = auth
    if auth is None:
        return

    @app.middleware("http")
    async def authenticate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.identity = None
        method, path = request.method.upper(), request.url.path
        writing = method not in READ_METHODS
        if not writing and (auth.read == "open" or path in ALWAYS_OPEN):
            return await call_next(request)
        token = request.headers.get(TOKEN_HEADER)
        if not token:
            return _unauthorized(
                f"authentication required: send a Keystone token in {TOKEN_HEADER}"
            )
        try:
            identity = await run_in_threadpool(auth.identify, token)
        except CloudError as exc:
            log.error("token validation failed: %s", exc)
            return error_response(502, "cannot validate the token: Keystone did not answer")
        if identity is None:
            return _unauthorized("the token is invalid or expired")
        request.state.identity = identity
        allowed = identity.operator or (identity.member and _member_may(method, path))
        if writing and not allowed:
            return error_response(
                403,
                f"user {identity.user_name} may not {method} {path}: it needs the "
                f"{OPERATOR_ROLE} role",
            )
        return await call_next(request)


def identity(request: Request) -> Identity | None:
    """The authenticated caller of `request` (None when auth is off or not asked)."""
    found: Identity | None = getattr(request.state, "identity", None)
    return found


def actor(request: Request, claimed: str) -> str:
    """Who a write is recorded as: the token's user when authenticated, else the actor
    the request body claims."""
    caller = identity(request)
    return caller.user_name if caller is not None else claimed


def require_projects(request: Request, project_ids: Iterable[str | None], what: str) -> None:
    """Raise Forbidden unless the caller is an operator or every project in
    `project_ids` is the caller's own (a no-op when auth is off)."""
    caller = identity(request)
    if caller is None or caller.operator:
        return
    others = {p for p in project_ids if p != caller.project_id}
    if others:
        raise Forbidden(
            f"user {caller.user_name} may only act on resources of project "
            f"{caller.project_id}; {what} belongs to another project"
        )
