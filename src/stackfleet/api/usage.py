"""Real usage over HTTP: ``GET /v1/usage/servers/{id}`` and
``GET /v1/usage/hypervisors/{id}`` (latest values and window means from the store), and
two aggregate gauges on ``/metrics``.

Per-server values are not exported on /metrics: 20,000 servers times seven metrics is
too many series for a scrape (and Prometheus users have the libvirt exporter already).
/metrics carries only, per cloud region, how many servers have a recent CPU reading and
how many of those are idle (newest reading under 2 %, the waste pack's threshold).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from stackfleet.api import rbac
from stackfleet.api.collectors import Families, Gauge, StoreCollector
from stackfleet.api.deps import get_store
from stackfleet.core.errors import NotFoundError
from stackfleet.engine.nodes import find_hypervisor
from stackfleet.engine.usage import idle_counts, usage_of

log = logging.getLogger(__name__)

router = APIRouter(tags=["usage"])

IDLE_THRESHOLD = 2.0
# raw samples are kept 6 hours: the newest reading of a server within them
IDLE_WINDOW = timedelta(hours=6)


class MetricUsage(BaseModel):
    """One usage metric: the newest value and the means over 1 h, 1 d and 14 d."""

    model_config = ConfigDict(extra="allow")

    latest: float | None = None
    at: str | None = Field(default=None, description="When the newest value was read.")


class ResourceUsage(BaseModel):
    """The usage of one server or hypervisor."""

    model_config = ConfigDict(extra="allow")

    kind: str
    id: str
    name: str | None = None
    metrics: dict[str, MetricUsage] = Field(
        description="cpu_util (%), memory_used_mb, memory_max_mb, disk_read_bps, "
        "disk_write_bps, net_rx_bps, net_tx_bps (bytes/s); hypervisors: cpu_util, "
        "memory_used_mb, memory_used_percent."
    )
    last_attempt: dict[str, Any] | None = Field(
        default=None, description="The newest diagnostics call: when, and whether it worked."
    )


def _usage(request: Request, kind: str, ident: str) -> dict[str, Any]:
    store = get_store(request)
    # NotFoundError -> 404 by the app's handlers
    record = (
        find_hypervisor(store, ident) if kind == "hypervisor" else store.get_resource(kind, ident)
    )
    project = rbac.scope(request)
    if project is not None and record.get("project_id") != project:
        raise NotFoundError(f"no {kind} {ident}")
    result = usage_of(store, kind, record["id"])
    result["name"] = record.get("name")
    return result


@router.get("/v1/usage/servers/{server}", response_model=ResourceUsage)
def server_usage(
    request: Request, server: Annotated[str, Path(description="Server id or name.")]
) -> Any:
    """A server's usage: newest CPU %, memory, disk and network rates and their means."""
    return _usage(request, "server", server)


@router.get("/v1/usage/hypervisors/{hypervisor}", response_model=ResourceUsage)
def hypervisor_usage(
    request: Request, hypervisor: Annotated[str, Path(description="Hypervisor id or name.")]
) -> Any:
    """A hypervisor's usage (node_exporter through Prometheus): CPU % and memory."""
    return _usage(request, "hypervisor", hypervisor)


class UsageCollector(StoreCollector[dict[tuple[str, str], tuple[int, int]]]):
    """The aggregate usage gauges of /metrics, read from the store at each scrape."""

    gauges = {
        "stackfleet_servers_usage_sampled": Gauge(
            "Servers with a CPU reading (diagnostics or Prometheus) in the last 6 hours.",
            ("cloud", "region"),
        ),
        "stackfleet_servers_idle": Gauge(
            "Servers whose newest CPU reading of the last 6 hours is under 2 %.",
            ("cloud", "region"),
        ),
    }
    topic = "usage counts"

    def read(self) -> dict[tuple[str, str], tuple[int, int]]:
        return idle_counts(self.store, IDLE_THRESHOLD, IDLE_WINDOW, time.time())

    def fill(self, families: Families, reading: dict[tuple[str, str], tuple[int, int]]) -> None:
        for (cloud, region), (n_sampled, n_idle) in sorted(reading.items()):
            families.add("stackfleet_servers_usage_sampled", [cloud, region], n_sampled)
            families.add("stackfleet_servers_idle", [cloud, region], n_idle)


def install(app: FastAPI) -> None:
    """Add the usage routes to `app` and its gauges to the app's registry."""
    app.include_router(router)
    app.state.registry.register(UsageCollector(app.state.store))
