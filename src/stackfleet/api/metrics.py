"""Prometheus exposition of the fleet: a collector that reads the store on each scrape.

Nothing is cached between scrapes and nothing lives in module-level gauges: every app
gets its own registry with a `FleetCollector` over its own store, so two apps (or two
tests) never share numbers. Prometheus keeps the history; we only say what is true now.
The collector shape shared with the other /metrics collectors is in `api/collectors.py`.

Units follow Prometheus conventions: memory and disk in bytes (Placement's MEMORY_MB is
MiB and DISK_GB is GiB), times as Unix seconds, counts of things as plain gauges.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from stackfleet.api.collectors import Families, Gauge, StoreCollector
from stackfleet.store import Store
from stackfleet.store.metrics_queries import FleetSnapshot, fleet_snapshot

log = logging.getLogger(__name__)

MIB = 1024**2
GIB = 1024**3


@dataclass(frozen=True)
class ResourceClassMetric:
    """How one Placement resource class of a hypervisor is exposed."""

    resource_class: str
    stem: str
    unit_suffix: str
    scale: int
    what: str


# one entry per class in stackfleet.store.metrics_queries.RESOURCE_CLASSES
RESOURCE_CLASS_METRICS = (
    ResourceClassMetric("vcpu", "vcpus", "", 1, "VCPUs"),
    ResourceClassMetric("pcpu", "pcpus", "", 1, "dedicated PCPUs"),
    ResourceClassMetric("memory_mb", "memory", "_bytes", MIB, "bytes of memory"),
    ResourceClassMetric("disk_gb", "disk", "_bytes", GIB, "bytes of local disk"),
)

# part -> (name infix, help sentence); "total" has no infix: it is the thing itself
USAGE_HELP = {
    "total": (
        "",
        "{what} in the hypervisor's Placement inventory (before reserved and allocation ratio).",
    ),
    "used": ("_used", "{what} allocated to consumers in Placement."),
    "capacity": (
        "_capacity",
        "{what} Placement can allocate: (total - reserved) * allocation_ratio.",
    ),
}

HYPERVISOR_LABELS = ("cloud", "region", "hypervisor", "state")


def hypervisor_metric_name(spec: ResourceClassMetric, part: str) -> str:
    """The metric name for one part (total/used/capacity) of one resource class."""
    return f"stackfleet_hypervisor_{spec.stem}{USAGE_HELP[part][0]}{spec.unit_suffix}"


# every fleet gauge, in exposition order; docs/api.md lists the same
FLEET_GAUGES: dict[str, Gauge] = {
    **{
        hypervisor_metric_name(spec, part): Gauge(
            help_text.format(what=spec.what[0].upper() + spec.what[1:]), HYPERVISOR_LABELS
        )
        for spec in RESOURCE_CLASS_METRICS
        for part, (_infix, help_text) in USAGE_HELP.items()
    },
    "stackfleet_hypervisors": Gauge(
        "Hypervisors by state (up/down) as Nova reports them.", ("cloud", "region", "state")
    ),
    "stackfleet_servers": Gauge(
        "Servers by status (ACTIVE, SHUTOFF, ERROR, ...).", ("cloud", "region", "status")
    ),
    "stackfleet_services": Gauge(
        "Nova services, Neutron agents and Cinder services by binary and state (up/down).",
        ("cloud", "region", "kind", "binary", "state"),
    ),
    "stackfleet_resources": Gauge(
        "Resources of each kind in the inventory (not counting gone ones).",
        ("cloud", "region", "kind"),
    ),
    "stackfleet_last_pass_timestamp_seconds": Gauge(
        "When the newest collection pass with this status finished (for a running pass: "
        "started), as a Unix time.",
        ("cloud", "region", "status"),
    ),
    "stackfleet_last_pass_complete": Gauge(
        "1 if the newest finished collection pass listed every kind completely, else 0.",
        ("cloud", "region"),
    ),
    "stackfleet_store_up": Gauge(
        "1 if the store answered this scrape, else 0 (and no fleet metrics follow)."
    ),
    "stackfleet_metrics_collect_duration_seconds": Gauge(
        "Seconds this scrape spent reading the store."
    ),
}


class FleetCollector(StoreCollector[tuple[float, FleetSnapshot]]):
    """Reads the store on each scrape and yields the fleet gauges."""

    gauges = FLEET_GAUGES
    topic = "the store"

    def read(self) -> tuple[float, FleetSnapshot]:
        started = time.perf_counter()
        return started, fleet_snapshot(self.store)

    def when_unavailable(self, families: Families) -> list[Metric]:
        families.add("stackfleet_store_up", [], 0)
        return [families["stackfleet_store_up"]]

    def fill(self, families: Families, reading: tuple[float, FleetSnapshot]) -> None:
        started, snapshot = reading
        states: dict[tuple[str, str], dict[str, int]] = {}
        for hyp in snapshot.hypervisors:
            labels = [hyp.cloud, hyp.region, hyp.hypervisor, hyp.state]
            for spec in RESOURCE_CLASS_METRICS:
                for part in USAGE_HELP:
                    value = hyp.values.get(f"{spec.resource_class}_{part}")
                    # no Placement data is not zero capacity: leave the series out
                    if value is not None:
                        families.add(hypervisor_metric_name(spec, part), labels, value * spec.scale)
            # up and down always present, so "down > 0" alerts see a 0 -> 1 change
            counts = states.setdefault((hyp.cloud, hyp.region), {"up": 0, "down": 0})
            counts[hyp.state] = counts.get(hyp.state, 0) + 1
        for (cloud, region), by_state in sorted(states.items()):
            for state, count in sorted(by_state.items()):
                families.add("stackfleet_hypervisors", [cloud, region, state], count)

        for (cloud, region, status), count in sorted(snapshot.servers.items()):
            families.add("stackfleet_servers", [cloud, region, status], count)

        services: dict[tuple[str, str, str, str], dict[str, int]] = {}
        for (cloud, region, kind, binary, state), count in snapshot.services.items():
            by_state = services.setdefault((cloud, region, kind, binary), {"up": 0, "down": 0})
            by_state[state] = by_state.get(state, 0) + count
        for key, by_state in sorted(services.items()):
            for state, count in sorted(by_state.items()):
                families.add("stackfleet_services", [*key, state], count)

        for (cloud, region, kind), count in sorted(snapshot.resources.items()):
            families.add("stackfleet_resources", [cloud, region, kind], count)

        for times in snapshot.passes:
            for status, at in sorted(times.by_status.items()):
                families.add(
                    "stackfleet_last_pass_timestamp_seconds",
                    [times.cloud, times.region, status],
                    at.timestamp(),
                )
            if times.last_complete is not None:
                families.add(
                    "stackfleet_last_pass_complete",
                    [times.cloud, times.region],
                    1 if times.last_complete else 0,
                )
        families.add("stackfleet_store_up", [], 1)
        families.add(
            "stackfleet_metrics_collect_duration_seconds", [], time.perf_counter() - started
        )


def make_registry(store: Store) -> CollectorRegistry:
    """A registry of its own for one app: the fleet collector over `store`, plus the
    usual process, platform and garbage-collector metrics of this process."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(FleetCollector(store))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry's metrics in the format the scraper asked for (OpenMetrics or the
    Prometheus text format), and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def metric_names() -> Iterator[tuple[str, str]]:
    """(name, help) of every fleet metric, for documentation."""
    for name, gauge in FLEET_GAUGES.items():
        yield name, gauge.help
