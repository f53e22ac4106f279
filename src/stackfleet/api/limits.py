"""Request size limits: a body larger than the API accepts is refused with 413 before
it is read into memory, and a URL (path and query) longer than a web server would take
with 414, both in the API's one error shape."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stackfleet.api.errors import error_response

# The largest body the API reads: alert batches from Prometheus/Alertmanager and event
# notifications are the big ones, and stay far below this.
MAX_BODY_BYTES = 1024 * 1024
# what nginx and Apache accept in a request line by default (8 KiB)
MAX_URL_BYTES = 8192


class RequestLimits:
    """ASGI middleware enforcing `max_body` and `max_url` on every HTTP request."""

    def __init__(
        self, app: ASGIApp, max_body: int = MAX_BODY_BYTES, max_url: int = MAX_URL_BYTES
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_url = max_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > (
            self.max_url
        ):
            await self._refuse(scope, receive, send, 414, f"longer than {self.max_url} bytes")
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._refuse(scope, receive, send, 413, self._body_message())
            return
        seen = 0
        started = refused = False

        async def counted_receive() -> Message:
            # a chunked body without Content-Length is counted while it is read: past
            # the limit the caller gets its 413 and the app sees the client gone
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    refused = True
                    if not started:
                        await self._refuse(scope, receive, send, 413, self._body_message())
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            if not refused:
                raise

    def _body_message(self) -> str:
        return f"the request body is larger than {self.max_body} bytes"

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, message: str
    ) -> None:
        field = "body" if status == 413 else "url"
        if status == 414:
            message = f"the request URL is {message}"
        await error_response(status, message, field)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers") or []
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
