"""The simulator's ASGI application: every simulated service under one loopback port.

URL layout (DevStack-style path prefixes, one region per prefix):

    /identity                       Keystone v3 (shared by all regions)
    /{region}/compute               Nova        (/v2.1/...)
    /{region}/placement             Placement
    /{region}/networking            Neutron     (/v2.0/...)
    /{region}/volume                Cinder      (/v3/{project_id}/...)
    /{region}/image                 Glance      (/v2/...)
    /{region}/baremetal             Ironic      (/v1/...)
    /_sim/...                       simulator control (faults, request counters, state,
                                    host restarts)

Each service module in `stackfleet.simulator.services` exposes
`build(sim: Simulator, region: RegionState) -> starlette.routing.Router` (Keystone:
`build(sim)`), mounted at its prefix; routes read and change `sim.state`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, get_route_path
from starlette.types import ASGIApp, Scope

from stackfleet.simulator.faults import FaultMiddleware, FaultSettings, control_routes
from stackfleet.simulator.http import ApiError
from stackfleet.simulator.state import CloudState, RegionState

logger = logging.getLogger(__name__)

# service type (as in the Keystone catalog) -> path prefix under the region
SERVICE_PREFIXES: dict[str, str] = {
    "compute": "compute",
    "placement": "placement",
    "network": "networking",
    "block-storage": "volume",
    "image": "image",
    "baremetal": "baremetal",
    "container": "container",
}
# services served (and in the catalog) only when enabled on the Simulator
OPTIONAL_SERVICES = frozenset({"container"})


@dataclass
class Simulator:
    """A simulated cloud: its state, the URL it is served on, and its fault settings."""

    state: CloudState
    base_url: str = "http://127.0.0.1:0"
    # fault rules applied by stackfleet.simulator.faults.FaultMiddleware
    faults: FaultSettings = field(default_factory=FaultSettings)
    # "METHOD /route/template" -> count, filled by the same middleware
    request_counts: dict[str, int] = field(default_factory=dict)
    # lifetime of the Keystone tokens issued, in seconds
    token_ttl: int = 3600
    # publishes notifications of API changes (simulator/notifications.py), when set
    notifier: object | None = None
    # failed hosts and management listeners (simulator/hosts.py), made by control_routes
    hosts: Any = None
    # seconds a server action (evacuate, reboot, rebuild, start...) stays in its task
    # state before it completes (PUT /_sim/action-delay); 0: at once
    action_delay: float = 0.0
    # serve a Container service (Zun) and list it in the catalog as type `container`
    zun: bool = False
    # what each simulated zun-compute host holds (Zun's `GET /v1/hosts`, its scheduler)
    zun_host_cpus: int = 16
    zun_host_memory: int = 32768  # MiB
    zun_host_disk: int = 500  # GiB

    def serves(self, service_type: str) -> bool:
        """Whether this simulator serves (and catalogs) `service_type`."""
        if service_type == "container":
            return self.zun
        return True

    def endpoint_url(self, service_type: str, region: str) -> str:
        """The root URL of a service in a region, where its router is mounted
        (Keystone's is region-less). The catalog advertises this URL, or a versioned URL
        under it (compute ``/v2.1``, block-storage ``/v3/{project_id}``) as DevStack does:
        see stackfleet.simulator.services.keystone.CATALOG."""
        if service_type == "identity":
            return f"{self.base_url}/identity"
        return f"{self.base_url}/{region}/{SERVICE_PREFIXES[service_type]}"


class ServiceMount(Mount):
    """A Mount that also answers its bare prefix (``GET /identity`` as ``/identity/``):
    clients fetch version documents from catalog URLs, which have no trailing slash, and
    the real services answer there without redirecting."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and get_route_path(scope) == self.path:
            slashed = {**scope, "path": scope["path"] + "/"}
            match, child_scope = super().matches(slashed)
            if match is Match.FULL:
                child_scope["path"] = slashed["path"]
            return match, child_scope
        return super().matches(scope)


# service type -> module in stackfleet.simulator.services
SERVICE_MODULES: dict[str, str] = {
    "compute": "nova",
    "placement": "placement",
    "network": "neutron",
    "block-storage": "cinder",
    "image": "glance",
    "baremetal": "ironic",
    "container": "zun",
}


def _service_builders() -> dict[str, Callable[[Simulator, RegionState], ASGIApp]]:
    """Each service's `build`, imported late (the service modules import this one).

    A service module that does not exist yet is left out with a warning, so that the
    simulator runs while the services are being written; any other import error is
    raised."""
    builders: dict[str, Callable[[Simulator, RegionState], ASGIApp]] = {}
    for service_type, module_name in SERVICE_MODULES.items():
        full_name = f"stackfleet.simulator.services.{module_name}"
        try:
            module = importlib.import_module(full_name)
        except ModuleNotFoundError as exc:
            if exc.name != full_name:
                raise
            logger.warning("simulated %s service is missing (%s)", service_type, full_name)
            continue
        builders[service_type] = module.build
    return builders


def build_app(sim: Simulator) -> Starlette:
    """The ASGI app serving every simulated service of `sim`."""
    from stackfleet.simulator.services import keystone  # noqa: PLC0415 - import cycle

    builders = _service_builders()
    mounts: list[BaseRoute] = [
        *control_routes(sim),
        ServiceMount("/identity", app=keystone.build(sim)),
    ]
    for region_name, region in sim.state.regions.items():
        for service_type, builder in builders.items():
            if not sim.serves(service_type):
                continue
            mounts.append(
                ServiceMount(
                    f"/{region_name}/{SERVICE_PREFIXES[service_type]}", app=builder(sim, region)
                )
            )

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    app = Starlette(
        routes=mounts,
        exception_handlers={ApiError: api_error},
        middleware=[Middleware(FaultMiddleware, sim=sim)],
    )
    app.state.sim = sim
    return app
