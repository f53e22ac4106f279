"""How the API answers errors: one JSON shape for every failure,
``{"error": {"code": <HTTP status>, "message": "...", "field": "..."}}``, and never a
traceback. StackFleet's typed errors map to statuses here; validation errors name the
parameter that was wrong."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException

from stackfleet.core.errors import (
    CloudError,
    ConfigError,
    InvalidQueryError,
    NotFoundError,
    StackFleetError,
)

log = logging.getLogger(__name__)

# Most specific class first is not needed: the exception's MRO is walked in order.
STATUS_BY_ERROR: dict[type[StackFleetError], int] = {
    NotFoundError: 404,
    InvalidQueryError: 400,
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
        return error_response(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # 400 like the rest of the API's "your request is wrong" answers, not 422
        message, field = validation_message(exc.errors())
        return error_response(400, message, field)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        response = error_response(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
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
