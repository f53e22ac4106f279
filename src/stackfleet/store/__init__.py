"""Persistent state: resources, their history and the passes that saw them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackfleet.store.db import Store, open_store

__all__ = ["Store", "open_store"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: importing one of the store's modules (alerts, findings...)
    # should not open the engine machinery of the others.
    if name in __all__:
        from stackfleet.store import db

        return getattr(db, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
