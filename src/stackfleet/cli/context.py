"""State shared by the CLI's commands: global options and the lazily opened store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from stackfleet.store import Store


@dataclass
class State:
    db_url: str | None = None
    debug: bool = False
    _store: Store | None = field(default=None, repr=False)

    def store(self) -> Store:
        if self._store is None:
            # SQLAlchemy is imported by the commands that read the store, not by --help
            from stackfleet.store import open_store

            self._store = open_store(self.db_url)
        return self._store


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj
