"""Routes of the dashboard and of the API's docs pages.

The dashboard is a single page: every /ui/... path answers the same HTML shell, and its
router (static/app/router.js) picks the page module from the path, so a new page is a
new module, not a new route here. The shell holds no data: the page's scripts read the
API with the visitor's token, so the shell and its assets are public (rbac.py) while
every read and write keeps its own rule.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from stackfleet import __version__

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
STATIC_URL = "/ui/static"
SWAGGER_JS = f"{STATIC_URL}/vendor/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = f"{STATIC_URL}/vendor/swagger-ui/swagger-ui.css"
FAVICON = f"{STATIC_URL}/app/favicon.svg"
REDOC_JS = f"{STATIC_URL}/vendor/redoc/redoc.standalone.js"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
# the shell loads only this origin's scripts; styles may be set inline (uPlot sizes
# its canvas through element styles)
SHELL_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# the docs pages: FastAPI's HTML starts Swagger UI / Redoc from an inline script, Redoc
# runs its search in a blob: worker; nothing may come from another host (Redoc's
# footer logo would come from its CDN: refused, so no request leaves the machine)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MISSING_VENDOR = (
    "the dashboard's bundled browser assets are missing ({}): run web/build-assets "
    "(scripts/bootstrap does) before installing the package"
)


def vendor_versions() -> dict[str, str]:
    """The bundled third-party assets and their versions ({} when not built)."""
    try:
        loaded: dict[str, str] = json.loads((VENDOR_DIR / "versions.json").read_text())
    except (OSError, ValueError):
        return {}
    return loaded


@cache
def shell_html() -> str:
    """The dashboard's HTML shell, with the version in its asset URLs (a new release
    is never served a cached old script)."""
    text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return text.replace("{{version}}", __version__)


def install(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve the dashboard (/ui), its assets (/ui/static) and the docs pages (/docs,
    /redoc) on `app`, whose own FastAPI docs URLs must be off."""
    if not (VENDOR_DIR / "versions.json").is_file():
        log.warning(MISSING_VENDOR.format(VENDOR_DIR))
    title = f"{app.title} API"
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="ui-static")

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui", include_in_schema=False)
    @app.get("/ui/{page:path}", include_in_schema=False)
    def dashboard(page: str = "") -> Response:
        headers = {
            "Content-Security-Policy": SHELL_CSP,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        return HTMLResponse(shell_html(), headers=headers)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> Response:
        return _docs_page(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{title} (Swagger UI)",
                swagger_js_url=SWAGGER_JS,
                swagger_css_url=SWAGGER_CSS,
                swagger_favicon_url=FAVICON,
                oauth2_redirect_url=OAUTH2_REDIRECT,
            ),
            "swagger-ui",
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    def swagger_ui_redirect() -> Response:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> Response:
        return _docs_page(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{title} (ReDoc)",
                redoc_js_url=REDOC_JS,
                redoc_favicon_url=FAVICON,
                with_google_fonts=False,
            ),
            "redoc",
        )


def _docs_page(page: HTMLResponse, folder: str) -> Response:
    """A docs page, or a 503 saying how to build its assets when they are missing (a
    page that would load nothing is worse than a message)."""
    if not (VENDOR_DIR / folder).is_dir():
        message: dict[str, Any] = {
            "error": {"code": 503, "message": MISSING_VENDOR.format(VENDOR_DIR / folder)}
        }
        return Response(json.dumps(message), status_code=503, media_type="application/json")
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
