"""What a kind's lister gets: the target cloud region, the request log, and what the
store already knows (for incremental reads such as Placement generations)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stackfleet.model import kind
from stackfleet.sources.openstack.connection import CloudTarget
from stackfleet.sources.openstack.listing import RequestLog, iter_pages


@dataclass
class ListContext:
    target: CloudTarget
    log: RequestLog
    # kind -> {id: record} from the store, for listers that read incrementally
    previous: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    concurrency: int = 8
    # seconds before an L3/DHCP agent's hosting is read again (sources/openstack/capacity.py)
    agent_interval: float = 600.0

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
    """Every object of a paginated list call, built into records of `kind_name`."""
    build = kind(kind_name).record_builder()
    label = ctx.label(kind(kind_name).service, path)
    records: list[dict[str, Any]] = []
    for page in iter_pages(
        proxy, path, collection, ctx.log, label, params, microversion, marker_key, headers=headers
    ):
        records.extend(build(obj) for obj in page if keep is None or keep(obj))
    return records
