"""How the API answers errors: one JSON shape for every failure,
``{"error": {"code": <HTTP status>, "message": "...", "field": "..."}}``, and never a
traceback. StackFleet's typed errors map to statuses here; validation errors name the
parameter that was wrong."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from stackfleet.core.errors import (
    CloudError,
    ConfigError,
    ConflictError,
    InvalidQueryError,
    NotFoundError,
    StackFleetError,
)

log = logging.getLogger(__name__)

# Most specific class first is not needed: the exception's MRO is walked in order.
STATUS_BY_ERROR: dict[type[StackFleetError], int] = {
    NotFoundError: 404,
    InvalidQueryError: 400,
    # valid, but the record's state does not allow it (already decided, at its cap)
    ConflictError: 409,
    # the cloud behind us failed, not the caller's request
    CloudError: 502,
    # a broken server configuration is not the caller's fault
    ConfigError: 500,
    # other user-facing errors describe a request StackFleet cannot carry out
    StackFleetError: 400,
}


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: int
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


def error_response(status: int, message: str, field: str | None = None) -> JSONResponse:
    """A JSON error response in the API's one error shape."""
    detail = ErrorDetail(code=status, message=message, field=field)
    return JSONResponse(
        {"error": detail.model_dump(exclude_none=True)},
        status_code=status,
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses a route can answer."""
    return {status: {"model": ErrorResponse} for status in statuses}


def status_for(exc: StackFleetError) -> int:
    """The HTTP status for a StackFleet error: an `http_status` attribute on the
    exception's class wins, then the nearest class in STATUS_BY_ERROR."""
    explicit = getattr(exc, "http_status", None)
    if isinstance(explicit, int):
        return explicit
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def validation_message(errors: Sequence[Any]) -> tuple[str, str | None]:
    """A sentence per failed parameter, naming it, and the first parameter's name."""
    sentences = []
    first: str | None = None
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if len(loc) > 2 and loc[0] == "body" and loc[1][:1].isupper() and loc[1].isidentifier():
            # a body that is one of several models: pydantic names the model tried
            # (`body.NotificationMessage.event_type`); the caller knows only the field
            del loc[1]
        where, name = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("request", ".".join(loc))
        first = first or name
        place = {"query": "query parameter", "path": "path parameter"}.get(where, where)
        if error.get("type") == "missing":
            sentences.append(f"{place} {name!r} is required")
            continue
        sentence = f"{place} {name!r}: {error.get('msg', 'invalid value')}"
        if "input" in error:
            sentence += f" (got {error['input']!r})"
        sentences.append(sentence)
    return "; ".join(sentences) or "invalid request", first


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure of `app` answer in the error shape."""

    @app.exception_handler(StackFleetError)
    async def stackfleet_error(_request: Request, exc: StackFleetError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        # an error about one field of the request (InvalidQueryError(field=...)) names it
        return error_response(status, str(exc), getattr(exc, "field", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # 400 like the rest of the API's "your request is wrong" answers, not 422
        message, field = validation_message(exc.errors())
        return error_response(400, message, field)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        response = error_response(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            # the router names only the methods of the first route of the path; a
            # path served by several routes (GET and POST /v1/alerts) allows them all
            allowed = allowed_methods(request.app, request.url.path)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.exception_handler(DBAPIError)
    async def store_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        log.error("store error: %s", exc)
        if isinstance(exc, OperationalError):
            # cannot connect, locked, missing schema: the store, not the request
            return error_response(503, "the store is not answering; try again later")
        return error_response(500, "the store failed to answer; see the StackFleet log")

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        # The server logs the traceback; the caller only learns that it was our fault.
        return error_response(500, "internal error; see the StackFleet log")


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document gives for the path template matching `path`
    (empty when none matches)."""
    templates: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        app.state, "allowed_methods", None
    )
    if templates is None:
        templates = [
            (compile_path(template)[0], sorted(m.upper() for m in operations))
            for template, operations in app.openapi().get("paths", {}).items()
        ]
        app.state.allowed_methods = templates
    for pattern, methods in templates:
        if pattern.match(path):
            return methods
    return []


# What every operation can answer, whatever its route declares: the request limits
# (api/limits.py), the store failing (the DBAPIError handler), a fault of ours.
COMMON_ERRORS = {
    414: "The request URL is longer than the API accepts.",
    500: "A fault of StackFleet's, or its configuration; see the StackFleet log.",
    503: "The store does not answer; try again later.",
}
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def document_errors(
    schema: dict[str, Any],
    auth_writes: bool = False,
    auth_reads: bool = False,
    open_paths: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Add to each operation of an OpenAPI document the error statuses the API's shared
    machinery answers, so the routes declare only their own: 400 for any parameter or
    body (validation), 404 for a path parameter (nothing by that id), 413 for a body,
    403 for writes (cross-site protection, api/origin.py) and, with Keystone
    authentication, 401 and 502 (api/auth.py)."""
    for path, path_item in schema.get("paths", {}).items():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = dict(COMMON_ERRORS)
            parameters = operation.get("parameters", [])
            if parameters or "requestBody" in operation:
                statuses[400] = "A parameter or the body is not valid; `field` names it."
            if any(p.get("in") == "path" for p in parameters):
                statuses[404] = "Nothing by that id or name."
            if "requestBody" in operation:
                statuses[413] = "The request body is larger than the API accepts."
            writing = method in WRITE_METHODS
            if writing or (auth_reads and path not in open_paths):
                statuses[403] = "Refused: a cross-site request, or the token's roles or scope."
            if (auth_writes and writing) or (auth_reads and path not in open_paths):
                statuses[401] = "No X-Auth-Token, or Keystone does not know it."
                statuses[502] = "Keystone could not be asked to validate the token."
            responses = operation["responses"]
            for status, description in sorted(statuses.items()):
                responses.setdefault(
                    str(status),
                    {
                        "description": description,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                            }
                        },
                    },
                )
    return schema
