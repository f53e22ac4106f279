"""The store's tables as SQLAlchemy Core declares them, for what reads them without the
ORM: a command that lists resources imports this (and SQLAlchemy's Core), not the
mapping of every table in store/schema.py (about a tenth of a second of CPU).

`METADATA` is the ORM's metadata too (schema.Base uses it), and `schema.Resource` is
mapped onto `RESOURCES`: each table is declared once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    case,
    select,
)
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine


class _JSONOrJSONB(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL (as the migrations create the columns). The
    PostgreSQL type is looked up only when a PostgreSQL engine compiles a statement:
    importing SQLAlchemy's PostgreSQL dialect (and its drivers, asyncio with them) costs
    every CLI command that opens a SQLite store about 30 ms."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


JSONType = _JSONOrJSONB()

METADATA = MetaData()

# Current state of one resource, as last seen.
RESOURCES = Table(
    "resources",
    METADATA,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("cloud", String(255), nullable=False),
    Column("region", String(255), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("resource_id", String(255), nullable=False),
    Column("name", String(255)),
    Column("project_id", String(255)),
    Column("status", String(64)),
    Column("attrs", JSONType, nullable=False),
    Column("attrs_hash", String(32), nullable=False),
    # the hash of the item's JSON as the service sent it, keyed by the version of the
    # kind's record builder (model.kinds.Kind.builder_version), written only by a pass
    # that built the record from it; any other writer (an event) clears it. A pass skips
    # building the items whose raw hash a live row carries (sources.openstack.rawskip).
    Column("raw_hash", String(32)),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("last_changed", DateTime(timezone=True), nullable=False),
    Column("last_pass_id", Integer, nullable=False),
    # set when a complete pass no longer saw it; cleared if it comes back
    Column("deleted_at", DateTime(timezone=True)),
    UniqueConstraint("cloud", "region", "kind", "resource_id", name="uq_resource"),
    Index("ix_resources_kind_status", "kind", "status"),
    Index("ix_resources_kind_project", "kind", "project_id"),
    # what a pass reads of a kind's rows (ids, hashes, gone, seen), all in the index:
    # the rows themselves, with their records, stay on disk
    Index(
        "ix_resources_pass_read",
        "cloud",
        "region",
        "kind",
        "resource_id",
        "attrs_hash",
        "deleted_at",
        "last_seen",
        "last_pass_id",
        "raw_hash",
    ),
)
# The column `resources.last_seen` is when the row itself was last written as seen:
# inserted, changed or revived by a pass, seen by a pass whose listing was incomplete,
# re-read by an event, or marked gone (then it keeps when it was last seen). A complete
# listing that finds a row unchanged does not write it: it writes its kind's row here.

# The newest complete listing of one kind in one cloud region: when it was stored and by
# which pass. Every resource of the kind that is not gone was in it (what it missed was
# marked gone), so it stands for each row's "seen by that pass" and a steady pass writes
# this one row instead of rewriting every unchanged resource.
KINDS_SEEN = Table(
    "kinds_seen",
    METADATA,
    Column("cloud", String(255), primary_key=True),
    Column("region", String(255), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("pass_id", Integer, nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)


def last_seen_of(resources: Any = RESOURCES) -> ColumnElement[Any]:
    """When a resource was last seen: by the newest complete listing of its kind while
    it is live, else (or when the row was written as seen later) its row's own time."""
    row = resources.c
    listed = (
        select(KINDS_SEEN.c.seen_at)
        .where(
            KINDS_SEEN.c.cloud == row.cloud,
            KINDS_SEEN.c.region == row.region,
            KINDS_SEEN.c.kind == row.kind,
        )
        .correlate_except(KINDS_SEEN)
        .scalar_subquery()
    )
    return case(
        (row.deleted_at.is_(None) & (listed > row.last_seen), listed),
        else_=row.last_seen,
    )
