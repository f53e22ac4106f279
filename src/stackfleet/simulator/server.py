"""Serving the simulated cloud on loopback, and the clouds.yaml entry pointing at it.

`SimulatorServer` runs the simulator in a background thread (tests, `stackfleet demo`);
`serve` runs it in the foreground until Ctrl-C or SIGTERM (`stackfleet simulator`).
"""

from __future__ import annotations

import contextlib
import gc
import http.client
import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
import yaml
from platformdirs import user_config_dir

from stackfleet.simulator.app import Simulator, build_app
from stackfleet.simulator.faults import FaultRule, FaultSettings
from stackfleet.simulator.generator import FleetConfig, generate
from stackfleet.simulator.notifications import start_notifier, stop_notifier
from stackfleet.simulator.state import CloudState

logger = logging.getLogger(__name__)

DEFAULT_CLOUD_NAME = "stackfleet-sim"


class SimulatorError(Exception):
    """The simulator could not start or stop; the message says why and what to do."""


def default_clouds_yaml_path() -> Path:
    """Where the simulator's clouds.yaml goes unless told: the user's StackFleet config
    directory (e.g. ~/.config/stackfleet/clouds.yaml)."""
    return Path(user_config_dir("stackfleet")) / "clouds.yaml"


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 lets the kernel pick a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY on Linux; without it every request on a
    # kept-alive connection waits ~40 ms for the delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SimulatorError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another port, "
            "or 0 for any free one"
        ) from exc
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # keystoneauth keeps connections alive between calls; a short server-side idle
        # timeout would race with its reuse of the connection.
        timeout_keep_alive=75,
    )


@dataclass(frozen=True)
class CloudEntry:
    """What a client needs to log in to the simulator as its admin."""

    auth_url: str
    username: str
    password: str
    project_name: str
    region_name: str
    regions: tuple[str, ...]

    def clouds_yaml(self, system_scope: bool = False) -> dict[str, Any]:
        """This entry as a clouds.yaml cloud (project- or system-scoped)."""
        auth: dict[str, Any] = {
            "auth_url": self.auth_url,
            "username": self.username,
            "password": self.password,
            "user_domain_name": "Default",
        }
        if system_scope:
            auth["system_scope"] = "all"
        else:
            auth["project_name"] = self.project_name
            auth["project_domain_name"] = "Default"
        cloud: dict[str, Any] = {
            "auth": auth,
            "region_name": self.region_name,
            "identity_api_version": 3,
            "interface": "public",
        }
        if len(self.regions) > 1:
            cloud["regions"] = list(self.regions)
        return cloud


def cloud_entry(base_url: str, state: CloudState, password: str | None = None) -> CloudEntry:
    """The admin login of a simulator serving `state` at `base_url`."""
    admin = next((u for u in state.users.values() if u["name"] == "admin"), None)
    if admin is None:
        raise SimulatorError("the simulated cloud has no admin user")
    regions = tuple(state.regions)
    return CloudEntry(
        auth_url=f"{base_url}/identity",
        username="admin",
        password=password if password is not None else state.passwords[admin["id"]],
        project_name="admin",
        region_name=regions[0] if regions else "RegionOne",
        regions=regions,
    )


