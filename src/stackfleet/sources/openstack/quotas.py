"""Quota limits of projects, per service: Nova, Cinder and Neutron.

Each service keeps its own quotas per project, so reading them costs one request per
project and service: these calls are never part of a collection pass. The capacity
sweep (engine/quota_sweep.py) reads them with bounded concurrency at most every
`quota_interval`, only for projects that own resources.

A limit of -1 means unlimited. A quota that could not be read (403 for a non-admin
token, a service missing from the catalog) is reported as an error, never as a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackfleet.sources.openstack.connection import CloudTarget
from stackfleet.sources.openstack.listing import (
    ListingError,
    RequestLog,
    ServiceMissing,
    request_json,
)

# 2.57: no more injected_file* or network quotas (2.36) in the compute quota set
COMPUTE_MICROVERSION = "2.57"
BLOCK_STORAGE_MICROVERSION = "3.60"


@dataclass(frozen=True)
class QuotaSource:
    """Where one service's quota set of a project is, and which of its keys we keep
    (API key -> StackFleet's resource name)."""

    service: str  # catalog type
    proxy: str  # attribute of the openstacksdk connection
    path: str  # with {project_id}
    body_key: str
    keys: dict[str, str]
    microversion: str | None = None


QUOTA_SOURCES: tuple[QuotaSource, ...] = (
    QuotaSource(
        "compute",
        "compute",
        "/os-quota-sets/{project_id}",
        "quota_set",
        {"cores": "cores", "ram": "ram_mb", "instances": "instances"},
        COMPUTE_MICROVERSION,
    ),
    QuotaSource(
        "block-storage",
        "block_storage",
        "/os-quota-sets/{project_id}",
        "quota_set",
        {"volumes": "volumes", "gigabytes": "gigabytes"},
        BLOCK_STORAGE_MICROVERSION,
    ),
    QuotaSource(
        "network",
        "network",
        "/quotas/{project_id}",
        "quota",
        {"floatingip": "floating_ips", "port": "ports"},
    ),
)

# StackFleet resource name -> service, in the order reports show them
QUOTA_RESOURCES: dict[str, str] = {
    name: source.service for source in QUOTA_SOURCES for name in source.keys.values()
}


@dataclass(frozen=True)
class QuotaReading:
    """One service's quota limits of one project, or why they could not be read."""

    project_id: str
    service: str
    limits: dict[str, int]
    error: str | None = None


def label(source: QuotaSource) -> str:
    """The request-log label of a source's call."""
    return f"{source.service} GET {source.path.replace('{project_id}', '{uuid}')}"


def read_quota(
    target: CloudTarget, source: QuotaSource, project_id: str, log: RequestLog
) -> QuotaReading:
    """One service's quota set of one project."""
    proxy = getattr(target.conn, source.proxy)
    path = source.path.format(project_id=project_id)
    try:
        body = request_json(proxy, path, log, label(source), microversion=source.microversion)
    except (ListingError, ServiceMissing) as exc:
        return QuotaReading(project_id, source.service, {}, str(exc))
    quota_set = body.get(source.body_key) if isinstance(body, dict) else None
    if not isinstance(quota_set, dict):
        return QuotaReading(
            project_id, source.service, {}, f"{label(source)}: no {source.body_key!r} object"
        )
    limits: dict[str, int] = {}
    for api_key, name in source.keys.items():
        value = _limit(quota_set.get(api_key))
        if value is not None:
            limits[name] = value
    return QuotaReading(project_id, source.service, limits)


def _limit(value: Any) -> int | None:
    if isinstance(value, dict):  # a detail body: {"limit": .., "in_use": ..}
        value = value.get("limit")
    if isinstance(value, bool):
        return None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
