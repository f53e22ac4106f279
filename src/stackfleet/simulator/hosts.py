"""Simulated compute hosts failing and coming back: heartbeats, management listeners.

Nova counts a compute service down once its newest heartbeat (the service's
`updated_at`, written every `report_interval`) is older than `service_down_time`. The
simulator reproduces that: a live service's `updated_at` is its newest heartbeat tick;
a failed host's (or a killed nova-compute's) heartbeats stop at the failure, and Nova's
state turns down `service_down_time` later, as on a real cloud.

A **host failure** also closes the host's management listener (its stand-in for SSH: a
TCP port on loopback), while its BMC in the Redfish simulator stays powered On, as a
kernel panic leaves it, until something fences it. A **process failure** stops only the
heartbeats. Control routes (under /_sim):

    POST /_sim/hosts/{region}/{host}/fail     {"mode": "host" | "process"}
    POST /_sim/hosts/{region}/{host}/repair
    POST /_sim/hosts/{host}/restart           {"region": ..., "up": true}: what a host's
                                              service manager does (campaigns)
    GET  /_sim/hosts                          heartbeat settings, failures, listeners
    PUT  /_sim/heartbeat                      {"report_interval": 10, "service_down_time": 60}
    POST /_sim/servers/{region}/{id}/break    {"mode": "error" | "stuck",
                                               "fixed_by": "reboot" | "rebuild",
                                               "stuck_for": 3600}
    PUT  /_sim/action-delay                   {"seconds": 2}: how long server actions take

A **restart** (a campaign's restart step, as systemd restarts a host's Nova services):
each service of the host reports at once — its heartbeat is the restart's time until
the next tick — and keeps reporting; with `"up": false` the services do not come back
(a broken configuration): their heartbeats stop, and Nova counts them down
`service_down_time` after their last one.

A broken server (instance recovery): mode `error` puts it in ERROR with power state
NOSTATE and a fault, as a failed spawn or a crashed hypervisor call leaves it. A reset of
its state then makes it ACTIVE with its power state still NOSTATE (Nova's reset-state
never touches the guest); a hard reboot brings it back RUNNING, unless it is broken
until a `rebuild` (a corrupt root disk): then the reboot ends in ERROR again and only a
rebuild repairs it. Mode `stuck` leaves it in task state `rebooting` since `stuck_for`
seconds ago; a reset of its state clears that.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stackfleet.simulator.http import ApiError, json_response, read_json
from stackfleet.simulator.state import RegionState

Obj = dict[str, Any]

# Nova's extended server attributes (as the Nova simulator stores them)
VM_STATE = "OS-EXT-STS:vm_state"
TASK_STATE = "OS-EXT-STS:task_state"
POWER_STATE = "OS-EXT-STS:power_state"


@dataclass
class Heartbeat:
    """Nova's heartbeat settings, as the simulated cloud runs them (Nova's defaults)."""

    report_interval: float = 10.0
    service_down_time: float = 60.0


HEARTBEAT = Heartbeat()


def _nova_time(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    )


def latest_tick(now: float | None = None) -> float:
    """The newest heartbeat of a live service (every report_interval)."""
    now = time.time() if now is None else now
    return now - (now % HEARTBEAT.report_interval)


def service_view(service: Obj) -> tuple[str, Any]:
    """(state, updated_at) of a compute service as Nova would report it now."""
    stored = "down" if service.get("forced_down") else str(service.get("state") or "down")
    failed_at = service.get("_failed_at")
    if service.get("forced_down"):
        return "down", service.get("updated_at")
    if failed_at is None:
        if stored == "up":
            # a service reports once when it starts, then every report_interval
            started = float(service.get("_started_at") or 0.0)
            return "up", _nova_time(max(latest_tick(), started))
        return stored, service.get("updated_at")
    last = float(service.get("_last_heartbeat") or failed_at)
    expired = time.time() - last > HEARTBEAT.service_down_time
    return ("down" if expired else "up"), _nova_time(last)


def fail(region: RegionState, host: str, mode: str) -> list[Obj]:
    """Stop the heartbeats of the host's services (mode host: every service; process:
    nova-compute only). Returns the services changed."""
    changed = []
    for service in region.compute_services.values():
        if service.get("host") != host:
            continue
        if mode == "process" and service.get("binary") != "nova-compute":
            continue
        if service.get("_failed_at") is None:
            now = time.time()
            service["_failed_at"] = now
            service["_last_heartbeat"] = latest_tick(now)
            service["_failure"] = mode
        changed.append(service)
    return changed


def repair(region: RegionState, host: str) -> list[Obj]:
    """The host's services heartbeat again."""
    changed = []
    for service in region.compute_services.values():
        if service.get("host") == host and service.get("_failed_at") is not None:
            for key in ("_failed_at", "_last_heartbeat", "_failure"):
                service.pop(key, None)
            service["state"] = "up"
            changed.append(service)
    return changed


