"""Cross-site request protection: a browser page of another site must not make a
visitor's browser write to the API (approve an action, silence an alert) — with auth
off nothing else would stop a form posted from any web page to 127.0.0.1.

Browsers say where a request comes from: `Sec-Fetch-Site` (every current browser) and
`Origin` (on every cross-origin write). A write is refused with 403 when either says it
comes from another site. Clients that are not browsers (the CLI, curl, Prometheus,
Alertmanager, OpenStack services) send neither header and are not affected — the same
rule as Go's `http.CrossOriginProtection`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from stackfleet.api.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CrossSiteProtection:
    """ASGI middleware refusing cross-site browser writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            reason = cross_site(dict(scope.get("headers") or []))
            if reason:
                await error_response(403, f"cross-site request refused: {reason}")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def cross_site(headers: dict[bytes, bytes]) -> str | None:
    """Why a write with these headers comes from another site (None: it does not)."""
    fetch_site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
    if fetch_site:
        if fetch_site in ("same-origin", "none"):
            return None
        return f"Sec-Fetch-Site is {fetch_site}"
    origin = headers.get(b"origin", b"").decode("latin-1")
    if not origin:
        return None
    host = headers.get(b"host", b"").decode("latin-1").lower()
    if origin == "null" or urlsplit(origin).netloc.lower() != host:
        return f"Origin {origin} is not this API ({host or 'no Host header'})"
    return None
