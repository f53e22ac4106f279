"""Request dependencies every router shares: the app's store and the common query
parameters. Declared once so the OpenAPI document describes them the same way on
every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

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
