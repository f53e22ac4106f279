"""Workload SLAs: each workload's availability over a window, from the state changes
the health job recorded (stackfleet.model.sla computes; this module reads the store and
the workloads of the settings)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stackfleet.core.errors import InvalidQueryError, NotFoundError
from stackfleet.core.times import parse_duration, parse_time
from stackfleet.engine.health_settings import Workload
from stackfleet.model.sla import Availability, Change, availability
from stackfleet.store import health_states
from stackfleet.store.db import Store


def window_start(since: str, now: datetime) -> datetime:
    """A window's start: a duration back from now (30d, 12h) or an ISO 8601 time."""
    try:
        return now - parse_duration(since)
    except ValueError:
        pass
    try:
        moment = parse_time(since)
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidQueryError(
            f"since {since!r} is neither a duration (30d, 12h) nor an ISO 8601 time"
        )
    return moment


def check_target(target: float | None) -> None:
    if target is not None and not 0.0 <= target <= 100.0:
        raise InvalidQueryError(f"target must be a percentage between 0 and 100, not {target:g}")


def sla_report(
    store: Store,
    workloads: list[Workload],
    since: datetime,
    until: datetime,
    only: str | None = None,
    target: float | None = None,
) -> list[Availability]:
    """Availability of every workload (or the one named `only`) over [since, until];
    `target` overrides the workloads' own targets."""
    check_target(target)
    if since >= until:
        raise InvalidQueryError("since must be before now")
    if only is not None and only not in {w.name for w in workloads}:
        known = ", ".join(sorted(w.name for w in workloads)) or "none (health.workloads)"
        raise InvalidQueryError(f"no workload {only!r}; known workloads: {known}")
    reports = []
    for workload in workloads:
        if only is not None and workload.name != only:
            continue
        reports.append(
            _availability(
                store,
                "workload",
                workload.name,
                workload.name,
                since,
                until,
                workload.target if target is None else target,
            )
        )
    return reports


def _availability(
    store: Store,
    kind: str,
    subject: str,
    name: str,
    since: datetime,
    until: datetime,
    target: float | None,
) -> Availability:
    """One subject's availability over [since, until] from its recorded changes."""
    before = health_states.change_before(store, kind, subject, since)
    changes = [
        Change(c["at"], c["after"], c["reason"] or "")
        for c in health_states.changes(store, kind, subject, since)
        if c["at"] <= until
    ]
    return availability(
        name,
        Change(before["at"], before["after"], before["reason"] or "") if before else None,
        changes,
        since,
        until,
        target,
    )


def service_sla_report(
    store: Store,
    since: datetime,
    until: datetime,
    target: float,
    only: str | None = None,
) -> list[Availability]:
    """Availability per OpenStack service (binary: nova-compute, neutron-l3-agent,
    cinder-volume...) over [since, until], from the state changes the health job
    recorded for each of its instances: the service's measured and down time are the
    sums over its hosts, and each host's down stretch is an incident naming it."""
    check_target(target)
    if since >= until:
        raise InvalidQueryError("since must be before now")
    by_binary: dict[str, list[dict[str, Any]]] = {}
    for verdict in health_states.load(store, "service"):
        name = str(verdict.get("name") or verdict["subject"])
        by_binary.setdefault(name.split("@", 1)[0], []).append(verdict)
    if only is not None and only not in by_binary:
        known = ", ".join(sorted(by_binary)) or "none recorded yet (the health job records them)"
        raise NotFoundError(f"no service {only!r}; services: {known}")
    reports = []
    for binary in sorted(by_binary):
        if only is not None and binary != only:
            continue
        total = Availability(name=binary, since=since, until=until, target=target)
        for verdict in by_binary[binary]:
            name = str(verdict.get("name") or verdict["subject"])
            one = _availability(store, "service", verdict["subject"], name, since, until, target)
            total.measured_seconds += one.measured_seconds
            total.down_seconds += one.down_seconds
            for incident in one.incidents:
                incident.cause = f"{name}: {incident.cause}" if incident.cause else name
                total.incidents.append(incident)
        total.incidents.sort(key=lambda i: i.start)
        reports.append(total)
    return reports
