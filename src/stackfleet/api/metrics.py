"""Prometheus exposition of the fleet: a collector that reads the store on each scrape.

Nothing is cached between scrapes and nothing lives in module-level gauges: every app
gets its own registry with a `FleetCollector` over its own store, so two apps (or two
tests) never share numbers. Prometheus keeps the history; we only say what is true now.

Units follow Prometheus conventions: memory and disk in bytes (Placement's MEMORY_MB is
MiB and DISK_GB is GiB), times as Unix seconds, counts of things as plain gauges.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy.exc import SQLAlchemyError

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

HYPERVISOR_LABELS = ["cloud", "region", "hypervisor", "state"]

# name -> help text of every other fleet metric; docs/api.md lists the same.
FLEET_HELP = {
    "stackfleet_hypervisors": "Hypervisors by state (up/down) as Nova reports them.",
    "stackfleet_servers": "Servers by status (ACTIVE, SHUTOFF, ERROR, ...).",
    "stackfleet_services": "Nova services, Neutron agents and Cinder services by binary and "
    "state (up/down).",
    "stackfleet_resources": "Resources of each kind in the inventory (not counting gone ones).",
    "stackfleet_last_pass_timestamp_seconds": "When the newest collection pass with this "
    "status finished (for a running pass: started), as a Unix time.",
    "stackfleet_last_pass_complete": "1 if the newest finished collection pass listed every "
    "kind completely, else 0.",
    "stackfleet_store_up": "1 if the store answered this scrape, else 0 (and no fleet "
    "metrics follow).",
    "stackfleet_metrics_collect_duration_seconds": "Seconds this scrape spent reading the store.",
}


def hypervisor_metric_name(spec: ResourceClassMetric, part: str) -> str:
    """The metric name for one part (total/used/capacity) of one resource class."""
    return f"stackfleet_hypervisor_{spec.stem}{USAGE_HELP[part][0]}{spec.unit_suffix}"


class FleetCollector:
    """Reads the store on each scrape and yields the fleet gauges."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> Iterable[Metric]:
        # Names without samples: lets the registry spot clashes without a store read.
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        families = self._families()
        try:
            snapshot = fleet_snapshot(self.store)
        except SQLAlchemyError as exc:
            log.warning("metrics scrape: the store did not answer: %s", exc)
            up = families["stackfleet_store_up"]
            up.add_metric([], 0)
            return [up]
        self._fill(families, snapshot)
        families["stackfleet_store_up"].add_metric([], 1)
        families["stackfleet_metrics_collect_duration_seconds"].add_metric(
            [], time.perf_counter() - started
        )
        return list(families.values())

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        for spec in RESOURCE_CLASS_METRICS:
            for part, (_infix, help_text) in USAGE_HELP.items():
                name = hypervisor_metric_name(spec, part)
                families[name] = GaugeMetricFamily(
                    name,
                    help_text.format(what=spec.what[0].upper() + spec.what[1:]),
                    labels=HYPERVISOR_LABELS,
                )
        labels = {
            "stackfleet_hypervisors": ["cloud", "region", "state"],
            "stackfleet_servers": ["cloud", "region", "status"],
            "stackfleet_services": ["cloud", "region", "kind", "binary", "state"],
            "stackfleet_resources": ["cloud", "region", "kind"],
            "stackfleet_last_pass_timestamp_seconds": ["cloud", "region", "status"],
            "stackfleet_last_pass_complete": ["cloud", "region"],
            "stackfleet_store_up": [],
            "stackfleet_metrics_collect_duration_seconds": [],
        }
        for name, help_text in FLEET_HELP.items():
            families[name] = GaugeMetricFamily(name, help_text, labels=labels[name])
        return families

    @staticmethod
    def _fill(families: dict[str, GaugeMetricFamily], snapshot: FleetSnapshot) -> None:
        states: dict[tuple[str, str], dict[str, int]] = {}
        for hyp in snapshot.hypervisors:
            labels = [hyp.cloud, hyp.region, hyp.hypervisor, hyp.state]
            for spec in RESOURCE_CLASS_METRICS:
                for part in USAGE_HELP:
                    value = hyp.values.get(f"{spec.resource_class}_{part}")
                    # no Placement data is not zero capacity: leave the series out
                    if value is not None:
                        families[hypervisor_metric_name(spec, part)].add_metric(
                            labels, value * spec.scale
                        )
            # up and down always present, so "down > 0" alerts see a 0 -> 1 change
            counts = states.setdefault((hyp.cloud, hyp.region), {"up": 0, "down": 0})
            counts[hyp.state] = counts.get(hyp.state, 0) + 1
        for (cloud, region), by_state in sorted(states.items()):
            for state, count in sorted(by_state.items()):
                families["stackfleet_hypervisors"].add_metric([cloud, region, state], count)

        for (cloud, region, status), count in sorted(snapshot.servers.items()):
            families["stackfleet_servers"].add_metric([cloud, region, status], count)

        services: dict[tuple[str, str, str, str], dict[str, int]] = {}
        for (cloud, region, kind, binary, state), count in snapshot.services.items():
            by_state = services.setdefault((cloud, region, kind, binary), {"up": 0, "down": 0})
            by_state[state] = by_state.get(state, 0) + count
        for key, by_state in sorted(services.items()):
            for state, count in sorted(by_state.items()):
                families["stackfleet_services"].add_metric([*key, state], count)

        for (cloud, region, kind), count in sorted(snapshot.resources.items()):
            families["stackfleet_resources"].add_metric([cloud, region, kind], count)

        for times in snapshot.passes:
            for status, at in sorted(times.by_status.items()):
                families["stackfleet_last_pass_timestamp_seconds"].add_metric(
                    [times.cloud, times.region, status], at.timestamp()
                )
            if times.last_complete is not None:
                families["stackfleet_last_pass_complete"].add_metric(
                    [times.cloud, times.region], 1 if times.last_complete else 0
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
    for name, family in FleetCollector._families().items():
        yield name, family.documentation
