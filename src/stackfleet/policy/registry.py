"""Registries of named building blocks (filters, actions), Cloud Custodian style: each
entry is a class registered under its `type` name, carrying the schema of its options
(a pydantic model) and a docstring that feeds the policy reference."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=type[BaseModel])


class Registry(Generic[T]):
    """Classes by name. `what` names the thing in error messages ("filter")."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(cls: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._items[name] = cls
            return cls

        return add

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items


def doc_of(cls: type) -> str:
    """The class's docstring, dedented (its own, not an inherited one)."""
    return inspect.cleandoc(cls.__dict__.get("__doc__") or "")


def options_of(cls: type[BaseModel]) -> list[dict[str, Any]]:
    """The options of a registered class as rows for docs: name, type, default, text."""
    schema = cls.model_json_schema()
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    rows = []
    for name, prop in properties.items():
        if name == "type":
            continue
        rows.append(
            {
                "name": name,
                "type": _type_text(prop),
                "required": name in required,
                "default": prop.get("default"),
                "description": prop.get("description", ""),
            }
        )
    return rows


def _type_text(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " | ".join(str(v) for v in prop["enum"])
    if "const" in prop:
        return str(prop["const"])
    if "anyOf" in prop:
        return " | ".join(_type_text(p) for p in prop["anyOf"] if p.get("type") != "null")
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type_text(prop.get('items', {}))}"
    return str(kind)
