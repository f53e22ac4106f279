"""Reading a handful of stored resources by id, for code that starts from something
other than the inventory (alerts name a resource by its labels)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from stackfleet.store.db import Store
from stackfleet.store.schema import Resource

ResourceKey = tuple[str, str, str, str]  # cloud, region, kind, resource id
CHUNK = 500


def attrs_by_key(store: Store, keys: Iterable[ResourceKey]) -> dict[ResourceKey, dict[str, Any]]:
    """The stored records (not gone) of `keys`, by key; missing ones are left out. One
    query per (cloud, region, kind) and chunk of ids."""
    wanted: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for cloud, region, kind, resource_id in keys:
        wanted[(cloud, region, kind)].add(resource_id)
    found: dict[ResourceKey, dict[str, Any]] = {}
    with store.session() as session:
        for (cloud, region, kind), ids in wanted.items():
            ordered = sorted(ids)
            for start in range(0, len(ordered), CHUNK):
                rows = session.execute(
                    select(Resource.resource_id, Resource.attrs).where(
                        Resource.cloud == cloud,
                        Resource.region == region,
                        Resource.kind == kind,
                        Resource.resource_id.in_(ordered[start : start + CHUNK]),
                        Resource.deleted_at.is_(None),
                    )
                )
                for resource_id, attrs in rows:
                    found[(cloud, region, kind, resource_id)] = dict(attrs or {})
    return found
