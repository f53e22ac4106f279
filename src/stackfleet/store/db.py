"""The store object (ORM sessions over the engine that store/engine.py opens)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from stackfleet.store.engine import open_engine
from stackfleet.store.inventory import InventoryStore


class Store(InventoryStore):
    """The store: one object per database, shared by the CLI, API and engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        super().__init__(self.sessions)

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at `url` (default: STACKFLEET_DB_URL or
    SQLite in the user's data directory)."""
    return Store(open_engine(url, migrate))
