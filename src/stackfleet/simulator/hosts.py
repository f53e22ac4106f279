"""Simulated host processes: what a real host's service manager (systemd) does to the
Nova services of a host, for campaign demos and tests.

    POST /_sim/hosts/{host}/restart   {"region": "RegionOne", "up": true}

restarts every Nova service of the host: each reports at once and from then on keeps
reporting (its `updated_at`, the heartbeat os-services shows, is the time of the
request while it runs) and is `up` — or `down`, its heartbeat frozen, with
`"up": false`, as a service that fails to start (a broken configuration) stays."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stackfleet.simulator.faults import CONTROL_PREFIX
from stackfleet.simulator.http import ApiError, json_response, read_json

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator


def host_routes(sim: Simulator) -> list[BaseRoute]:
    """The host control routes of `sim`."""

    async def restart(request: Request) -> Response:
        host = request.path_params["host"]
        body = await read_json(request) if await request.body() else {}
        if not isinstance(body, dict):
            body = {}
        up = bool(body.get("up", True))
        regions = [body["region"]] if body.get("region") else list(sim.state.regions)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        restarted = []
        with sim.state.lock:
            for name in regions:
                region = sim.state.regions.get(name)
                if region is None:
                    continue
                for service in region.compute_services.values():
                    if service.get("host") != host:
                        continue
                    if up:
                        service["updated_at"] = now
                    # a started service keeps reporting: os-services shows a fresh
                    # heartbeat while it runs (services never restarted keep the
                    # generated, frozen one)
                    service["_reporting"] = up
                    if not service.get("forced_down"):
                        service["state"] = "up" if up else "down"
                    restarted.append(f"{service.get('binary')}@{host}")
                for hypervisor in region.hypervisors.values():
                    if (hypervisor.get("service") or {}).get("host") == host:
                        hypervisor["state"] = "up" if up else "down"
        if not restarted:
            raise ApiError(404, {"error": {"code": 404, "message": f"no services on {host}"}})
        return json_response({"restarted": restarted, "up": up})

    return [Route(f"{CONTROL_PREFIX}/hosts/{{host}}/restart", restart, methods=["POST"])]
