"""Aggregate reads of the inventory for the Prometheus exporter.

Every scrape of ``/metrics`` runs these queries, so each is one aggregate statement
(counts grouped in SQL, capacity numbers extracted from the JSON attributes in SQL)
rather than loading resources as objects. All of them run in one read transaction so
a scrape sees one consistent state even while a pass is writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import Pass, Resource

# Placement resource classes as the hypervisor kind stores them, and the parts of each
# that are worth a time series (reserved and allocation ratio only feed capacity).
RESOURCE_CLASSES = ("vcpu", "pcpu", "memory_mb", "disk_gb")
USAGE_PARTS = ("total", "used", "capacity")

# Kinds that are a service on a host, with an up/down state in the status column.
SERVICE_KINDS = ("compute_service", "network_agent", "block_storage_service")


@dataclass(frozen=True)
class HypervisorUsage:
    """Placement inventory and usage of one hypervisor. A value is None when the
    hypervisor has no Placement data for it (no resource provider, or not that class)."""

    cloud: str
    region: str
    hypervisor: str
    state: str
    # "<resource class>_<part>", e.g. "vcpu_used" -> 12.0
    values: dict[str, float | None]


@dataclass(frozen=True)
class PassTimes:
    """When the newest pass of each status of one cloud region ended (or, while it
    runs, started), and whether the newest finished pass was complete."""

    cloud: str
    region: str
    by_status: dict[str, datetime]
    last_complete: bool | None


@dataclass
class FleetSnapshot:
    """Everything the exporter publishes, read in one transaction."""

    hypervisors: list[HypervisorUsage] = field(default_factory=list)
    # (cloud, region, kind) -> count of resources not gone
    resources: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (cloud, region, status) -> servers
    servers: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (cloud, region, kind, binary, state) -> services
    services: dict[tuple[str, str, str, str, str], int] = field(default_factory=dict)
    passes: list[PassTimes] = field(default_factory=list)


def fleet_snapshot(store: Store) -> FleetSnapshot:
    """Read the numbers behind every fleet metric in one read transaction."""
    with store.session() as session, session.begin():
        return FleetSnapshot(
            hypervisors=_hypervisors(session),
            resources=_resource_counts(session),
            servers=_server_counts(session),
            services=_service_counts(session),
            passes=_pass_times(session),
        )


def _hypervisors(session: Session) -> list[HypervisorUsage]:
    names = [f"{rc}_{part}" for rc in RESOURCE_CLASSES for part in USAGE_PARTS]
    columns = [Resource.attrs[name].as_float() for name in names]
    rows = session.execute(
        select(Resource.cloud, Resource.region, Resource.name, Resource.status, *columns)
        .where(Resource.kind == "hypervisor", Resource.deleted_at.is_(None))
        .order_by(Resource.cloud, Resource.region, Resource.name)
    )
    return [
        HypervisorUsage(
            cloud=row[0],
            region=row[1],
            hypervisor=row[2] or "",
            state=row[3] or "unknown",
            values=dict(zip(names, row[4:], strict=True)),
        )
        for row in rows
    ]


def _resource_counts(session: Session) -> dict[tuple[str, str, str], int]:
    rows = session.execute(
        select(Resource.cloud, Resource.region, Resource.kind, func.count())
        .where(Resource.deleted_at.is_(None))
        .group_by(Resource.cloud, Resource.region, Resource.kind)
    )
    return {(cloud, region, kind): count for cloud, region, kind, count in rows}


def _server_counts(session: Session) -> dict[tuple[str, str, str], int]:
    rows = session.execute(
        select(Resource.cloud, Resource.region, Resource.status, func.count())
        .where(Resource.kind == "server", Resource.deleted_at.is_(None))
        .group_by(Resource.cloud, Resource.region, Resource.status)
    )
    return {(cloud, region, status or "UNKNOWN"): count for cloud, region, status, count in rows}


def _service_counts(session: Session) -> dict[tuple[str, str, str, str, str], int]:
    # The same expression object in SELECT and GROUP BY renders the same bound parameter,
    # which PostgreSQL needs to see the two as one expression.
    binary = Resource.attrs["binary"].as_string()
    rows = session.execute(
        select(
            Resource.cloud, Resource.region, Resource.kind, binary, Resource.status, func.count()
        )
        .where(Resource.kind.in_(SERVICE_KINDS), Resource.deleted_at.is_(None))
        .group_by(Resource.cloud, Resource.region, Resource.kind, binary, Resource.status)
    )
    return {
        (cloud, region, kind, binary or "", status or "unknown"): count
        for cloud, region, kind, binary, status, count in rows
    }


def _pass_times(session: Session) -> list[PassTimes]:
    # Passes get ids in the order they start, so the newest pass of a status is its
    # largest id. One grouped scan finds those ids (an index on (cloud, region, status,
    # id) makes it an index-only scan); the rows themselves are primary-key lookups.
    newest = session.execute(
        select(Pass.cloud, Pass.region, Pass.status, func.max(Pass.id)).group_by(
            Pass.cloud, Pass.region, Pass.status
        )
    ).all()
    if not newest:
        return []
    when = {
        pass_id: aware(finished or started)
        for pass_id, started, finished in session.execute(
            select(Pass.id, Pass.started_at, Pass.finished_at).where(
                Pass.id.in_([row[3] for row in newest])
            )
        )
    }
    places: dict[tuple[str, str], dict[str, int]] = {}
    for cloud, region, status, pass_id in newest:
        places.setdefault((cloud, region), {})[status] = pass_id
    result = []
    for (cloud, region), ids in sorted(places.items()):
        finished = {status: pass_id for status, pass_id in ids.items() if status != "running"}
        last = max(finished, key=finished.__getitem__) if finished else None
        result.append(
            PassTimes(
                cloud=cloud,
                region=region,
                by_status={
                    status: at for status, pass_id in ids.items() if (at := when.get(pass_id))
                },
                last_complete=None if last is None else last == "complete",
            )
        )
    return result
