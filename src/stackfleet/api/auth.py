"""Token authentication and authorization for the REST API.

Two kinds of token:

* Keystone's (`stackfleet serve --auth-cloud NAME`): validated with
  `GET /v3/auth/tokens` (`X-Subject-Token`) through the identity proxy of that cloud's
  openstacksdk connection; a valid token's user, scope and roles are kept until it
  expires or for 5 minutes, whichever is sooner.
* a local operator token (`serve`/`demo` without --auth-cloud): a random secret made
  at start and written to a file only the user can read (`LocalAuth`).

A token comes in `X-Auth-Token` or `Authorization: Bearer <token>`. What each caller
may do is the policy table of api/rbac.py (docs/security.md): operators (admin or the
operator role) everything, system readers every read, project readers and members
their own project's reads, members the extension of their project's leases. A
missing, unknown or expired token is 401, a role that does not allow the route 403.

With auth on, the audit actor of a write is the token's user name; an `actor` in the
request body is ignored. With `read="authenticated"`, reads need a valid token too,
except the public routes (/healthz, /metrics and the API's own docs).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stackfleet.api import rbac
from stackfleet.api.errors import error_response
from stackfleet.core.errors import CloudError, ConfigError, StackFleetError

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Auth-Token"
CACHE_SECONDS = 300.0
MAX_CACHED = 10_000
OPERATOR_ROLE = "admin"
MEMBER_ROLE = "member"
READ_METHODS = rbac.READ_METHODS
LOCAL_USER = "local-operator"

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
        """An operator: the `admin` role (or the operator role, set by the
        middleware), project- or system-scoped."""
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
        operator_role: str = rbac.DEFAULT_OPERATOR_ROLE,
    ) -> None:
        self.conn = conn
        self.read = read
        self.operator_role = operator_role.lower()
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


class Authenticator(Protocol):
    """What the middleware needs of a token checker (KeystoneAuth, LocalAuth)."""

    read: ReadMode
    operator_role: str

    def identify(self, token: str) -> Identity | None: ...


class LocalAuth:
    """One local operator token, for `serve`/`demo` without Keystone: whoever holds it
    (it is in a file only the user can read) is the operator."""

    def __init__(self, token: str, read: ReadMode = "open", source: str = "") -> None:
        self.token = token
        self.read = read
        # where the token was written (the dashboard's login prompt says so)
        self.source = source
        self.operator_role = rbac.DEFAULT_OPERATOR_ROLE
        self._identity = Identity(
            user_id=LOCAL_USER,
            user_name=LOCAL_USER,
            project_id=None,
            roles=frozenset({OPERATOR_ROLE}),
            system=True,
            expires_at=None,
        )

    def identify(self, token: str) -> Identity | None:
        if secrets.compare_digest(token.encode(), self.token.encode()):
            return self._identity
        return None


@dataclass
class MetricsAccess:
    """Who may scrape `/metrics` besides operators and system readers: anyone
    (`public`, `serve --metrics-public`), or whoever sends the token in `token_file`
    (`serve --metrics-token-file`: the file Prometheus reads with
    `authorization.credentials_file`). The file is read again when it changes, so a
    rotated token needs no restart."""

    public: bool = False
    token_file: Path | None = None
    _token: str | None = None
    _stamp: tuple[float, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def scrape_token(self) -> str | None:
        """The scrape token now in the file (None: no file, or empty)."""
        if self.token_file is None:
            return None
        try:
            info = self.token_file.stat()
        except OSError:
            return None
        stamp = (info.st_mtime, info.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._token = read_local_token(self.token_file)
                self._stamp = stamp
            return self._token

    def allows(self, token: str | None) -> bool:
        """Whether a scrape with `token` (None: none) is let in without a role."""
        if self.public:
            return True
        expected = self.scrape_token()
        return bool(token and expected) and secrets.compare_digest(
            str(token).encode(), str(expected).encode()
        )


def check_metrics_token_file(path: Path) -> None:
    """Raise ConfigError unless `path` holds a scrape token readable by this user only
    (it grants the metrics: a file others may read or write gives them away)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"--metrics-token-file: cannot read {path}: {exc}") from exc
    if mode & 0o022:
        raise ConfigError(
            f"--metrics-token-file: {path} may be written by others (mode {mode & 0o777:o}); "
            "chmod 600 or 640 it"
        )
    token = read_local_token(path)
    if not token or len(token) < 16:
        raise ConfigError(
            f"--metrics-token-file: {path} holds no token of at least 16 characters "
            "(e.g. openssl rand -hex 32 > FILE)"
        )


def write_local_token(path: Path) -> str:
    """Make a new random operator token and write it to `path`, readable and
    writable by the user only (0600; the file is replaced, never reused)."""
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token


def read_local_token(path: Path) -> str | None:
    """The local operator token in `path` (None when there is none)."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def request_token(request: Request) -> str | None:
    """The token a request carries: `X-Auth-Token`, else `Authorization: Bearer`."""
    token = request.headers.get(TOKEN_HEADER)
    if token:
        return token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _unauthorized(message: str) -> Response:
    response = error_response(401, message)
    response.headers["WWW-Authenticate"] = "Keystone"
    return response


def install(app: FastAPI, auth: Authenticator | None, metrics: MetricsAccess | None = None) -> None:
    """Check tokens on `app`'s requests against the policy table of api/rbac.py when
    `auth` is given (else leave the API open); `metrics`: who else may scrape
    /metrics (default: operators and system readers only)."""
    app.state.auth = auth
    if auth is None:
        return
    scrapers = metrics or MetricsAccess()

    @app.middleware("http")
    async def authenticate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.identity = None
        request.state.project_scope = None
        method, path = request.method.upper(), request.url.path
        rule = rbac.rule_for(method, path)
        if rule is rbac.Rule.PUBLIC:
            return await call_next(request)
        token = request_token(request)
        if rule is rbac.Rule.METRICS and scrapers.allows(token):
            return await call_next(request)
        if not token:
            if method in READ_METHODS and auth.read == "open" and rule is not rbac.Rule.METRICS:
                return await call_next(request)  # anonymous reads: open, unfiltered
            return _unauthorized(
                f"authentication required: send a token in {TOKEN_HEADER} "
                "(or Authorization: Bearer)"
            )
        try:
            identity = await run_in_threadpool(auth.identify, token)
        except CloudError as exc:
            log.error("token validation failed: %s", exc)
            return error_response(502, "cannot validate the token: Keystone did not answer")
        if identity is None:
            return _unauthorized("the token is invalid or expired")
        role = rbac.role_of(identity, auth.operator_role)
        if role is rbac.Role.OPERATOR and not identity.operator:
            # the operator role counts as admin everywhere (Identity.operator)
            identity = replace(identity, roles=identity.roles | {OPERATOR_ROLE})
        request.state.identity = identity
        decision = rbac.decide(rule, role)
        if decision is rbac.Decision.DENY:
            return error_response(
                403,
                f"user {identity.user_name} may not {method} {path}: " + rbac.denial(rule, role),
            )
        if decision is rbac.Decision.FILTER:
            request.state.project_scope = identity.project_id
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
