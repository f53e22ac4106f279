"""What a policy may name on a resource: the kind's fields (from the model), the fields
every record has, and the bookkeeping StackFleet adds (where and when it was seen)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stackfleet.model import KINDS, Kind, Relation

BASE_FIELDS: dict[str, type] = {"id": str, "name": str, "project_id": str, "status": str}
# Added to every record when it is loaded for evaluation.
META_FIELDS: dict[str, type] = {
    "cloud": str,
    "region": str,
    "kind": str,
    "first_seen": datetime,
    "last_seen": datetime,
    "last_changed": datetime,
}
# Fields that hold a time, besides the meta ones: by their OpenStack names.
_TIME_SUFFIXES = ("_at", "_timestamp")
_TIME_NAMES = ("created", "updated")


def field_types(spec: Kind) -> dict[str, type]:
    """Every field a filter may read on `spec`, with its type."""
    types = dict(BASE_FIELDS)
    types.update({f.name: f.type for f in spec.fields})
    types.update(META_FIELDS)
    return types


def time_fields(spec: Kind) -> list[str]:
    """Fields of `spec` that hold a timestamp (for the age filter)."""
    names = [
        f.name for f in spec.fields if f.name in _TIME_NAMES or f.name.endswith(_TIME_SUFFIXES)
    ]
    return names + ["first_seen", "last_seen", "last_changed"]


def state_fields(spec: Kind) -> list[str]:
    """Fields whose changes the store records (so their current value has an age)."""
    return ["status", *spec.history_fields]


def updated_field(spec: Kind) -> str | None:
    """The field the service bumps on every save of the resource, if it has one."""
    names = {f.name for f in spec.fields}
    for candidate in ("updated", "updated_at"):
        if candidate in names:
            return candidate
    return None


def relations_of(spec: Kind) -> dict[str, tuple[str, Relation, bool]]:
    """Relations a filter may follow from `spec`: name -> (related kind, relation,
    reverse?). Forward relations are declared on the kind; reverse ones on the kinds that
    point at it (e.g. hypervisor -> servers)."""
    found: dict[str, tuple[str, Relation, bool]] = {
        rel.name: (rel.target, rel, False) for rel in spec.relations
    }
    for other in KINDS.values():
        for rel in other.relations:
            if rel.target == spec.name and rel.reverse and rel.reverse not in found:
                found[rel.reverse] = (other.name, rel, True)
    return found


def get_path(record: dict[str, Any], parts: tuple[str, ...]) -> Any:
    """The value at a dotted path (dicts only); None when any step is missing."""
    value: Any = record
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
