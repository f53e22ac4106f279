"""Comparing two JSON responses by shape, not by value.

The testbed and the simulator hold different fleets, so their answers differ in every
value; what must agree is the shape a client relies on: which keys an object has, which
keys are always there, and the JSON type of each value. `shape_of` merges all the
objects of a list into one description (keys ever seen, keys always present, types seen
per key), and `differences` lists, by JSON path, where two such descriptions disagree.

Null is not a type of its own here: a key that is null on one side and a string on the
other agrees (the other fleet may simply have no value there), and types are compared
only where both sides have a non-null value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

JSON_TYPES = {bool: "boolean", int: "number", float: "number", str: "string"}


@dataclass
class Shape:
    """What a set of JSON values at one path look like, merged."""

    types: set[str] = field(default_factory=set)  # non-null JSON types seen
    nulls: int = 0
    values: int = 0
    # objects: every key seen, and the keys present in every object
    keys: dict[str, Shape] = field(default_factory=dict)
    always: set[str] | None = None
    # arrays: the merged shape of their items
    items: Shape | None = None

    def add(self, value: Any, path: str, maps: Iterable[str]) -> None:
        self.values += 1
        if value is None:
            self.nulls += 1
        elif isinstance(value, dict):
            self.types.add("object")
            if path in maps:
                # A map keyed by data (metadata, addresses by network name, inventories
                # by resource class): its keys are values, only its values have a shape.
                star = self.keys.setdefault("*", Shape())
                for inner in value.values():
                    star.add(inner, f"{path}.*", maps)
                return
            present = set(value)
            self.always = present if self.always is None else self.always & present
            for key, inner in value.items():
                self.keys.setdefault(key, Shape()).add(inner, f"{path}.{key}", maps)
        elif isinstance(value, list):
            self.types.add("array")
            if self.items is None:
                self.items = Shape()
            for inner in value:
                self.items.add(inner, f"{path}[]", maps)
        else:
            self.types.add(JSON_TYPES.get(type(value), type(value).__name__))


def shape_of(value: Any, maps: Iterable[str] = (), path: str = "$") -> Shape:
    """The shape of one JSON document. `maps` names the paths (e.g. `$.servers[].metadata`)
    whose objects are maps keyed by data."""
    shape = Shape()
    shape.add(value, path, frozenset(maps))
    return shape


def differences(
    real: Shape,
    sim: Shape,
    path: str = "$",
    optional: Iterable[str] = (),
    open_objects: Iterable[str] = (),
) -> list[str]:
    """Where the simulator's shape differs from the real service's, by path.

    `optional` names paths (`$.servers[].fault`) that either side may lack: keys a
    service sends only in some states (an ERROR server's fault), which one fleet may
    happen not to have. `open_objects` names objects whose keys depend on the deployment
    (a volume driver's capabilities): there only the keys both sides have are compared."""
    found: list[str] = []
    _compare(real, sim, path, frozenset(optional) | {f"{p}.*" for p in open_objects}, found)
    return found


def _compare(real: Shape, sim: Shape, path: str, optional: frozenset[str], out: list[str]) -> None:
    if real.types and sim.types and real.types != sim.types:
        out.append(f"{path}: type real {sorted(real.types)} vs simulator {sorted(sim.types)}")
        return
    if "object" in real.types and "object" in sim.types:
        # "*" stands for the values of a map; an empty map has none to compare
        real_keys, sim_keys = set(real.keys), set(sim.keys)
        if "*" in real_keys ^ sim_keys:
            real_keys.discard("*")
            sim_keys.discard("*")
        open_object = f"{path}.*" in optional
        for key in sorted(real_keys - sim_keys):
            if f"{path}.{key}" not in optional and not open_object:
                out.append(f"{path}.{key}: missing in the simulator")
        for key in sorted(sim_keys - real_keys):
            if f"{path}.{key}" not in optional and not open_object:
                out.append(f"{path}.{key}: only in the simulator")
        for key in sorted(real_keys & sim_keys):
            sub = f"{path}.{key}"
            if sub in optional or open_object or key == "*":
                pass
            elif key in (real.always or set()) and key not in (sim.always or set()):
                out.append(f"{sub}: always present in reality, sometimes absent in the simulator")
            elif key in (sim.always or set()) and key not in (real.always or set()):
                out.append(f"{sub}: sometimes absent in reality, always present in the simulator")
            _compare(real.keys[key], sim.keys[key], sub, optional, out)
    if "array" in real.types and "array" in sim.types and real.items and sim.items:
        _compare(real.items, sim.items, f"{path}[]", optional, out)
