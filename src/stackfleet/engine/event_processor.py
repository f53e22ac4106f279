"""Event-driven refresh and event policies.

A notification names a resource (sources/notifications.py). The `EventProcessor`
collects them without ever blocking the listener: a burst about one resource is one
pending entry, re-read once the resource has been quiet for `debounce` seconds (or
after `max_delay` at the latest), and the pending entries are bounded (what does not
fit is left to the next collection pass). The daemon's `events` job (`run_due`, every
EVENTS_TICK seconds) then re-reads each resource
with one GET through openstacksdk, records it (store.upsert_resource) and runs the
policies with `mode: {type: event}` whose `events` match, over that resource only,
through the same runner, findings and safety gate as every other policy run.

Nothing is marked gone by an event, except a resource whose deletion was announced
(`*.delete.end`) and that its service no longer knows (404). An event about a resource
that cannot be read (error, timeout) changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stackfleet.core.errors import StackFleetError
from stackfleet.engine.execute import Connections
from stackfleet.engine.policies import PolicyReport, PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy.event_patterns import matches_event
from stackfleet.policy.schema import Policy
from stackfleet.policy.view import FleetView
from stackfleet.sources.notifications import (
    Notification,
    NotificationListener,
    ResourceEvent,
    listeners_for,
)
from stackfleet.sources.openstack.connection import CloudTarget, connect
from stackfleet.sources.openstack.listing import ListingError, RequestLog
from stackfleet.sources.openstack.refresh import ResourceGone, read_one, refreshable
from stackfleet.store.db import Store
from stackfleet.store.findings import FindingKey

log = logging.getLogger(__name__)

# (cloud, region, kind, resource id); region "" until looked up
PendingKey = FindingKey

# seconds between two looks for settled events: a fraction of the smallest debounce
EVENTS_TICK = 0.25


class Targets:
    """Authenticated connections per cloud region, made on first use and kept (the
    session renews its token by itself)."""

    def __init__(
        self, system_cloud: str | None = None, config_files: list[str] | None = None
    ) -> None:
        self.system_cloud = system_cloud
        self.config_files = config_files
        self._clouds: dict[str, list[CloudTarget]] = {}
        self._lock = threading.Lock()

    def of(self, cloud: str) -> list[CloudTarget]:
        with self._lock:
            if cloud not in self._clouds:
                self._clouds[cloud] = connect(cloud, None, self.system_cloud, self.config_files)
            return self._clouds[cloud]

    def get(self, cloud: str, region: str) -> CloudTarget | None:
        return next((t for t in self.of(cloud) if t.region == region), None)


@dataclass
class EventOutcome:
    """What one resource's events led to."""

    cloud: str
    region: str
    kind: str
    resource_id: str
    event_types: list[str]
    events: int
    # added, changed, unchanged, revived, gone, missing (404 without a delete event),
    # failed (the read failed: nothing changed), unreadable (kind cannot be re-read),
    # unplaced (region unknown)
    refresh: str
    error: str | None = None
    policies: list[PolicyReport] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "cloud": self.cloud,
            "region": self.region,
            "kind": self.kind,
            "id": self.resource_id,
            "events": self.events,
            "event_types": self.event_types,
            "refresh": self.refresh,
            "error": self.error,
            "policies": [p.summary() for p in self.policies],
        }


@dataclass
class _Pending:
    first: float
    last: float
    event_types: list[str]
    deleted: bool
    count: int = 1


