"""Capacity planning over HTTP: ``/v1/capacity`` (per region: allocation and N+1),
``/v1/capacity/flavors``, ``/v1/capacity/quotas``, ``/v1/capacity/ips``,
``/v1/capacity/network`` and ``/v1/capacity/storage``, and their gauges on ``/metrics``.

Everything is computed from the store (the last pass and the last quota sweep) at each
request or scrape; nothing here calls a cloud. ``install(app)`` adds the routes and the
collector to one app.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, Field

from stackfleet.api.collectors import Families, Gauge, StoreCollector
from stackfleet.api.deps import CloudQuery, RegionQuery, StoreDep
from stackfleet.engine.capacity import (
    FLAVOR_FIT_KINDS,
    QUOTA_KINDS,
    REPORT_KINDS,
    RESOURCE_CLASSES,
    Fleet,
    capacity_report,
    flavor_fit,
    hypervisor_rows,
    ip_pool_rows,
    load_fleet,
    network_node_rows,
    quota_rows,
    single_agent_rows,
    storage_pool_rows,
)
from stackfleet.engine.quota_sweep import read_metric
from stackfleet.sources.openstack.quotas import QUOTA_SOURCES
from stackfleet.store import Store, health

log = logging.getLogger(__name__)

router = APIRouter(tags=["capacity"])


class CapacityReport(BaseModel):
    """Per region: hosts, allocation per resource class and the N+1 verdict."""

    regions: list[dict[str, Any]] = Field(
        description="cloud, region, hosts, usable_hosts (enabled and up), "
        "<class>_capacity/_used/_percent for vcpu, pcpu, memory_mb, disk_gb over usable "
        "hosts, and n_plus_one: lost_host (the usable host with most memory allocated), "
        "servers_to_move, survives (null: fewer than two usable hosts), "
        "unplaced_servers, <class>_headroom and <class>_headroom_percent left on the "
        "surviving hosts after re-placing."
    )
    hypervisors: list[dict[str, Any]] | None = Field(
        default=None, description="With hosts=true: allocation per hypervisor."
    )


class Rows(BaseModel):
    """Rows of one capacity view."""

    items: list[dict[str, Any]]


@router.get("/v1/capacity", response_model=CapacityReport)
def get_capacity(
    store: StoreDep,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    hosts: Annotated[bool, Query(description="Also one row per hypervisor.")] = False,
) -> Any:
    """Allocation per region (VCPU and PCPU apart, from Placement) and whether each
    region survives losing its largest host."""
    fleet = load_fleet(store, cloud, region, kinds=REPORT_KINDS)
    return {
        "regions": capacity_report(fleet),
        "hypervisors": hypervisor_rows(fleet) if hosts else None,
    }


@router.get("/v1/capacity/flavors", response_model=Rows)
def get_flavor_fit(store: StoreDep, cloud: CloudQuery = None, region: RegionQuery = None) -> Any:
    """How many more servers of each flavor fit, per region (zone null) and per zone."""
    return {"items": flavor_fit(load_fleet(store, cloud, region, kinds=FLAVOR_FIT_KINDS))}


@router.get("/v1/capacity/quotas", response_model=Rows)
def get_quotas(
    store: StoreDep,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    project: Annotated[str | None, Query(description="Project id or name.")] = None,
) -> Any:
    """Per project and resource: used, limit (-1 unlimited, null unknown), percent,
    state (ok, high, over, unlimited, unknown) and why a limit is unknown."""
    fleet = load_fleet(store, cloud, region, kinds=QUOTA_KINDS)
    return {"items": quota_rows(fleet, project)}


@router.get("/v1/capacity/ips", response_model=Rows)
def get_ip_pools(
    store: StoreDep,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    all_networks: Annotated[bool, Query(description="Every network, not only external.")] = False,
) -> Any:
    """External networks with used / total addresses (null: not readable)."""
    fleet = load_fleet(store, cloud, region, kinds=("network",))
    return {"items": ip_pool_rows(fleet, external_only=not all_networks)}


@router.get("/v1/capacity/network", response_model=Rows)
def get_network_nodes(
    store: StoreDep,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    single: Annotated[
        bool, Query(description="Routers and networks hosted by one agent (or dead ones).")
    ] = False,
) -> Any:
    """Neutron agents per host with the routers and networks they host."""
    fleet = load_fleet(store, cloud, region, kinds=("network_agent", "router", "network"))
    return {"items": single_agent_rows(fleet) if single else network_node_rows(fleet)}


@router.get("/v1/capacity/storage", response_model=Rows)
def get_storage_pools(store: StoreDep, cloud: CloudQuery = None, region: RegionQuery = None) -> Any:
    """Cinder pools: capacity, free, provisioned ratio and volume count."""
    fleet = load_fleet(store, cloud, region, kinds=("storage_pool", "volume"))
    return {"items": storage_pool_rows(fleet)}


# -- /metrics ------------------------------------------------------------------------------

CAPACITY_GAUGES = {
    "stackfleet_capacity_flavor_fit": Gauge(
        "How many more servers of the flavor fit on the region's enabled, up hypervisors.",
        ("cloud", "region", "flavor"),
    ),
    "stackfleet_capacity_n_plus_one_survives": Gauge(
        "1 if the region's servers still fit after losing its largest host, 0 if not "
        "(absent: fewer than two usable hosts).",
        ("cloud", "region", "lost_host"),
    ),
    "stackfleet_capacity_n_plus_one_headroom": Gauge(
        "Capacity of each Placement resource class left on the surviving hosts after "
        "re-placing the largest host's servers.",
        ("cloud", "region", "resource_class"),
    ),
    "stackfleet_capacity_allocated_ratio": Gauge(
        "Share (0-1) of the usable hypervisors' Placement capacity allocated, per resource class.",
        ("cloud", "region", "resource_class"),
    ),
    "stackfleet_quota_used": Gauge(
        "Project usage of a quota resource, counted from the inventory.",
        ("cloud", "region", "project_id", "resource"),
    ),
    "stackfleet_quota_limit": Gauge(
        "Project quota limit (-1 = unlimited); absent when unknown.",
        ("cloud", "region", "project_id", "resource"),
    ),
    "stackfleet_ip_pool_used": Gauge(
        "Addresses allocated on an external network.",
        ("cloud", "region", "network_id", "network"),
    ),
    "stackfleet_ip_pool_total": Gauge(
        "Addresses in an external network's allocation pools.",
        ("cloud", "region", "network_id", "network"),
    ),
}
PLACEMENT_NAMES = {"vcpu": "VCPU", "pcpu": "PCPU", "memory_mb": "MEMORY_MB", "disk_gb": "DISK_GB"}

Sample = tuple[str, list[str], float]


def fleet_version(store: Store) -> tuple[Any, ...]:
    """What changes when a capacity report can change: the newest pass (begun and
    finished) and the newest quota reading."""
    return health.fleet_version(store, [read_metric(s.service) for s in QUOTA_SOURCES])


class CapacityCollector(StoreCollector[list[Sample]]):
    """Capacity gauges from the store. Computing them reads the whole inventory, so the
    samples are kept until a pass finishes or a quota sweep writes (checked at each
    scrape): a scrape between passes costs two small queries."""

    gauges = CAPACITY_GAUGES
    topic = "capacity"

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._cached: tuple[tuple[Any, ...], list[Sample]] | None = None
        self._lock = threading.Lock()

    def read(self) -> list[Sample]:
        with self._lock:
            version = fleet_version(self.store)
            if self._cached is None or self._cached[0] != version:
                self._cached = (version, list(self._samples(load_fleet(self.store))))
            return self._cached[1]

    def fill(self, families: Families, reading: list[Sample]) -> None:
        for name, labels, value in reading:
            families.add(name, labels, value)

    @staticmethod
    def _samples(fleet: Fleet) -> Iterator[Sample]:
        for row in flavor_fit(fleet):
            if row["zone"] is None:
                yield (
                    "stackfleet_capacity_flavor_fit",
                    [row["cloud"], row["region"], str(row["flavor"])],
                    row["fits"],
                )
        for row in capacity_report(fleet):
            base = [row["cloud"], row["region"]]
            verdict = row["n_plus_one"]
            if verdict["survives"] is not None:
                yield (
                    "stackfleet_capacity_n_plus_one_survives",
                    [*base, str(verdict["lost_host"])],
                    1 if verdict["survives"] else 0,
                )
            for rc in RESOURCE_CLASSES:
                rc_label = PLACEMENT_NAMES[rc]
                if verdict.get(f"{rc}_headroom") is not None:
                    yield (
                        "stackfleet_capacity_n_plus_one_headroom",
                        [*base, rc_label],
                        verdict[f"{rc}_headroom"],
                    )
                if row.get(f"{rc}_percent") is not None:
                    yield (
                        "stackfleet_capacity_allocated_ratio",
                        [*base, rc_label],
                        row[f"{rc}_percent"] / 100,
                    )
        for row in quota_rows(fleet):
            labels = [row["cloud"], row["region"], row["project_id"], row["resource"]]
            yield "stackfleet_quota_used", labels, row["used"]
            if row["limit"] is not None:
                yield "stackfleet_quota_limit", labels, row["limit"]
        for row in ip_pool_rows(fleet):
            labels = [row["cloud"], row["region"], row["network_id"], str(row["network"])]
            if row["total"] is not None:
                yield "stackfleet_ip_pool_total", labels, row["total"]
            if row["used"] is not None:
                yield "stackfleet_ip_pool_used", labels, row["used"]


def install(app: FastAPI) -> None:
    """Add the capacity routes to `app` and its gauges to the app's registry."""
    app.include_router(router)
    app.state.registry.register(CapacityCollector(app.state.store))
