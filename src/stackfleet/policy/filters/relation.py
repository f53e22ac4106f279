"""The relation filter: follow a relation (floating IP -> port, server -> hypervisor,
hypervisor -> servers, project -> everything it owns) and test the related resources."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from stackfleet.model import KINDS
from stackfleet.policy.errors import Loc
from stackfleet.policy.fields import relations_of
from stackfleet.policy.filters.base import (
    FILTERS,
    Filter,
    Predicate,
    Problems,
    compile_all,
    nested,
    reads_all,
)
from stackfleet.policy.view import FleetView, Record


def relation_names(kind: str) -> list[str]:
    names = list(relations_of(KINDS[kind]))
    if kind == "project":
        names.append("owned")
    return names


@FILTERS.register("relation")
class RelationFilter(Filter):
    """Match on related resources. `relation` is a relation of the kind, forward (declared
    on it: floating_ip `port`, server `hypervisor`, hypervisor `compute_service`) or
    reverse (another kind pointing at it: hypervisor `servers`, image `servers`, port
    `floating_ips`); projects also have `owned` (every resource of the project, in any
    region of the cloud). Only live resources count: a port that a complete pass no
    longer saw is absent.

    `filters` select among the related resources (default: all of them); `match` says
    how many must pass: `any` (at least one), `all` (at least one, and all of them) or
    `none`. `absent: true` is `match: none` — e.g. a floating IP whose port is absent.
    Filters nest: a server whose hypervisor's compute service is down is
    `{type: relation, relation: hypervisor, filters: [{type: relation,
    relation: compute_service, filters: [{state: down}]}]}`."""

    type: Literal["relation"] = "relation"
    relation: str = Field(description="The relation to follow.")
    match: Literal["any", "all", "none"] = Field(
        default="any", description="How many related resources must pass the filters."
    )
    absent: bool = Field(default=False, description="Short for match: none.")
    filters: list[Any] = Field(
        default_factory=list, description="Filters on the related resources."
    )
    _children: list[Filter] = []
    _target: str = ""

    def resolve(self, kind: str, loc: Loc) -> Problems:
        self._kind = kind
        names = relation_names(kind)
        if self.relation not in names:
            return [
                (
                    ("relation",),
                    f"{kind} has no relation {self.relation!r}; "
                    f"relations: {', '.join(names) or 'none'}",
                )
            ]
        if self.absent and self.match != "any":
            return [(("absent",), "give either 'absent: true' or 'match', not both")]
        if self.relation == "owned":
            if self.filters:
                return [(("filters",), "'owned' takes no filters (it counts everything)")]
            self._target = "project"
            self._children = []
            return []
        self._target = relations_of(KINDS[kind])[self.relation][0]
        self._children, problems = nested(self.filters, self._target)
        return problems

    def reads(self) -> set[str]:
        if self.relation == "owned":
            return set(KINDS)
        return {self._kind, self._target} | reads_all(self._children)

    def compile(self, view: FleetView) -> Predicate:
        related = view.related(self._kind, self.relation)
        passes = _memoised(compile_all(self._children, view))
        mode = "none" if self.absent else self.match
        if not self._children:
            if mode == "none":
                return lambda record: not related(record)
            return lambda record: bool(related(record))
        if mode == "any":
            return lambda record: any(passes(r) for r in related(record))
        if mode == "none":
            return lambda record: not any(passes(r) for r in related(record))

        def every(record: Record) -> bool:
            found = related(record)
            return bool(found) and all(passes(r) for r in found)

        return every


def _memoised(predicate: Predicate) -> Predicate:
    """Many resources share few related ones (100,000 servers, 1,000 hypervisors): test
    each related resource once per run."""
    seen: dict[int, bool] = {}

    def cached(record: Record) -> bool:
        key = id(record)
        answer = seen.get(key)
        if answer is None:
            answer = seen[key] = predicate(record)
        return answer

    return cached
