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
)
from sqlalchemy.engine.interfaces import Dialect
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
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("last_changed", DateTime(timezone=True), nullable=False),
    Column("last_pass_id", Integer, nullable=False),
    # set when a complete pass no longer saw it; cleared if it comes back
    Column("deleted_at", DateTime(timezone=True)),
    UniqueConstraint("cloud", "region", "kind", "resource_id", name="uq_resource"),
    Index("ix_resources_kind_status", "kind", "status"),
    Index("ix_resources_kind_project", "kind", "project_id"),
)
