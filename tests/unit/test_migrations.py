"""The Alembic migrations build exactly the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from stackfleet.store.schema import Base


def test_migrated_schema_matches_the_models(any_store):
    with any_store.engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert drift == []


def test_opening_twice_migrates_once(tmp_path):
    from stackfleet.store import open_store

    url = f"sqlite:///{tmp_path / 'twice.db'}"
    open_store(url).close()
    store = open_store(url)
    assert store.list_passes() == []
    store.close()