class ManagementListeners:
    """A TCP listener per compute host on loopback: the host's "management address"
    that a health probe connects to. A failed host's listener is closed."""

    def __init__(self, hosts: list[str], address: str = "127.0.0.1") -> None:
        self.address = address
        self.ports: dict[str, int] = {}
        self._sockets: dict[str, socket.socket] = {}
        self._lock = threading.Lock()
        for host in hosts:
            self.open(host)

    def open(self, host: str) -> None:
        with self._lock:
            if host in self._sockets:
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.address, self.ports.get(host, 0)))
            sock.listen(16)
            self.ports[host] = sock.getsockname()[1]
            self._sockets[host] = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    @staticmethod
    def _accept(sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    def close(self, host: str) -> None:
        with self._lock:
            sock = self._sockets.pop(host, None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close_all(self) -> None:
        for host in list(self._sockets):
            self.close(host)

    def addresses(self) -> dict[str, str]:
        """host -> address:port (what the health settings' probe.addresses want)."""
        return {host: f"{self.address}:{port}" for host, port in self.ports.items()}

    def is_open(self, host: str) -> bool:
        return host in self._sockets


@dataclass
class HostControl:
    """What the /_sim/hosts routes change: the cloud's regions and the listeners."""

    regions: dict[str, RegionState]
    listeners: ManagementListeners | None = None
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    # server id -> the recovery step that repairs it ("reboot" or "rebuild")
    broken: dict[str, str] = field(default_factory=dict)
    # servers whose power actions (stop, start, ...) fail in the compute service
    power_fails: set[str] = field(default_factory=set)

    def fail(self, region: str, host: str, mode: str) -> Obj:
        if mode not in ("host", "process"):
            raise _bad(f"mode must be host or process, not {mode!r}")
        changed = fail(self._region(region), host, mode)
        if not changed:
            raise _bad(f"no compute service on host {host!r} in {region}", 404)
        if mode == "host" and self.listeners is not None:
            self.listeners.close(host)
        self.failures[(region, host)] = mode
        return {"host": host, "region": region, "mode": mode, "services": len(changed)}

    def repair(self, region: str, host: str) -> Obj:
        changed = repair(self._region(region), host)
        if self.listeners is not None:
            self.listeners.open(host)
        self.failures.pop((region, host), None)
        return {"host": host, "region": region, "services": len(changed)}

    def break_server(
        self, region: str, server_id: str, mode: str, fixed_by: str, stuck_for: float
    ) -> Obj:
        if mode not in ("error", "stuck", "power"):
            raise _bad(f"mode must be error, stuck or power, not {mode!r}")
        if fixed_by not in ("reboot", "rebuild"):
            raise _bad(f"fixed_by must be reboot or rebuild, not {fixed_by!r}")
        server = self._region(region).servers.get(server_id)
        if server is None:
            raise _bad(f"no server {server_id!r} in {region}", 404)
        if mode == "power":
            # the server stays as it is; its power actions fail (until a rebuild)
            self.power_fails.add(server_id)
            return {"id": server_id, "region": region, "mode": mode, "status": server["status"]}
        now = time.time()
        if mode == "error":
            server[VM_STATE], server[TASK_STATE], server[POWER_STATE] = "error", None, 0
            server["status"] = "ERROR"
            server["fault"] = {
                "code": 500,
                "message": "simulated failure",
                "created": _nova_time(now).split(".")[0] + "Z",
            }
            self.broken[server_id] = fixed_by
        else:
            server[TASK_STATE] = "rebooting"
            server["status"] = "REBOOT"
        when = now - (stuck_for if mode == "stuck" else 0)
        server["updated"] = _nova_time(when).split(".")[0] + "Z"
        return {"id": server_id, "region": region, "mode": mode, "status": server["status"]}

    def repaired_by(self, server_id: str, step: str) -> bool | None:
        """Whether `step` (reboot, rebuild) repairs the server: None when it is not
        broken; a rebuild repairs every break, a reboot those fixed by a reboot."""
        if step == "rebuild":
            self.power_fails.discard(server_id)
        needed = self.broken.get(server_id)
        if needed is None:
            return None
        if step == "rebuild" or needed == step:
            del self.broken[server_id]
            return True
        return False

    def power_fails_for(self, server_id: str) -> bool:
        """Whether a power action on the server fails in the compute service (break
        mode `power`)."""
        return server_id in self.power_fails

    def restart(self, region: str | None, host: str, up: bool) -> Obj:
        """Restart the host's Nova services (every region, or `region`): they report at
        once and keep reporting, or (`up` false) fail to start and go silent."""
        names = [region] if region else list(self.regions)
        restarted = []
        now = time.time()
        for name in names:
            state = self._region(name)
            services = [s for s in state.compute_services.values() if s.get("host") == host]
            if not services:
                continue
            if up:
                repair(state, host)
                if self.listeners is not None:
                    self.listeners.open(host)
                self.failures.pop((name, host), None)
            else:
                for service in services:
                    # the process that stopped had reported until now
                    service.pop("_failed_at", None)
                fail(state, host, "process")
                self.failures[(name, host)] = "process"
            for service in services:
                if up:
                    service["_started_at"] = now
                    if not service.get("forced_down"):
                        service["state"] = "up"
                restarted.append(f"{service.get('binary')}@{host}")
        if not restarted:
            raise _bad(f"no services on {host}", 404)
        return {"restarted": restarted, "up": up}

    def _region(self, name: str) -> RegionState:
        region = self.regions.get(name)
        if region is None:
            raise _bad(f"no region {name!r}", 404)
        return region


def _bad(message: str, status: int = 400) -> ApiError:
    return ApiError(status, {"error": {"code": status, "message": message}})


def host_routes(control: HostControl) -> list[BaseRoute]:
    """The /_sim/hosts and /_sim/heartbeat routes (mounted under /_sim)."""

    async def fail_host(request: Request) -> Response:
        body = await read_json(request)
        mode = body.get("mode", "host") if isinstance(body, dict) else "host"
        p = request.path_params
        return json_response(control.fail(p["region"], p["host"], str(mode)))

    async def repair_host(request: Request) -> Response:
        p = request.path_params
        return json_response(control.repair(p["region"], p["host"]))

    async def list_hosts(request: Request) -> Response:
        return json_response(
            {
                "heartbeat": {
                    "report_interval": HEARTBEAT.report_interval,
                    "service_down_time": HEARTBEAT.service_down_time,
                },
                "failures": [
                    {"region": r, "host": h, "mode": m} for (r, h), m in control.failures.items()
                ],
                "management": control.listeners.addresses() if control.listeners else {},
            }
        )

    async def set_heartbeat(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise _bad("expected {report_interval, service_down_time}")
        for key in ("report_interval", "service_down_time"):
            if key in body:
                value = body[key]
                if not isinstance(value, int | float) or value <= 0:
                    raise _bad(f"{key} must be a positive number")
                setattr(HEARTBEAT, key, float(value))
        return await list_hosts(request)

    async def break_server(request: Request) -> Response:
        body = await read_json(request)
        body = body if isinstance(body, dict) else {}
        stuck_for = body.get("stuck_for", 3600)
        if not isinstance(stuck_for, int | float) or stuck_for < 0:
            raise _bad("stuck_for must be a number of seconds")
        p = request.path_params
        return json_response(
            control.break_server(
                p["region"],
                p["server_id"],
                str(body.get("mode", "error")),
                str(body.get("fixed_by", "reboot")),
                float(stuck_for),
            )
        )

    async def restart_host(request: Request) -> Response:
        body = await read_json(request) if await request.body() else {}
        body = body if isinstance(body, dict) else {}
        region = body.get("region")
        return json_response(
            control.restart(
                str(region) if region else None,
                request.path_params["host"],
                bool(body.get("up", True)),
            )
        )

    return [
        Route("/servers/{region}/{server_id}/break", break_server, methods=["POST"]),
        Route("/hosts/{host}/restart", restart_host, methods=["POST"]),
        Route("/hosts", list_hosts, methods=["GET"]),
        Route("/hosts/{region}/{host}/fail", fail_host, methods=["POST"]),
        Route("/hosts/{region}/{host}/repair", repair_host, methods=["POST"]),
        Route("/heartbeat", set_heartbeat, methods=["PUT"]),
    ]
