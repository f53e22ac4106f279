"""Cheap marks of whether the inventory moved: read from primary keys only, so a
reader that keeps something derived from whole kinds (the dashboard's overview) can
tell in microseconds whether to read them again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from stackfleet.store.db import Store
from stackfleet.store.schema import Resource, ResourceChange


def inventory_marks(store: Store) -> tuple[Any, Any]:
    """(the newest recorded resource change's id, the newest resource row's key): a
    change of a history field (status, host, power state...) by a pass or an event
    moves the first, a resource seen for the first time the second."""
    with store.sessions() as session:
        return (
            session.scalar(select(func.max(ResourceChange.id))),
            session.scalar(select(func.max(Resource.pk))),
        )
