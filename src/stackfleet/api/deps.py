"""Request dependencies every router shares: the app's store and the common query
parameters. Declared once so the OpenAPI document describes them the same way on
every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import Field

from stackfleet.store import Store


def get_store(request: Request) -> Store:
    """The store of the app serving `request` (each app has its own: no global state)."""
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]
CloudQuery = Annotated[
    str | None, Query(description="Only this cloud (its clouds.yaml name); empty: all.")
]
RegionQuery = Annotated[str | None, Query(description="Only this region; empty: all.")]

# Store ids are INTEGER columns (32-bit in PostgreSQL, and SQLite refuses anything past
# 64 bits): a larger id in a path can name nothing, and must be a 400, not a failed query.
MAX_ROW_ID = 2**31 - 1
# Paging past this many rows is not a listing anyone reads, and a larger OFFSET
# overflows the database's integer.
MAX_OFFSET = 2**31 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The record's id.")]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Records to skip.")]

# who a write is recorded as (the audit log's and the records' actor columns)
ActorName = Annotated[
    str,
    Field(min_length=1, max_length=255, description="Who does it (recorded in the audit log)."),
]
