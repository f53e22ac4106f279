"""What a kind's lister gets: the target cloud region, the request log, and what the
store already knows (for incremental reads such as Placement generations)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from stackfleet.model import kind
from stackfleet.sources.openstack.connection import CloudTarget
from stackfleet.sources.openstack.listing import ListingError, RequestLog, iter_pages
from stackfleet.sources.openstack.rawskip import RawSkip


@dataclass
class ListContext:
    target: CloudTarget
    log: RequestLog
    # kind -> {id: record} from the store, for listers that read incrementally
    previous: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    concurrency: int = 8
    # seconds before an L3/DHCP agent's hosting is read again (sources/openstack/capacity.py)
    agent_interval: float = 600.0
    # this listing's raw hashes, when its unchanged items may be skipped (rawskip.py)
    raw: RawSkip | None = None

    def label(self, service: str, path: str) -> str:
        return f"{service} GET {path}"


def list_kind(
    ctx: ListContext,
    kind_name: str,
    proxy: Any,
    path: str,
    collection: str,
    params: dict[str, Any] | None = None,
    microversion: str | None = None,
    marker_key: str = "id",
    headers: dict[str, str] | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """Every object of a paginated list call, built into records of `kind_name`. With
    `ctx.raw` for this kind, items byte for byte as stored are not built: their ids go
    to `ctx.raw.unchanged`, the raw hashes of the built ones to `ctx.raw.hashes`."""
    build = kind(kind_name).record_builder()
    label = ctx.label(kind(kind_name).service, path)
    records: list[dict[str, Any]] = []
    skip = ctx.raw if ctx.raw is not None and ctx.raw.kind == kind_name else None
    for page in iter_pages(
        proxy,
        path,
        collection,
        ctx.log,
        label,
        params,
        microversion,
        marker_key,
        headers=headers,
        raw=skip is not None,
    ):
        if skip is None:
            records.extend(build(obj) for obj in page if keep is None or keep(obj))
            continue
        for item in page:
            digest = None
            if isinstance(item, msgspec.Raw):
                digest = skip.digest(item)
                unchanged = skip.unchanged_id(item, digest)
                if unchanged is not None:
                    skip.unchanged.append(unchanged)
                    continue
                item = decode_item(item)
            if keep is None or keep(item):
                record = build(item)
                if digest is not None:
                    skip.hashes[record["id"]] = digest
                records.append(record)
    return records


def decode_item(raw: msgspec.Raw) -> Any:
    """One raw item as a dict: with orjson, as whole pages are decoded (the two may
    differ on numbers beyond 64 bits), and as `requests` would when orjson refuses."""
    data = bytes(raw)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ListingError(f"an item of a listing is not JSON ({exc})") from exc
