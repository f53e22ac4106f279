"""Opening a store's database: the engine, SQLite pragmas, Alembic migrations. Core only
(no ORM): a command that only reads (`servers list`) opens its engine from here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from stackfleet.core.config import default_db_url
from stackfleet.core.errors import ConfigError
from stackfleet.core.redaction import redact_text, redact_url
from stackfleet.store.encoding import json_serializer

log = logging.getLogger(__name__)

__all__ = [
    "MIGRATIONS",
    "Engine",
    "at_head",
    "head_revision",
    "make_engine",
    "open_engine",
    "upgrade",
]

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a pass writes; NORMAL sync is safe with WAL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`, with SQLite tuned for one writer and many readers."""
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url, connect_args={"check_same_thread": False}, json_serializer=json_serializer
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return create_engine(url, pool_pre_ping=True, json_serializer=json_serializer)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"cannot use database URL {redact_url(url)!r}: {redact_text(str(exc))}"
        ) from exc


def head_revision() -> str:
    """The newest migration's revision, read from the migration files' `revision` and
    `down_revision` lines (a test keeps this equal to Alembic's head) without importing
    Alembic: the revision no other migration names as its down_revision."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            found = _REVISION_LINE.match(line)
            if found:
                (revisions if found.group(1) == "revision" else downs).add(found.group(2))
    return max(revisions - downs)


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*=\s*[\"']([^\"']+)[\"']")


def at_head(engine: Engine) -> bool:
    """Whether the store's schema is already at the newest migration: a cheap read that
    spares a command the import and run of Alembic (a third of a second) when it is."""
    try:
        with engine.connect() as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except (OperationalError, ProgrammingError):
        return False  # no alembic_version table yet: a new store
    return [row[0] for row in current] == [head_revision()]


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    # Alembic is imported here: most commands open a store that is already up to date
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def open_engine(url: str | None = None, migrate: bool = True) -> Engine:
    """The engine of the store at `url` (default: STACKFLEET_DB_URL or SQLite in the
    user's data directory), migrated first by default."""
    url = url or default_db_url()
    engine = make_engine(url)
    if migrate and not at_head(engine):
        try:
            upgrade(engine)
        except OperationalError as exc:
            raise ConfigError(
                f"cannot open the store at {redact_url(url)!r}: {redact_text(str(exc.orig))}"
            ) from exc
    return engine
