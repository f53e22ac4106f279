"""Persistent state: resources, their history and the passes that saw them."""

from stackfleet.store.db import Store, open_store

__all__ = ["Store", "open_store"]
