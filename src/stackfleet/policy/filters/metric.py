"""The metric filter: an aggregate of a metric over a time window."""

from __future__ import annotations

import operator
from typing import Literal

from pydantic import Field

from stackfleet.core.times import Duration
from stackfleet.policy.filters.base import FILTERS, Filter, Predicate
from stackfleet.policy.view import FleetView, Record, key_of

COMPARE = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}


@FILTERS.register("metric")
class MetricFilter(Filter):
    """Compare an aggregate (`mean`, `max`, `min`, `last`, `count`) of a metric's
    samples over the last `window` with `value` — e.g. mean `cpu_util` below 2 over 14
    days. Samples come from whatever metric source fills the store. A resource with
    fewer than `min_samples` samples in the window never matches, whatever the operator:
    no data is not evidence of idleness."""

    type: Literal["metric"] = "metric"
    metric: str = Field(description="Metric name, e.g. cpu_util.")
    aggregate: Literal["mean", "max", "min", "last", "count"] = Field(
        default="mean", description="How to reduce the window."
    )
    window: Duration = Field(description="How far back, e.g. 14d.")
    op: Literal["lt", "le", "gt", "ge", "eq", "ne"] = Field(description="Comparison.")
    value: float = Field(description="Threshold.")
    min_samples: int = Field(default=1, ge=1, description="Fewer samples: no match.")

    def compile(self, view: FleetView) -> Predicate:
        since = (view.now - self.window).timestamp()
        data = view.metric(self._kind, self.metric, self.aggregate, since)
        compare = COMPARE[self.op]
        threshold = self.value
        least = self.min_samples

        def matches(record: Record) -> bool:
            entry = data.get(key_of(record))
            if entry is None or entry[1] < least:
                return False
            return bool(compare(entry[0], threshold))

        return matches
