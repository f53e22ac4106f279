"""Telling receivers about alerts, the way Alertmanager does: each receiver sorts the
alerts it takes into groups (by its `group_by` labels); a new group is told after
`group_wait`, then looked at every `group_interval` and told again when an alert joined
or resolved, or when `repeat_interval` has passed while it still fires. Silenced and
inhibited alerts are left out; acknowledged ones are not repeated, but their resolution
is still told to whoever heard they fired.

What each receiver was last told about each group (the notification log) is in the
store, written as each message goes out, so a restarted daemon neither repeats nor
forgets a notification (only the one in flight at a crash is sent again). `dispatch`
is level-triggered: call it as often as you like (the daemon does every few seconds);
it sends only what is due at `now`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stackfleet.alerts.incidents import caused_by, correlate
from stackfleet.alerts.model import Matcher, matches_all
from stackfleet.alerts.routing import InhibitRule, Receiver, group_id, group_key, send
from stackfleet.core.delivery import DeliveryError, NotifySettings
from stackfleet.store import alerts as alert_store
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

# a failed notification is tried again this soon (or at the group interval if shorter)
RETRY_AFTER = timedelta(seconds=30)

# dispatch runs from the policy runner, the infrastructure sweeps and the daemon's
# ticker: one at a time in a process, so a group is never told twice
_LOCK = threading.Lock()


@dataclass
class Dispatch:
    """What one dispatch did: `sent` alerts in `notifications` messages."""

    sent: int = 0
    notifications: int = 0
    silenced: int = 0
    inhibited: int = 0
    acknowledged: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Group:
    labels: dict[str, str]
    key: str
    firing: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)


def silenced_by(alert: dict[str, Any], silences: Sequence[dict[str, Any]]) -> int | None:
    """The id of an active silence matching the alert, if any."""
    for silence in silences:
        if silence["state"] != "active":
            continue
        matchers = [Matcher(m["name"], m["op"], m["value"]) for m in silence["matchers"]]
        if matches_all(matchers, alert["labels"]):
            return int(silence["id"])
    return None


def needs_update(
    told_firing: set[str],
    told_at: datetime | None,
    firing: set[str],
    resolved: set[str],
    acknowledged: set[str],
    repeat_interval: timedelta,
    now: datetime,
) -> bool:
    """Whether a group is told now (Alertmanager's DedupStage): an alert joined, one the
    receiver heard firing resolved, or the repeat interval passed while it fires.
    `acknowledged`: firing alerts the receiver heard of and need not hear again."""
    if not firing <= told_firing:
        return True
    if resolved:
        return True
    if not firing:
        # nothing fires any more (or all of it is muted): clear the log, quietly
        return bool(told_firing - acknowledged)
    return told_at is None or told_at <= now - repeat_interval


def dispatch(
    store: Store,
    receivers: Sequence[Receiver],
    settings: NotifySettings,
    now: datetime | None = None,
    inhibit_rules: Sequence[InhibitRule] = (),
) -> Dispatch:
    """Send every group notification that is due at `now` (see the module docstring)."""
    with _LOCK:
        return _dispatch(store, receivers, settings, now or datetime.now(UTC), inhibit_rules)


def _dispatch(
    store: Store,
    receivers: Sequence[Receiver],
    settings: NotifySettings,
    now: datetime,
    inhibit_rules: Sequence[InhibitRule],
) -> Dispatch:
    result = Dispatch()
    if not receivers:
        # nothing to do here; and nothing to mark: another process (the daemon) may have
        # receivers that still need to hear about these alerts
        return result
    alerts = alert_store.for_dispatch(store)
    firing = [a for a in alerts if a["status"] == "firing"]
    firing_fps = {a["fingerprint"] for a in firing}
    # an older resolved episode of an alert that fires again is superseded by it
    current = [a for a in alerts if a["status"] == "firing" or a["fingerprint"] not in firing_fps]
    muted = _muted(store, firing, inhibit_rules, now, result)
    log_entries = alert_store.notification_log(store)
    changed: dict[tuple[str, str], dict[str, Any]] = {}
    gone: list[int] = []
    told_ids: set[int] = set()
    for receiver in receivers:
        groups = _groups(receiver, current, muted, log_entries)
        for gid, group in groups.items():
            sent = result.notifications
            told_ids |= _flush(
                receiver, gid, group, log_entries, changed, gone, settings, now, result
            )
            if result.notifications > sent:
                _log_now(store, (receiver.name, gid), log_entries, changed, gone)
    # the rest of the log (deadlines, groups told nothing) once per dispatch
    alert_store.delete_notifications(store, gone)
    alert_store.save_notifications(store, list(changed.values()))
    _settle(store, alerts, firing_fps, receivers, log_entries, told_ids, now)
    return result


def _log_now(
    store: Store,
    place: tuple[str, str],
    log_entries: dict[tuple[str, str], dict[str, Any]],
    changed: dict[tuple[str, str], dict[str, Any]],
    gone: list[int],
) -> None:
    """Write a group's log entry as soon as its message went out, before the next
    group's: a crash later in the round (kill -9 while a slow receiver holds another
    message) must not make a restarted daemon tell this group again before its repeat
    interval. Only the message in flight at the crash is in doubt; it is sent again
    (at least once, as Alertmanager: never lost)."""
    entry = log_entries.get(place)
    if entry is not None:
        alert_store.save_notification(store, entry)
        changed.pop(place, None)
    elif gone:
        # told the group's resolution: the entry is no longer needed
        alert_store.delete_notifications(store, gone)
        gone.clear()


def _muted(
    store: Store,
    firing: list[dict[str, Any]],
    inhibit_rules: Sequence[InhibitRule],
    now: datetime,
    result: Dispatch,
) -> dict[int, str]:
    """Firing alerts not to notify, by id: silenced, inhibited (by a rule, or as the
    consequence of an incident's cause: alerts/incidents.py) or acknowledged. A cause's
    notification names its consequences (annotation `incident`)."""
    silences = alert_store.list_silences(store, now)
    muters = [rule.muter(firing) for rule in inhibit_rules]
    incidents = correlate(store, firing)
    consequences = caused_by(incidents)
    for incident in incidents:
        incident.cause["annotations"] = {
            **(incident.cause.get("annotations") or {}),
            "incident": incident.annotation(),
        }
    muted: dict[int, str] = {}
    for alert in firing:
        if silenced_by(alert, silences) is not None:
            muted[alert["id"]] = "silenced"
            result.silenced += 1
        elif alert["id"] in consequences or any(inhibited(alert) for inhibited in muters):
            muted[alert["id"]] = "inhibited"
            result.inhibited += 1
        elif alert["acked_by"]:
            muted[alert["id"]] = "acknowledged"
            result.acknowledged += 1
    return muted


def _groups(
    receiver: Receiver,
    alerts: list[dict[str, Any]],
    muted: dict[int, str],
    log_entries: dict[tuple[str, str], dict[str, Any]],
) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    matchers = receiver.matchers()
    for alert in alerts:
        if not receiver.wants(alert, matchers):
            continue
        labels = receiver.group_labels(alert["labels"])
        key = group_key(receiver.name, labels)
        group = groups.setdefault(group_id(key), _Group(labels, key))
        reason = muted.get(alert["id"])
        if alert["status"] == "resolved":
            group.resolved.append(alert)
        elif reason == "acknowledged":
            group.acknowledged.add(alert["fingerprint"])
        elif reason is None:
            group.firing.append(alert)
    # groups the receiver heard firing whose alerts are all gone or muted now
    for (name, gid), entry in log_entries.items():
        if name == receiver.name and gid not in groups and entry["firing"]:
            groups[gid] = _Group(entry["group_labels"], entry["group_key"])
    return groups


def _flush(
    receiver: Receiver,
    gid: str,
    group: _Group,
    log_entries: dict[tuple[str, str], dict[str, Any]],
    changed: dict[tuple[str, str], dict[str, Any]],
    gone: list[int],
    settings: NotifySettings,
    now: datetime,
    result: Dispatch,
) -> set[int]:
    """Tell `receiver` about one group if it is due; the ids of firing alerts told.
    Changes to the group's log entry go to `changed` (or its id to `gone`)."""
    timing = receiver.timing()
    place = (receiver.name, gid)
    entry = log_entries.get(place)
    if entry is None:
        if not group.firing:
            return set()  # resolved before anyone heard of it
        entry = {
            "receiver": receiver.name,
            "group_id": gid,
            "group_key": group.key,
            "group_labels": group.labels,
            "created_at": now,
            "next_flush_at": now + timing.group_wait,
            "notified_at": None,
            "firing": [],
            "resolved": [],
        }
        log_entries[place] = changed[place] = entry
    if now < entry["next_flush_at"]:
        return set()
    told = set(entry["firing"])
    firing = {a["fingerprint"] for a in group.firing}
    resolved = [a for a in group.resolved if a["fingerprint"] in told]
    acknowledged = group.acknowledged & told
    told_ids: set[int] = set()
    if needs_update(
        told,
        entry["notified_at"],
        firing,
        {a["fingerprint"] for a in resolved},
        acknowledged,
        timing.repeat_interval,
        now,
    ):
        batch = group.firing + (resolved if receiver.send_resolved else [])
        if batch:
            try:
                send(receiver, batch, settings, group.labels, group.key, now)
            except DeliveryError as exc:
                log.warning("%s", exc)
                result.errors.append(str(exc))
                entry["next_flush_at"] = now + min(timing.group_interval, RETRY_AFTER)
                changed[place] = entry
                return set()
            result.sent += len(batch)
            result.notifications += 1
            entry["notified_at"] = now
            told_ids = {a["id"] for a in group.firing}
        entry["firing"] = sorted(firing | acknowledged)
        entry["resolved"] = sorted(a["fingerprint"] for a in resolved)
    entry["next_flush_at"] = now + timing.group_interval
    if not entry["firing"] and not group.firing:
        del log_entries[place]
        changed.pop(place, None)
        if entry.get("id"):
            gone.append(entry["id"])
    else:
        changed[place] = entry
    return told_ids


def _settle(
    store: Store,
    alerts: list[dict[str, Any]],
    firing_fps: set[str],
    receivers: Sequence[Receiver],
    log_entries: dict[tuple[str, str], dict[str, Any]],
    told_ids: set[int],
    now: datetime,
) -> None:
    """Record on each alert what its receivers know: firing once one was told (in this
    round, or by the log: an earlier round that ended before recording it), resolved
    once no receiver still holds it as firing (or it fires again as a new alert)."""
    names = {r.name for r in receivers}
    held = {
        fp for (name, _gid), entry in log_entries.items() if name in names for fp in entry["firing"]
    }
    done = [
        a
        for a in alerts
        if (
            a["status"] == "firing"
            and (a["id"] in told_ids or a["fingerprint"] in held)
            and a["notified_status"] != "firing"
        )
        or (
            a["status"] == "resolved"
            and a["notified_status"] != "resolved"
            and (a["fingerprint"] not in held or a["fingerprint"] in firing_fps)
        )
    ]
    alert_store.mark_notified(
        store, [a["id"] for a in done], {a["id"]: a["status"] for a in done}, now
    )


@dataclass
class DispatchLoop:
    """The daemon's alert job: `run_once` is one `dispatch` round; the scheduler repeats
    it every few seconds, so group waits, group intervals and repeats are kept between
    sweeps."""

    store: Store
    receivers: Sequence[Receiver]
    settings: NotifySettings
    inhibit_rules: Sequence[InhibitRule] = ()

    def run_once(self) -> Dispatch:
        """One round: tell the receivers what is due."""
        return dispatch(self.store, self.receivers, self.settings, None, self.inhibit_rules)
