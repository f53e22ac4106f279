"""The alert lifecycle: alerts fire from open findings and resolve with them, external
alerts are received (Alertmanager's formats), acknowledged, silenced and resolved, and
changes are routed to receivers once per status change (deduplicated by fingerprint)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from stackfleet.actions.notify import NotifySettings
from stackfleet.alerts.model import Matcher, fingerprint, matches_all
from stackfleet.alerts.routing import Receiver, route
from stackfleet.policy.times import parse_time
from stackfleet.store import alerts as alert_store
from stackfleet.store.db import Store
from stackfleet.store.schema import Finding


@dataclass
class AlertChanges:
    fired: int = 0
    resolved: int = 0
    refreshed: int = 0


@dataclass
class Dispatch:
    sent: int = 0
    silenced: int = 0
    acknowledged: int = 0
    errors: list[str] = field(default_factory=list)


def finding_labels(finding: Finding, severity: str, extra: dict[str, str]) -> dict[str, str]:
    labels = {
        **extra,
        "alertname": finding.policy,
        "severity": severity,
        "cloud": finding.cloud,
        "region": finding.region,
        "kind": finding.kind,
        "resource_id": finding.resource_id,
    }
    if finding.project_id:
        labels["project_id"] = finding.project_id
    return labels


def sync_policy_alerts(
    store: Store,
    policy: str,
    severity: str,
    labels: dict[str, str],
    description: str,
    now: datetime,
) -> AlertChanges:
    """Make the firing alerts of `policy` follow its open findings."""
    changes = AlertChanges()
    with store.session() as session:
        open_findings = list(
            session.scalars(
                select(Finding).where(Finding.policy == policy, Finding.status == "open")
            )
        )
    firing = {
        fp: a
        for fp, a in alert_store.firing_by_fingerprint(store, "policy").items()
        if a["alertname"] == policy
    }
    wanted: dict[str, tuple[Finding, dict[str, str]]] = {}
    for finding in open_findings:
        finding_set = finding_labels(finding, severity, labels)
        wanted[fingerprint(finding_set)] = (finding, finding_set)
    new_rows = []
    for fp, (finding, label_set) in wanted.items():
        if fp in firing:
            continue
        name = finding.resource_name or finding.resource_id
        new_rows.append(
            {
                "fingerprint": fp,
                "alertname": policy,
                "severity": severity,
                "labels": label_set,
                "annotations": {
                    "summary": f"{policy}: {finding.kind} {name}",
                    "description": description
                    or f"StackFleet policy {policy} matched {finding.kind} {name}",
                },
                "source": "policy",
                "status": "firing",
                "starts_at": finding.opened_at,
                "ends_at": None,
                "updated_at": now,
                "finding_id": finding.id,
                "generator_url": None,
            }
        )
    alert_store.fire(store, new_rows)
    gone = [a["id"] for fp, a in firing.items() if fp not in wanted]
    alert_store.resolve_ids(store, gone, now)
    changes.fired, changes.resolved = len(new_rows), len(gone)
    changes.refreshed = len(wanted) - len(new_rows)
    return changes


def ingest(
    store: Store, items: Sequence[dict[str, Any]], source: str, now: datetime
) -> AlertChanges:
    """Receive alerts in Alertmanager's shape ({labels, annotations, startsAt, endsAt,
    generatorURL} and optionally status): new label sets fire, known ones are
    refreshed, those resolved (status, or endsAt in the past) resolve."""
    changes = AlertChanges()
    firing = alert_store.firing_by_fingerprint(store)
    new_rows: list[dict[str, Any]] = []
    for item in items:
        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        fp = fingerprint(labels)
        ends = parse_time(item.get("endsAt"))
        if ends is not None and ends.year <= 1:
            ends = None
        resolved = item.get("status") == "resolved" or (ends is not None and ends <= now)
        current = firing.get(fp)
        if resolved:
            if current is not None:
                alert_store.resolve_ids(store, [current["id"]], now, ends or now)
                changes.resolved += 1
            continue
        if current is not None:
            alert_store.touch(
                store, [current["id"]], now, annotations=item.get("annotations") or {}
            )
            changes.refreshed += 1
            continue
        new_rows.append(
            {
                "fingerprint": fp,
                "alertname": labels.get("alertname", "unnamed"),
                "severity": labels.get("severity", "warning"),
                "labels": labels,
                "annotations": {str(k): str(v) for k, v in (item.get("annotations") or {}).items()},
                "source": source,
                "status": "firing",
                "starts_at": parse_time(item.get("startsAt")) or now,
                "ends_at": None,
                "updated_at": now,
                "finding_id": None,
                "generator_url": item.get("generatorURL"),
            }
        )
        firing[fp] = {"id": -1}
    alert_store.fire(store, new_rows)
    changes.fired = len(new_rows)
    return changes


def silenced_by(alert: dict[str, Any], silences: Sequence[dict[str, Any]]) -> int | None:
    """The id of an active silence matching the alert, if any."""
    for silence in silences:
        if silence["state"] != "active":
            continue
        matchers = [Matcher(m["name"], m["op"], m["value"]) for m in silence["matchers"]]
        if matches_all(matchers, alert["labels"]):
            return int(silence["id"])
    return None


def dispatch(
    store: Store,
    receivers: Sequence[Receiver],
    settings: NotifySettings,
    now: datetime,
) -> Dispatch:
    """Tell receivers about every alert whose status they have not heard yet. Silenced
    firing alerts wait (they are sent if still firing when the silence ends);
    acknowledged ones are not sent; resolutions always are."""
    result = Dispatch()
    pending = alert_store.to_notify(store)
    if not pending:
        return result
    silences = alert_store.list_silences(store, now)
    deliver: list[dict[str, Any]] = []
    settled: list[dict[str, Any]] = []
    for alert in pending:
        if alert["status"] == "firing" and silenced_by(alert, silences) is not None:
            result.silenced += 1
            continue
        if alert["status"] == "firing" and alert["acked_by"]:
            result.acknowledged += 1
            settled.append(alert)
            continue
        if alert["status"] == "resolved" and alert["notified_status"] is None:
            settled.append(alert)  # never announced as firing: nothing to take back
            continue
        deliver.append(alert)
    if receivers:
        delivered, errors = route(receivers, deliver, settings)
    else:
        delivered, errors = {a["id"] for a in deliver}, []
    result.errors = errors
    result.sent = len(delivered) if receivers else 0
    done = [a for a in deliver if a["id"] in delivered] + settled
    alert_store.mark_notified(
        store, [a["id"] for a in done], {a["id"]: a["status"] for a in done}, now
    )
    return result
