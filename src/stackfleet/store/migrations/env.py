"""Alembic environment: run migrations on the connection StackFleet hands over."""

from __future__ import annotations

from alembic import context

from stackfleet.store.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` CLI with a URL
    from sqlalchemy import create_engine

    from stackfleet.core.config import default_db_url

    connection = create_engine(default_db_url()).connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
