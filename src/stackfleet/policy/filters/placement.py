"""High-availability filters: where the members of one service run, how many peers a
resource has, and whether a fleet is spread evenly."""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from stackfleet.model import KINDS, Kind
from stackfleet.policy.errors import Loc
from stackfleet.policy.fields import field_types
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

COMPARE = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}
SERVER_PLACES = ("host", "hypervisor_hostname", "availability_zone")


@FILTERS.register("colocated")
class ColocatedFilter(Filter):
    """Instances of one service that all run in one failure domain (`on`: host or
    availability_zone). On a server group: its live members (at least `min_members`)
    all share one place. On servers: servers are grouped into services by `group_by` —
    `server_group`, `name` (the first group of the regular expression `pattern`, e.g.
    `^(.+)-web-\\d+$`), `tag` (the rest of a tag starting with `prefix`, e.g.
    `service=`), or `metadata` (the value of metadata `key`) — and every server of a
    service with all its members in one place matches."""

    kinds = ("server", "server_group")
    type: Literal["colocated"] = "colocated"
    on: Literal["host", "hypervisor_hostname", "availability_zone"] = Field(
        default="host", description="The failure domain."
    )
    group_by: Literal["server_group", "name", "tag", "metadata"] = Field(
        default="server_group", description="How servers form a service (servers only)."
    )
    pattern: str | None = Field(
        default=None, description="For group_by name: a regex with a group."
    )
    prefix: str | None = Field(default=None, description="For group_by tag: the tag prefix.")
    key: str | None = Field(default=None, description="For group_by metadata: the key.")
    min_members: int = Field(default=2, ge=2, description="Smaller services never match.")

    def check(self, spec: Kind) -> Problems:
        if spec.name == "server_group":
            return []
        if self.group_by == "name":
            if not self.pattern:
                return [(("pattern",), "group_by name needs a pattern with one group")]
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                return [(("pattern",), f"not a valid regular expression: {exc}")]
            if compiled.groups < 1:
                return [
                    (("pattern",), "the pattern needs a group naming the service, e.g. ^(.+)-\\d+$")
                ]
        if self.group_by == "tag" and not self.prefix:
            return [(("prefix",), "group_by tag needs a prefix, e.g. 'service='")]
        if self.group_by == "metadata" and not self.key:
            return [(("key",), "group_by metadata needs a key")]
        return []

    def reads(self) -> set[str]:
        return {self._kind, "server", "server_group"}

    def compile(self, view: FleetView) -> Predicate:
        place = self.on
        least = self.min_members
        # places each cloud region has at all: one AZ cannot be spread over
        available: dict[tuple[str, str], set[Any]] = {}
        for server in view.records("server"):
            if server.get(place):
                available.setdefault((server["cloud"], server["region"]), set()).add(
                    server.get(place)
                )

        def one_place(members: list[Record]) -> bool:
            if len(members) < least:
                return False
            places = {m.get(place) for m in members}
            if len(places) != 1 or None in places or "" in places:
                return False
            segment = (members[0]["cloud"], members[0]["region"])
            return len(available.get(segment, ())) > 1

        if self._kind == "server_group":
            members_of = view.related("server_group", "members")
            return lambda record: one_place(members_of(record))
        service = self._service_key(view)
        groups: dict[tuple[str, str, str], list[Record]] = {}
        for server in view.records("server"):
            for name in service(server):
                groups.setdefault((server["cloud"], server["region"], name), []).append(server)
        flagged = {
            id(server) for members in groups.values() if one_place(members) for server in members
        }
        return lambda record: id(record) in flagged

    def _service_key(self, view: FleetView) -> Callable[[Record], list[str]]:
        if self.group_by == "server_group":
            groups_of = view.related("server", "server_groups")
            return lambda record: [g["id"] for g in groups_of(record)]
        if self.group_by == "name":
            pattern = re.compile(self.pattern or "")

            def by_name(record: Record) -> list[str]:
                found = pattern.search(record.get("name") or "")
                return [found.group(1)] if found and found.group(1) else []

            return by_name
        if self.group_by == "tag":
            prefix = self.prefix or ""
            return lambda record: [
                t[len(prefix) :]
                for t in record.get("tags") or ()
                if isinstance(t, str) and t.startswith(prefix)
            ]
        key = self.key or ""

        def by_metadata(record: Record) -> list[str]:
            value = (record.get("metadata") or {}).get(key)
            return [str(value)] if value else []

        return by_metadata


