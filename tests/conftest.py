"""Fixtures shared by every test suite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from stackfleet.store import Store, open_store

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(autouse=True, scope="session")
def audit_key_file(tmp_path_factory) -> Iterator[None]:
    """The run's audit key in a temporary directory (not the user's configuration
    directory); subprocesses (the CLI, serve) inherit it through the environment."""
    import os

    from stackfleet.store.audit import KEY_FILE_ENV

    before = os.environ.get(KEY_FILE_ENV)
    os.environ[KEY_FILE_ENV] = str(tmp_path_factory.mktemp("audit") / "audit.key")
    yield
    if before is None:
        os.environ.pop(KEY_FILE_ENV, None)
    else:
        os.environ[KEY_FILE_ENV] = before


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    """A fresh SQLite store in a temporary directory."""
    s = open_store(f"sqlite:///{tmp_path / 'stackfleet.db'}")
    yield s
    s.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL (skipped when there is none)."""
    psycopg = pytest.importorskip("psycopg")
    name = f"sf_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, tmp_path) -> Iterator[Store]:
    """The same tests on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'stackfleet.db'}")
    else:
        s = open_store(request.getfixturevalue("postgres_url"))
    yield s
    s.close()
