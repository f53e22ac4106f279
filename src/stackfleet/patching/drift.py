"""Capturing revisions on demand and checking drift: what runs on a host against the
revision a campaign last applied (or rolled back to) there."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stackfleet.engine.settings import Settings
from stackfleet.patching.connectors import Connector, ConnectorError
from stackfleet.patching.reporting import judge, record_configuration
from stackfleet.patching.revisions import Revision, capture, differences
from stackfleet.patching.services import ServiceDefinition
from stackfleet.store import patching as records
from stackfleet.store.db import Store

log = logging.getLogger(__name__)


def capture_and_record(
    store: Store, connector: Connector, host: str, service: str, definition: ServiceDefinition
) -> tuple[Revision, bool]:
    """Capture a host's service; keep the revision, and add a `captured` event when it
    differs from the newest one captured (repeated captures of the same content do not
    grow the history). Returns the revision and whether it was new to the history."""
    now = datetime.now(UTC)
    revision = capture(connector, host, service, definition)
    digest = revision.digest
    records.save_revision(store, host, service, digest, revision.content, now)
    newest = records.latest_event(store, host, service, "captured")
    if newest is None or newest["digest"] != digest:
        records.add_event(store, host, service, digest, "captured", now)
        return revision, True
    return revision, False


@dataclass
class DriftStatus:
    host: str
    service: str
    running: str | None
    applied: str | None
    drift: list[str]
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "service": self.service,
            "running": self.running,
            "applied": self.applied,
            "drifted": bool(self.drift),
            "drift": self.drift,
            "error": self.error,
        }


def check_drift(
    store: Store,
    settings: Settings,
    connector: Connector,
    targets: list[tuple[str, str]],
    services: dict[str, ServiceDefinition],
    cloud: str,
    region: str,
) -> list[DriftStatus]:
    """Capture each (host, service) and compare it with its last applied revision;
    record `configuration` resources and run the patching pack's drift rule."""
    found: list[DriftStatus] = []
    for host, service in targets:
        applied = records.latest_event(store, host, service, "applied", "rolled-back")
        try:
            revision, _ = capture_and_record(store, connector, host, service, services[service])
        except ConnectorError as exc:
            status = DriftStatus(
                host, service, None, applied["digest"] if applied else None, [], str(exc)
            )
            record_configuration(
                store, cloud, region, host, service, None, status.applied, [], error=str(exc)
            )
            found.append(status)
            continue
        drift: list[str] = []
        if applied is not None and applied["digest"] != revision.digest:
            old = records.get_revision(store, host, service, applied["digest"])["content"]
            drift = differences(old, revision.content)
        status = DriftStatus(
            host, service, revision.digest, applied["digest"] if applied else None, drift
        )
        record_configuration(
            store, cloud, region, host, service, status.running, status.applied, drift
        )
        found.append(status)
    judge(store, settings, "configuration")
    return found


def applied_targets(store: Store) -> list[tuple[str, str]]:
    """(host, service) pairs a campaign ever applied a revision to."""
    return [
        (host, service)
        for host, service in records.host_services(store)
        if records.latest_event(store, host, service, "applied", "rolled-back") is not None
    ]
