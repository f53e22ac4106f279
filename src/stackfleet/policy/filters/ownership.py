"""Who owns a resource: the project filter."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackfleet.model import Kind
from stackfleet.policy.filters.base import FILTERS, Filter, Predicate, Problems
from stackfleet.policy.view import FleetView, Record


@FILTERS.register("project")
class ProjectFilter(Filter):
    """Match on the owning project, by id or name: `in: [admin, service]` matches
    resources of those projects, `not_in: [admin]` resources of any other project (a
    resource without a project never matches `in`, and always matches `not_in`)."""

    type: Literal["project"] = "project"
    in_: list[str] | None = Field(default=None, alias="in", description="Project ids or names.")
    not_in: list[str] | None = Field(default=None, description="Project ids or names.")

    def check(self, spec: Kind) -> Problems:
        if (self.in_ is None) == (self.not_in is None):
            return [((), "give exactly one of 'in' or 'not_in'")]
        return []

    def reads(self) -> set[str]:
        return {self._kind, "project"}

    def compile(self, view: FleetView) -> Predicate:
        names = {(p["cloud"], p["id"]): p.get("name") for p in view.records("project")}
        wanted = set(self.in_ or self.not_in or [])
        inside = self.in_ is not None

        def owned(record: Record) -> bool:
            project = record.get("project_id")
            if not project:
                return False
            return project in wanted or names.get((record["cloud"], project)) in wanted

        if inside:
            return owned
        return lambda record: not owned(record)
