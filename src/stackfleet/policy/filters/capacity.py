"""Capacity filters: how full a hypervisor is, from its Placement inventory."""

from __future__ import annotations

import operator
from typing import Literal

from pydantic import Field

from stackfleet.policy.filters.base import FILTERS, Filter, Predicate
from stackfleet.policy.view import FleetView, Record

COMPARE = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


@FILTERS.register("allocation")
class AllocationFilter(Filter):
    """Hypervisors whose Placement allocation of a resource class, as a percentage of
    its capacity ((total - reserved) x allocation ratio), compares with `percent`.
    A hypervisor without Placement data for the class never matches."""

    kinds = ("hypervisor",)
    type: Literal["allocation"] = "allocation"
    resource_class: Literal["vcpu", "pcpu", "memory_mb", "disk_gb"] = Field(
        default="vcpu", description="Placement resource class."
    )
    op: Literal["lt", "le", "gt", "ge"] = Field(default="ge", description="Comparison.")
    percent: float = Field(ge=0, description="Percent of capacity.")

    def compile(self, view: FleetView) -> Predicate:
        used_key = f"{self.resource_class}_used"
        capacity_key = f"{self.resource_class}_capacity"
        compare = COMPARE[self.op]
        threshold = self.percent

        def matches(record: Record) -> bool:
            used, capacity = record.get(used_key), record.get(capacity_key)
            if used is None or not capacity:
                return False
            return bool(compare(100.0 * used / capacity, threshold))

        return matches
