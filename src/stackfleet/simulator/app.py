"""The simulator's ASGI application: every simulated service under one loopback port.

URL layout (DevStack-style path prefixes, one region per prefix):

    /identity                       Keystone v3 (shared by all regions)
    /{region}/compute               Nova        (/v2.1/...)
    /{region}/placement             Placement
    /{region}/networking            Neutron     (/v2.0/...)
    /{region}/volume                Cinder      (/v3/{project_id}/...)
    /{region}/image                 Glance      (/v2/...)
    /{region}/baremetal             Ironic      (/v1/...)
    /_sim/...                       simulator control (faults, request counters, state)

Each service module in `stackfleet.simulator.services` exposes
`build(sim: Simulator, region: RegionState) -> starlette.routing.Router` (Keystone:
`build(sim)`), mounted at its prefix; routes read and change `sim.state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from stackfleet.simulator.http import ApiError, json_response
from stackfleet.simulator.state import CloudState

# service type (as in the Keystone catalog) -> path prefix under the region
SERVICE_PREFIXES: dict[str, str] = {
    "compute": "compute",
    "placement": "placement",
    "network": "networking",
    "block-storage": "volume",
    "image": "image",
    "baremetal": "baremetal",
}


@dataclass
class Simulator:
    """A simulated cloud: its state, the URL it is served on, and its fault settings."""

    state: CloudState
    base_url: str = "http://127.0.0.1:0"
    # set by the fault-injection layer (stackfleet.simulator.faults); None = no faults
    faults: Any = None
    # (method, route template) -> count, filled by the request-counting middleware
    request_counts: dict[str, int] = field(default_factory=dict)

    def endpoint_url(self, service_type: str, region: str) -> str:
        """The catalog URL of a service in a region (Keystone's is region-less)."""
        if service_type == "identity":
            return f"{self.base_url}/identity"
        return f"{self.base_url}/{region}/{SERVICE_PREFIXES[service_type]}"


def build_app(sim: Simulator) -> Starlette:
    """The ASGI app serving every simulated service of `sim`."""
    from stackfleet.simulator.services import (  # noqa: PLC0415 - avoid import cycles
        cinder,
        glance,
        ironic,
        keystone,
        neutron,
        nova,
        placement,
    )

    builders = {
        "compute": nova.build,
        "placement": placement.build,
        "network": neutron.build,
        "block-storage": cinder.build,
        "image": glance.build,
        "baremetal": ironic.build,
    }
    mounts: list[Mount] = [Mount("/identity", app=keystone.build(sim))]
    for region_name, region in sim.state.regions.items():
        for service_type, builder in builders.items():
            mounts.append(
                Mount(f"/{region_name}/{SERVICE_PREFIXES[service_type]}", app=builder(sim, region))
            )

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return json_response(exc.body, exc.status, exc.headers)

    app = Starlette(routes=mounts, exception_handlers={ApiError: api_error})
    app.state.sim = sim
    return app