class EventProcessor:
    """Debounces resource events, re-reads the resources and runs event policies."""

    def __init__(
        self,
        store: Store,
        runner: PolicyRunner,
        policies: Sequence[Policy],
        targets: Targets | None = None,
        execute: bool = False,
        debounce: float = 2.0,
        max_delay: float = 10.0,
        queue_size: int = 10_000,
        on_outcome: Callable[[EventOutcome], None] | None = None,
        run_lock: threading.Lock | None = None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.policies = [p for p in policies if p.spec.enabled and p.spec.mode.type == "event"]
        self.targets = targets or Targets()
        self.execute = execute
        self.debounce = debounce
        self.max_delay = max(max_delay, debounce)
        self.queue_size = queue_size
        self.on_outcome = on_outcome
        self.stats: Counter[str] = Counter()
        self.recent: deque[EventOutcome] = deque(maxlen=200)
        self.requests = RequestLog()
        self._pending: dict[PendingKey, _Pending] = {}
        self._busy = 0
        self._cond = threading.Condition()
        # one batch at a time; shared with the periodic schedule in the daemon, so an
        # event run and a periodic run never dispatch alerts at the same time
        self._run_lock = run_lock or threading.Lock()

    # ---------------------------------------------------------------- intake
    def receive(self, notification: Notification) -> ResourceEvent | None:
        """The listener's callback: map the notification and queue its resource."""
        self.stats["notifications"] += 1
        event = notification.resource_event()
        if event is None:
            self.stats["ignored"] += 1
            return None
        self.submit(event)
        return event

    def submit(self, event: ResourceEvent) -> bool:
        """Queue a resource for refresh; never blocks on I/O. False when the queue is
        full and the resource is not already pending (the event is dropped: the next
        collection pass sees the change)."""
        key = (event.cloud, event.region, event.kind, event.resource_id)
        now = time.monotonic()
        with self._cond:
            pending = self._pending.get(key)
            if pending is not None:
                pending.last = now
                pending.count += 1
                pending.deleted = pending.deleted or event.deleted
                if event.event_type not in pending.event_types:
                    pending.event_types.append(event.event_type)
                self.stats["merged"] += 1
                return True
            if len(self._pending) >= self.queue_size:
                self.stats["dropped"] += 1
                log.warning(
                    "event queue full (%d resources): dropped %s about %s %s",
                    self.queue_size,
                    event.event_type,
                    event.kind,
                    event.resource_id,
                )
                return False
            self._pending[key] = _Pending(now, now, [event.event_type], event.deleted)
            self.stats["queued"] += 1
            return True

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._busy

    # ---------------------------------------------------------------- worker
    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is pending or being processed (tests, the CLI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending == 0:
                return True
            time.sleep(0.05)
        return False

    def _due(self, now: float) -> tuple[list[tuple[PendingKey, _Pending]], float | None]:
        """Entries due now (taken off the pending ones), and when the next one is due
        (caller holds the lock)."""
        due: list[tuple[PendingKey, _Pending]] = []
        next_at: float | None = None
        for key, entry in self._pending.items():
            at = min(entry.last + self.debounce, entry.first + self.max_delay)
            if at <= now:
                due.append((key, entry))
            elif next_at is None or at < next_at:
                next_at = at
        for key, _entry in due:
            del self._pending[key]
        return due, next_at

    def run_due(self) -> int:
        """The daemon's events job (every EVENTS_TICK seconds): refresh the resources
        whose events have settled and run their event policies. Returns how many."""
        with self._cond:
            due, _next_at = self._due(time.monotonic())
            if not due:
                return 0
            self._busy += len(due)
        try:
            self.process(
                [(key, entry.event_types, entry.deleted, entry.count) for key, entry in due]
            )
        finally:
            with self._cond:
                self._busy -= len(due)
        return len(due)

    # ---------------------------------------------------------------- processing
    def process_events(self, events: Sequence[ResourceEvent]) -> list[EventOutcome]:
        """Refresh and evaluate at once, without debouncing (`stackfleet policy run
        --event`, tests): events about one resource are merged."""
        merged: dict[PendingKey, tuple[list[str], bool, int]] = {}
        for event in events:
            key = (event.cloud, event.region, event.kind, event.resource_id)
            types, deleted, count = merged.get(key, ([], False, 0))
            if event.event_type not in types:
                types.append(event.event_type)
            merged[key] = (types, deleted or event.deleted, count + 1)
        return self.process([(k, t, d, c) for k, (t, d, c) in merged.items()])

    def process(
        self, batch: Sequence[tuple[PendingKey, list[str], bool, int]]
    ) -> list[EventOutcome]:
        """Re-read each resource, record it, then run the matching event policies over
        the resources that were refreshed."""
        with self._run_lock:
            outcomes = [self._refresh(*item) for item in batch]
            self._run_policies(outcomes)
        for outcome in outcomes:
            self.recent.append(outcome)
            log.info(
                "%s %s/%s %s %s: %s%s",
                ",".join(outcome.event_types),
                outcome.cloud,
                outcome.region,
                outcome.kind,
                outcome.resource_id,
                outcome.refresh,
                f" ({outcome.error})" if outcome.error else "",
            )
            if self.on_outcome is not None:
                self.on_outcome(outcome)
        return outcomes

    def _place(self, cloud: str, region: str, kind: str, resource_id: str) -> str | None:
        """The region of an event that did not say: where the inventory knows the
        resource, else the cloud's only region."""
        if region:
            return region
        known = self.store.regions_of(cloud, kind, resource_id)
        if known:
            return known[0]
        regions = [t.region for t in self.targets.of(cloud)]
        return regions[0] if len(regions) == 1 else None

    def _refresh(
        self, key: PendingKey, event_types: list[str], deleted: bool, count: int
    ) -> EventOutcome:
        cloud, region, kind, resource_id = key
        outcome = EventOutcome(cloud, region, kind, resource_id, event_types, count, "failed")
        if not refreshable(kind):
            outcome.refresh = "unreadable"
            return outcome
        try:
            place = self._place(cloud, region, kind, resource_id)
            if place is None:
                outcome.refresh = "unplaced"
                outcome.error = f"cloud {cloud!r} has several regions; the event names none"
                return outcome
            outcome.region = place
            target = self.targets.get(cloud, place)
            if target is None:
                outcome.error = f"cloud {cloud!r} has no region {place!r}"
                return outcome
            self.stats["refreshes"] += 1
            record = read_one(target, kind, resource_id, self.requests)
        except ResourceGone:
            if deleted:
                self.store.mark_resource_gone(cloud, outcome.region, kind, resource_id)
                outcome.refresh = "gone"
            else:
                # a 404 without an announced deletion proves nothing yet (a replica
                # behind, a create not visible yet): the next complete pass decides
                outcome.refresh = "missing"
            return outcome
        except (ListingError, StackFleetError) as exc:
            self.stats["refresh_errors"] += 1
            outcome.error = str(exc)
            return outcome
        outcome.refresh = self.store.upsert_resource(cloud, outcome.region, kind, record)
        return outcome

    def policies_for(self, kind: str, event_types: Sequence[str]) -> list[Policy]:
        """The event policies on `kind` that one of `event_types` triggers."""
        return [
            p
            for p in self.policies
            if p.kind == kind and any(matches_event(p.spec.mode.events, t) for t in event_types)
        ]

    def _run_policies(self, outcomes: list[EventOutcome]) -> None:
        by_policy: dict[str, tuple[Policy, set[FindingKey], list[EventOutcome]]] = {}
        for outcome in outcomes:
            if outcome.refresh in ("failed", "unreadable", "unplaced", "missing"):
                continue
            key = (outcome.cloud, outcome.region, outcome.kind, outcome.resource_id)
            for policy in self.policies_for(outcome.kind, outcome.event_types):
                entry = by_policy.setdefault(policy.name, (policy, set(), []))
                entry[1].add(key)
                entry[2].append(outcome)
        if not by_policy:
            return
        now = datetime.now(UTC)
        # a view of just the events' cloud region when they share one (the usual case):
        # it loads that region's records, not the whole fleet's
        segments = {
            (o.cloud, o.region) for _p, _k, concerned in by_policy.values() for o in concerned
        }
        cloud, region = next(iter(segments)) if len(segments) == 1 else (None, None)
        view = FleetView(self.store, now, cloud, region)
        for policy, keys, concerned in by_policy.values():
            self.stats["policy_runs"] += 1
            try:
                report = self.runner.run(
                    [policy], execute=self.execute, now=now, view=view, only=keys
                )
            except Exception:  # one policy's bug must not stop the others
                log.exception("event policy %s failed", policy.name)
                continue
            for item in report.policies:
                for outcome in concerned:
                    outcome.policies.append(item)


def build_events(
    store: Store,
    settings: Settings,
    policies: Sequence[Policy],
    clouds: Sequence[str],
    system_cloud: str | None = None,
    execute: bool = False,
    listen: bool | None = None,
    run_lock: threading.Lock | None = None,
    config_files: list[str] | None = None,
) -> tuple[EventProcessor, list[NotificationListener]]:
    """The daemon's event processing: an EventProcessor (which POST /v1/events feeds
    too; the daemon's `events` job runs it) and, when listening (`listen`, else the
    settings' `enabled`), a listener per collected cloud, not started.
    ConfigError when a cloud has no transport URL."""
    config = settings.notifications
    processor = EventProcessor(
        store,
        PolicyRunner(store, settings, Connections(config_files)),
        policies,
        Targets(system_cloud, config_files),
        execute,
        config.debounce,
        config.max_delay,
        config.queue_size,
        run_lock=run_lock,
    )
    listeners: list[NotificationListener] = []
    if listen if listen is not None else config.enabled:
        listeners = listeners_for(config, processor.receive, list(clouds))
    return processor, listeners
