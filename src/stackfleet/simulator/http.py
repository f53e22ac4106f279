"""HTTP plumbing shared by the simulated services: responses, errors, auth, paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from stackfleet.simulator.listcache import EncodedList

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator


class ApiError(Exception):
    """Raised by a route to answer with `status` and an already service-shaped `body`:
    JSON, or with `media_type` given, text (Glance's HTML and plain-text error pages)."""

    def __init__(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.media_type = media_type

    def response(self) -> Response:
        """The error as the HTTP response the service sends."""
        if self.media_type is not None:
            return Response(
                str(self.body), self.status, headers=self.headers, media_type=self.media_type
            )
        return json_response(self.body, self.status, self.headers)


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; compact separators keep large list pages cheap to encode.

    A top-level value of a dict body may be an `EncodedList` (list items encoded ahead,
    see stackfleet.simulator.listcache): it is spliced in as it is, giving the same bytes
    as encoding the items here."""
    return Response(
        encode_json(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def encode_json(body: Any) -> bytes:
    """`body` as compact JSON bytes, splicing in top-level `EncodedList` values."""
    if isinstance(body, dict) and any(isinstance(v, EncodedList) for v in body.values()):
        # One join over every piece: a page of 1,000 servers is megabytes, so each
        # intermediate copy shows.
        parts: list[bytes] = [b"{"]
        for index, (key, value) in enumerate(body.items()):
            if index:
                parts.append(b",")
            parts += (_ENCODER.encode(str(key)).encode(), b":")
            if isinstance(value, EncodedList):
                parts += (b"[", b",".join(value.fragments), b"]")
            else:
                parts.append(_ENCODER.encode(value).encode())
        parts.append(b"}")
        return b"".join(parts)
    return _ENCODER.encode(body).encode()


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=headers)


async def read_json(request: Request, error: type[ApiError] | None = None) -> Any:
    """The request body as JSON, or a 400 ApiError naming the problem."""
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise ApiError(
            400, {"error": {"code": 400, "message": f"Malformed JSON body: {exc}"}}
        ) from exc


def require_token(sim: Simulator, request: Request) -> dict[str, Any]:
    """The Keystone token body of the request's X-Auth-Token, or a 401 (also when the
    token has expired)."""
    token_id = request.headers.get("x-auth-token", "")
    token = sim.state.tokens.get(token_id)
    # expires_at is Keystone's fixed-width UTC format, so text order is time order.
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if token is None or token["expires_at"] <= now:
        raise ApiError(
            401,
            {
                "error": {
                    "code": 401,
                    "title": "Unauthorized",
                    "message": "The request you have made requires authentication.",
                }
            },
            {"WWW-Authenticate": f'Keystone uri="{sim.base_url}/identity"'},
        )
    return token


def query_int(request: Request, name: str, default: int | None = None) -> int | None:
    """An integer query parameter; a non-integer is a 400."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(
            400, {"badRequest": {"code": 400, "message": f"Invalid {name}: {raw!r}"}}
        ) from exc


def paginate(
    items: list[Any], marker: str | None, limit: int | None, max_limit: int, key: str = "id"
) -> tuple[list[Any], str | None]:
    """Marker pagination as OpenStack does it: items after `marker` (by `key`), at most
    min(limit, max_limit). Returns the page and the marker for the next page (None on
    the last page). An unknown marker raises KeyError; the caller turns it into the
    service's own 400/404."""
    start = 0
    if marker:
        for index, item in enumerate(items):
            if str(item[key]) == marker:
                start = index + 1
                break
        else:
            raise KeyError(marker)
    size = max_limit if limit is None else max(0, min(limit, max_limit))
    page = items[start : start + size]
    more = start + size < len(items)
    return page, (str(page[-1][key]) if (more and page) else None)


def sort_objects(items: list[dict[str, Any]], keys: list[tuple[str, bool]]) -> None:
    """Sort API objects in place by several (attribute, ascending) keys, the first key
    most significant, as the services' SQL ORDER BY does: None sorts lowest, mixed types
    compare as text. A column holding only strings (or only numbers) sorts with a plain
    item key, which keeps paging through tens of thousands of objects fast."""
    for key, ascending in reversed(keys):
        values = [item.get(key) for item in items]
        if all(type(v) is str for v in values) or all(type(v) in (int, float) for v in values):
            items.sort(key=itemgetter(key), reverse=not ascending)
        else:
            items.sort(key=_mixed_sort_key(key), reverse=not ascending)


def _mixed_sort_key(key: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    def value(item: dict[str, Any]) -> tuple[int, Any]:
        raw = item.get(key)
        if raw is None:
            return (0, "")
        if isinstance(raw, bool | int | float):
            return (1, raw)
        return (2, str(raw))

    return value
