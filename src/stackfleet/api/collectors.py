"""The shape every /metrics collector of the API shares: gauges declared once (name,
help, labels), families built fresh at each scrape (nothing is shared between scrapes
or apps), and a store that does not answer leaving that collector's gauges out — logged,
never failing the scrape, so the other collectors still answer.

A collector says what it reads (`read`, the only part guarded against an unavailable
store) and how the reading becomes samples (`fill`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.exc import SQLAlchemyError

from stackfleet.store import Store

log = logging.getLogger(__name__)

Reading = TypeVar("Reading")
Family = GaugeMetricFamily | CounterMetricFamily


@dataclass(frozen=True)
class Gauge:
    """One declared gauge: its help text and label names."""

    help: str
    labels: tuple[str, ...] = ()


class Families:
    """The metric families of one scrape: the declared gauges, in declaration order,
    then any made on demand (for names that depend on what was read)."""

    def __init__(self, declared: Mapping[str, Gauge]) -> None:
        self._families: dict[str, Family] = {
            name: GaugeMetricFamily(name, gauge.help, labels=list(gauge.labels))
            for name, gauge in declared.items()
        }

    def add(self, name: str, labels: Sequence[str], value: float) -> None:
        """One sample of the declared (or already made) family `name`."""
        self._families[name].add_metric(list(labels), value)

    def __getitem__(self, name: str) -> Family:
        return self._families[name]

    def family(self, name: str, help_text: str, labels: Sequence[str]) -> Family:
        """The family `name`, made on first use; a name ending in `_total` is a counter
        (prometheus_client adds the suffix back)."""
        if name not in self._families:
            if name.endswith("_total"):
                counter = name.removesuffix("_total")
                self._families[name] = CounterMetricFamily(counter, help_text, labels=labels)
            else:
                self._families[name] = GaugeMetricFamily(name, help_text, labels=labels)
        return self._families[name]

    def metrics(self) -> list[Metric]:
        return list(self._families.values())


class StoreCollector(Generic[Reading]):
    """A prometheus_client collector over one store, read at each scrape."""

    gauges: ClassVar[Mapping[str, Gauge]] = {}
    # what the log line calls this collector's readings when they are unavailable
    topic: ClassVar[str] = "fleet readings"
    unavailable: ClassVar[tuple[type[Exception], ...]] = (SQLAlchemyError,)

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        # names without samples: the registry spots clashes without a store read
        return Families(self.gauges).metrics()

    def collect(self) -> list[Metric]:
        families = Families(self.gauges)
        try:
            reading = self.read()
        except self.unavailable as exc:
            log.warning("metrics scrape: %s unavailable: %s", self.topic, exc)
            return self.when_unavailable(families)
        self.fill(families, reading)
        return families.metrics()

    def read(self) -> Reading:
        """Everything this collector needs from the store (and its settings files)."""
        raise NotImplementedError

    def fill(self, families: Families, reading: Reading) -> None:
        """Add the samples of `reading` to `families`."""
        raise NotImplementedError

    def when_unavailable(self, families: Families) -> list[Metric]:
        """What the scrape shows when `read` failed: by default none of these gauges."""
        return []