def write_clouds_yaml(
    entry: CloudEntry,
    path: Path | str | None = None,
    cloud_name: str = DEFAULT_CLOUD_NAME,
    system_scope_name: str | None = None,
) -> Path:
    """Write (or update) `cloud_name` in the clouds.yaml at `path`, keeping every other
    cloud in the file, plus a system-scoped twin (``<cloud_name>-system`` unless named)
    for the APIs that want one (Ironic). The file is replaced atomically and readable by
    its owner only (it holds a password). Returns the path written."""
    target = Path(path) if path is not None else default_clouds_yaml_path()
    content: dict[str, Any] = {}
    if target.exists():
        try:
            loaded = yaml.safe_load(target.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SimulatorError(
                f"{target} is not valid YAML ({exc}); fix or move it, or pass another path"
            ) from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise SimulatorError(f"{target} does not hold a clouds.yaml mapping; pass another path")
        content = loaded or {}
    clouds = content.get("clouds")
    if not isinstance(clouds, dict):
        clouds = {}
    clouds[cloud_name] = entry.clouds_yaml()
    clouds[system_scope_name or f"{cloud_name}-system"] = entry.clouds_yaml(system_scope=True)
    content["clouds"] = clouds

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".clouds-", suffix=".yaml", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(content, handle, default_flow_style=False, sort_keys=False)
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    logger.info("wrote cloud %r to %s", cloud_name, target)
    return target


def stop_serving(
    server: uvicorn.Server | None, thread: threading.Thread | None, timeout: float
) -> None:
    """Stop a uvicorn server running in `thread`: gracefully, then forced."""
    if server is None or thread is None:
        return
    server.should_exit = True
    thread.join(timeout)
    if thread.is_alive():
        server.force_exit = True
        thread.join(timeout)


def _wait_until_answering(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection(host, port, timeout=1)
        try:
            connection.request("GET", "/identity/v3")
            if connection.getresponse().status == 200:
                return
        except OSError as exc:
            last_error = exc
        finally:
            connection.close()
        time.sleep(0.02)
    raise SimulatorError(f"the simulator did not answer on {host}:{port} ({last_error})")


class SimulatorServer:
    """The simulated cloud served on loopback from a background thread.

    ``with SimulatorServer(config) as server: openstack.connect(**server.connect_kwargs())``
    Give `state` to serve an existing CloudState instead of generating one. Port 0 (the
    default) picks a free port; `base_url` tells which."""

    def __init__(
        self,
        config: FleetConfig | None = None,
        *,
        state: CloudState | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: list[FaultRule] | None = None,
        token_ttl: int = 3600,
        notify_url: str | None = None,
        zun: bool = False,
    ) -> None:
        self.config = config or FleetConfig()
        self.host = host
        self.port = port
        # oslo.messaging transport URL the simulator publishes notifications on
        self.notify_url = notify_url
        self.sim = Simulator(
            state=state if state is not None else generate(self.config),
            faults=FaultSettings(faults or (), seed=self.config.seed),
            token_ttl=token_ttl,
            zun=zun,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> CloudState:
        return self.sim.state

    @property
    def base_url(self) -> str:
        return self.sim.base_url

    @property
    def auth_url(self) -> str:
        return f"{self.sim.base_url}/identity"

    def cloud_entry(self) -> CloudEntry:
        """The admin login of this simulator."""
        return cloud_entry(self.base_url, self.state)

    def connect_kwargs(self, system_scope: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``openstack.connect`` logging in as the admin."""
        cloud = self.cloud_entry().clouds_yaml(system_scope=system_scope)
        return {**cloud["auth"], "region_name": cloud["region_name"], "identity_api_version": 3}

    def write_clouds_yaml(
        self, path: Path | str | None = None, cloud_name: str = DEFAULT_CLOUD_NAME
    ) -> Path:
        """Write this simulator's clouds.yaml entries (see `write_clouds_yaml`)."""
        return write_clouds_yaml(self.cloud_entry(), path, cloud_name)

    def start(self, timeout: float = 15.0) -> None:
        """Listen, serve from a daemon thread, and return once the simulator answers."""
        if self._thread is not None:
            raise SimulatorError("the simulator is already running")
        if self.notify_url and self.sim.notifier is None:
            self.sim.notifier = start_notifier(self.notify_url)
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self.sim.base_url = f"http://{self.host}:{self.port}"
        server = uvicorn.Server(_uvicorn_config(build_app(self.sim), self.host, self.port))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="stackfleet-simulator", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        try:
            _wait_until_answering(self.host, self.port, timeout)
        except SimulatorError:
            self.stop()
            sock.close()
            raise
        logger.info("simulated cloud serving at %s", self.base_url)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread to end."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        stop_serving(server, thread, timeout)
        stop_notifier(self.sim)

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    config: FleetConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    clouds_yaml_path: Path | str | None = None,
    cloud_name: str = DEFAULT_CLOUD_NAME,
    *,
    faults: list[FaultRule] | None = None,
    token_ttl: int = 3600,
    write_clouds: bool = True,
    on_ready: Callable[[CloudEntry, Path | None], None] | None = None,
    notify_url: str | None = None,
    zun: bool = False,
) -> None:
    """Serve a generated cloud in the foreground; return after Ctrl-C or SIGTERM.

    Once the simulator answers, writes the clouds.yaml entries (unless `write_clouds` is
    False) and calls `on_ready(entry, clouds_yaml_path)` so the caller can tell the user
    where to point their tools. Must run in the main thread (it handles the signals)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        logger.info("received signal %d, stopping the simulator", signum)
        stop.set()

    server = SimulatorServer(
        config,
        host=host,
        port=port,
        faults=faults,
        token_ttl=token_ttl,
        notify_url=notify_url,
        zun=zun,
    )
    # This process serves the generated fleet until it stops: move it out of the cyclic
    # garbage collector's reach, or every full collection walks millions of objects
    # that live as long as the process (requests only allocate short-lived ones).
    # Generating leaves no cyclic garbage behind, so no collection first (0.7 s on the
    # benchmark preset).
    gc.freeze()
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        entry = server.cloud_entry()
        written = write_clouds_yaml(entry, clouds_yaml_path, cloud_name) if write_clouds else None
        if on_ready is not None:
            on_ready(entry, written)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
