"""State shared by the CLI's commands: global options and the lazily opened store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from stackfleet.store import Store
    from stackfleet.store.engine import Engine


@dataclass
class State:
    db_url: str | None = None
    debug: bool = False
    _store: Store | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    def store(self) -> Store:
        if self._store is None:
            # SQLAlchemy is imported by the commands that read the store, not by --help
            from stackfleet.store import open_store

            if self._engine is not None:
                from stackfleet.store import Store

                self._store = Store(self._engine)
            else:
                self._store = open_store(self.db_url)
        return self._store

    def engine(self) -> Engine:
        """The store's engine without the ORM: for the commands that only read through
        SQLAlchemy Core (store/listing.py), which then start in about half the time."""
        if self._store is not None:
            return self._store.engine
        if self._engine is None:
            from stackfleet.store.engine import open_engine

            self._engine = open_engine(self.db_url)
        return self._engine


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj
