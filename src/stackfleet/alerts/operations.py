"""What operators do to alerts — acknowledge, resolve, silence, expire a silence — each
recorded in the audit log. Shared by the CLI and the API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from stackfleet.alerts.incidents import Incident, caused_by, correlate
from stackfleet.alerts.lifecycle import silenced_by
from stackfleet.alerts.model import Matcher
from stackfleet.alerts.routing import InhibitRule
from stackfleet.core.errors import ConflictError, InvalidQueryError
from stackfleet.store import alerts as alert_store
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store


def with_state(
    store: Store,
    rows: list[dict[str, Any]],
    now: datetime,
    inhibit_rules: Sequence[InhibitRule] = (),
) -> list[dict[str, Any]]:
    """Add `state`: firing, acknowledged, silenced (by which silence), inhibited (by the
    settings' inhibition rules, when given, or by the cause of its incident) or
    resolved; and the incident links: `caused_by` (the cause's alert id) on a
    consequence, `consequences` (alert ids) on a cause."""
    silences = alert_store.list_silences(store, now)
    muters = []
    consequences: dict[int, Incident] = {}
    causes: dict[int, Incident] = {}
    if any(row["status"] == "firing" for row in rows):
        firing = alert_store.list_alerts(store, "firing", None)
        muters = [rule.muter(firing) for rule in inhibit_rules]
        incidents = correlate(store, firing)
        consequences = caused_by(incidents)
        causes = {i.cause["id"]: i for i in incidents}
    for row in rows:
        row["caused_by"] = None
        row["consequences"] = []
        if row["status"] == "resolved":
            row["state"] = "resolved"
            continue
        if row["id"] in causes:
            row["consequences"] = [a["id"] for a in causes[row["id"]].consequences]
        silence = silenced_by(row, silences)
        incident = consequences.get(row["id"])
        if incident is not None:
            row["caused_by"] = incident.cause["id"]
        if silence is not None:
            row["state"] = f"silenced (#{silence})"
        elif incident is not None:
            row["state"] = f"inhibited (by #{incident.cause['id']})"
        elif any(inhibited(row) for inhibited in muters):
            row["state"] = "inhibited"
        elif row["acked_by"]:
            row["state"] = "acknowledged"
        else:
            row["state"] = "firing"
    return rows


def incidents(store: Store) -> list[dict[str, Any]]:
    """The incidents among the firing alerts (alerts/incidents.py), newest cause first."""
    found = correlate(store, alert_store.list_alerts(store, "firing", None))
    found.sort(key=lambda i: str(i.cause.get("starts_at") or ""), reverse=True)
    return [i.to_dict() for i in found]


def acknowledge(store: Store, alert_id: int, actor: str, now: datetime) -> dict[str, Any]:
    row = alert_store.ack(store, alert_id, actor, now)
    AuditLog(store).append(
        "alert.acknowledged",
        {"alert_id": alert_id, "fingerprint": row["fingerprint"]},
        actor=actor,
        policy=row["alertname"],
    )
    return row


def resolve(store: Store, alert_id: int, actor: str, now: datetime) -> dict[str, Any]:
    row = alert_store.get(store, alert_id)
    if row["status"] != "firing":
        raise ConflictError(f"alert {alert_id} is {row['status']} already")
    alert_store.resolve_ids(store, [alert_id], now)
    AuditLog(store).append(
        "alert.resolved",
        {"alert_id": alert_id, "fingerprint": row["fingerprint"]},
        actor=actor,
        policy=row["alertname"],
    )
    return alert_store.get(store, alert_id)


def silence(
    store: Store,
    matchers: list[str],
    duration: timedelta,
    actor: str,
    comment: str,
    now: datetime,
) -> dict[str, Any]:
    """A silence of the alerts matching every matcher, from now for `duration`."""
    if not matchers:
        raise InvalidQueryError(
            "a silence needs at least one matcher, e.g. alertname=ssh-open-to-world"
        )
    if duration <= timedelta(0):
        raise InvalidQueryError("a silence needs a positive duration")
    parsed = [Matcher.parse(m).as_dict() for m in matchers]
    row = alert_store.add_silence(store, parsed, now, now + duration, actor, comment)
    AuditLog(store).append(
        "silence.created",
        {
            "silence_id": row["id"],
            "matchers": matchers,
            "ends_at": row["ends_at"],
            "comment": comment,
        },
        actor=actor,
    )
    return row


def expire(store: Store, silence_id: int, actor: str, now: datetime) -> dict[str, Any]:
    row = alert_store.expire_silence(store, silence_id, now)
    AuditLog(store).append("silence.expired", {"silence_id": silence_id}, actor=actor)
    return row
