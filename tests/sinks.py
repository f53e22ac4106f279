"""Local stand-ins for what notifications and alerts are sent to in tests: an HTTP
endpoint recording JSON posts (webhooks, Alertmanager) and an SMTP server keeping the
messages it receives.

Both can hold chosen deliveries (`hold`: their 0-based numbers): the delivery is
recorded when it arrives, but the answer (HTTP 200, SMTP 250) waits until `release` is
set (at most a minute) — a slow receiver to kill the sender in front of, with the
message in doubt as far as the sender can tell. `holding` is set once one is held."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD_AT_MOST = 60.0


class Capture:
    """A local HTTP endpoint recording the JSON bodies posted to it (and, in step,
    their request headers)."""

    def __init__(self, hold: frozenset[int] = frozenset()) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.hold = hold
        self.holding = threading.Event()
        self.release = threading.Event()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's API
                length = int(self.headers.get("content-length") or 0)
                capture.headers.append(dict(self.headers.items()))
                capture.posts.append((self.path, json.loads(self.rfile.read(length))))
                if len(capture.posts) - 1 in capture.hold:
                    capture.holding.set()
                    capture.release.wait(HOLD_AT_MOST)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """A minimal local SMTP server keeping the messages it receives."""

    def __init__(self, hold: frozenset[int] = frozenset()) -> None:
        self.messages: list[str] = []
        self.hold = hold
        self.holding = threading.Event()
        self.release = threading.Event()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 sink ready\r\n")
                while line := self.rfile.readline():
                    command = line.decode().strip().upper()
                    if command.startswith("DATA"):
                        self.wfile.write(b"354 go on\r\n")
                        body = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            body.append(data.decode())
                        sink.messages.append("".join(body))
                        if len(sink.messages) - 1 in sink.hold:
                            sink.holding.set()
                            sink.release.wait(HOLD_AT_MOST)
                        self.wfile.write(b"250 stored\r\n")
                    elif command.startswith("QUIT"):
                        self.wfile.write(b"221 bye\r\n")
                        return
                    elif command.startswith("EHLO"):
                        self.wfile.write(b"250 sink\r\n")
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
