"""Serving the API with uvicorn: in the foreground (`stackfleet api`), or in a
background thread for tests and demos (`ApiServer`)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

from stackfleet.api.app import create_app
from stackfleet.api.auth import Authenticator, MetricsAccess
from stackfleet.api.jobs import JobsView
from stackfleet.store import Store

log = logging.getLogger(__name__)


def serve_api(
    store: Store,
    host: str = "127.0.0.1",
    port: int = 8780,
    log_level: str = "info",
    events: Any = None,
    keystone: Authenticator | None = None,
    jobs: JobsView | None = None,
    cluster: Callable[[], dict[str, Any]] | None = None,
    tls: tuple[str, str] | None = None,
    metrics: MetricsAccess | None = None,
) -> None:
    """Serve the API over `store` on host:port until interrupted (blocks). `events`:
    the daemon's EventProcessor, which POST /v1/events feeds; `keystone`: check
    Keystone tokens (None: the API is open); `jobs`: the daemon's job states;
    `cluster`: its view of the scale-out workers (GET /v1/cluster); `tls`: (certificate,
    key) PEM files to serve HTTPS; `metrics`: who may scrape /metrics without a role."""
    app = create_app(store, keystone, jobs, metrics)
    app.state.events = events
    app.state.cluster = cluster
    certfile, keyfile = tls if tls else (None, None)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="off",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    uvicorn.Server(config).run()


class ApiServer:
    """The API over `store` in a background thread, on a free port by default.

    ``with ApiServer(store) as url:`` gives the base URL (``http://127.0.0.1:<port>``)
    once the server accepts connections, and stops the server on leaving the block.
    """

    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        keystone: Authenticator | None = None,
        events: Any = None,
        jobs: JobsView | None = None,
        metrics: MetricsAccess | None = None,
        carry_out_approved: Any = None,
    ) -> None:
        self.store = store
        # the demo's CarryOutApproved (engine/approved_now.py): approvals act at once
        self.carry_out_approved = carry_out_approved
        self.keystone = keystone
        self.metrics = metrics
        self.events = events
        self.jobs = jobs
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    def start(self) -> str:
        """Start serving; returns the base URL."""
        # Binding here, not in uvicorn, tells us the port before the thread starts.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay per reply
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        port = sock.getsockname()[1]
        app = create_app(self.store, self.keystone, self.jobs, self.metrics)
        app.state.events = self.events
        app.state.carry_out_approved = self.carry_out_approved
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            # leave requests a moment to finish, then stop regardless
            timeout_graceful_shutdown=max(1, int(self.stop_timeout / 2)),
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"stackfleet-api-{port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not server.started:
            if self._error is not None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the API server did not start: {self._error}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API server did not start in {self.start_timeout} s")
            time.sleep(0.01)
        host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.url = f"http://{host}:{port}"
        log.info("API serving at %s", self.url)
        return self.url

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to start() through _error
            self._error = exc

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.stop_timeout)
            if self._thread.is_alive():
                log.warning("the API server thread did not stop in %s s", self.stop_timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