@FILTERS.register("peers")
class PeersFilter(Filter):
    """Count the resources of the same kind, in the same cloud region, that share this
    one's values of `group_by` and pass `filters` (itself included, if it passes), and
    match when that count compares to `count` with `op`. E.g. a DHCP agent with fewer
    than 2 alive DHCP agents in its region: `group_by: [agent_type]`,
    `filters: [{alive: true}]`, `op: lt`, `count: 2`."""

    type: Literal["peers"] = "peers"
    group_by: list[str] = Field(description="Fields whose values peers share.")
    filters: list[Any] = Field(default_factory=list, description="Which peers count.")
    op: Literal["lt", "le", "gt", "ge", "eq", "ne"] = Field(default="lt", description="Comparison.")
    count: int = Field(ge=0, description="How many peers.")
    _children: list[Filter] = []

    def resolve(self, kind: str, loc: Loc) -> Problems:
        self._kind = kind
        types = field_types(KINDS[kind])
        unknown = [f for f in self.group_by if f not in types]
        if unknown:
            return [
                (
                    ("group_by",),
                    f"{kind} has no field {unknown[0]!r}; fields: {', '.join(types)}",
                )
            ]
        self._children, problems = nested(self.filters, kind)
        return problems

    def reads(self) -> set[str]:
        return {self._kind} | reads_all(self._children)

    def compile(self, view: FleetView) -> Predicate:
        counts_as_peer = compile_all(self._children, view)
        fields = list(self.group_by)
        records = view.records(self._kind)
        # each record's group, computed once
        if len(fields) == 1:
            groups = {
                id(r): (r["cloud"], r["region"], _hashable(value))
                for r, value in zip(records, view.column(self._kind, fields[0]), strict=True)
            }
        else:
            groups = {
                id(r): (r["cloud"], r["region"], *[_hashable(r.get(f)) for f in fields])
                for r in records
            }
        counts = Counter(groups[id(r)] for r in records if counts_as_peer(r))
        compare = COMPARE[self.op]
        wanted = self.count

        def matches(record: Record) -> bool:
            group = groups.get(id(record))
            if group is None:
                group = (
                    record["cloud"],
                    record["region"],
                    *[_hashable(record.get(f)) for f in fields],
                )
            return bool(compare(counts.get(group, 0), wanted))

        return matches


@FILTERS.register("imbalance")
class ImbalanceFilter(Filter):
    """Uneven spread across the values of `field` (e.g. availability_zone): in each
    cloud region the resources passing `filters` are counted per value, and when the
    largest count exceeds the smallest by more than `max_ratio`, the resources of the
    largest group match."""

    type: Literal["imbalance"] = "imbalance"
    field: str = Field(description="The field to spread over, e.g. availability_zone.")
    max_ratio: float = Field(default=1.5, gt=1, description="Largest / smallest allowed.")
    filters: list[Any] = Field(default_factory=list, description="Which resources count.")
    _children: list[Filter] = []

    def resolve(self, kind: str, loc: Loc) -> Problems:
        self._kind = kind
        types = field_types(KINDS[kind])
        if self.field not in types:
            return [(("field",), f"{kind} has no field {self.field!r}; fields: {', '.join(types)}")]
        self._children, problems = nested(self.filters, kind)
        return problems

    def reads(self) -> set[str]:
        return {self._kind} | reads_all(self._children)

    def compile(self, view: FleetView) -> Predicate:
        counts_in = compile_all(self._children, view)
        field = self.field
        records = view.records(self._kind)
        counted = [
            (r, value)
            for r, value in zip(records, view.column(self._kind, field), strict=True)
            if value not in (None, "") and counts_in(r)
        ]
        per_segment: dict[tuple[str, str], Counter[Any]] = {}
        for record, value in counted:
            per_segment.setdefault((record["cloud"], record["region"]), Counter())[
                _hashable(value)
            ] += 1
        heavy: set[tuple[str, str, Any]] = set()
        for segment, counter in per_segment.items():
            if len(counter) < 2:
                continue
            (top, most), least = counter.most_common(1)[0], min(counter.values())
            if most > least * self.max_ratio:
                heavy.add((*segment, top))
        flagged = {
            id(record)
            for record, value in counted
            if (record["cloud"], record["region"], _hashable(value)) in heavy
        }
        return lambda record: id(record) in flagged


def _hashable(value: Any) -> Any:
    if value.__class__ is list:
        return tuple(value)
    if value.__class__ is dict:
        return tuple(sorted(value.items()))
    return value
