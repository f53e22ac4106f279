"""The alert lifecycle: alerts fire from open findings and resolve with them, external
alerts are received (Alertmanager's formats), acknowledged, silenced and resolved.
Telling receivers (grouping, repeat, inhibition) is `stackfleet.alerts.dispatch`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stackfleet.alerts.dispatch import Dispatch, dispatch, silenced_by
from stackfleet.alerts.model import fingerprint
from stackfleet.core.times import parse_time
from stackfleet.store import alerts as alert_store
from stackfleet.store.db import Store
from stackfleet.store.findings import open_findings
from stackfleet.store.schema import Finding

__all__ = [
    "AlertChanges",
    "Dispatch",
    "WantedAlert",
    "dispatch",
    "finding_labels",
    "ingest",
    "silenced_by",
    "sync_alerts",
    "sync_policy_alerts",
]


@dataclass
class AlertChanges:
    fired: int = 0
    resolved: int = 0
    refreshed: int = 0
    # received alerts whose label set is one of StackFleet's own alerts: left alone
    refused: int = 0


# Sources of alerts received from outside; every other source is StackFleet's own
# (policy, hardware, database, ...), which only its own evaluations fire and resolve.
EXTERNAL_SOURCES = frozenset({"api", "alertmanager"})


@dataclass
class WantedAlert:
    """An alert that should be firing: its labels (with alertname and severity), its
    annotations, since when, and the finding it stands for."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    finding_id: int | None = None
    generator_url: str | None = None
    # refresh the annotations of an alert already firing (readings move on)
    refresh_annotations: bool = field(default=False)


def finding_labels(finding: Finding, severity: str, extra: dict[str, str]) -> dict[str, str]:
    """An alert's labels: the policy's, where the finding is, and those its kind takes
    from the record (`Kind.alert_labels`, kept in the finding's details). An empty cloud
    or region (infrastructure configured without one) is no label."""
    kept = (finding.details or {}).get("labels") or {}
    labels = {
        **extra,
        **{str(k): str(v) for k, v in kept.items() if v},
        "alertname": finding.policy,
        "severity": severity,
        "cloud": finding.cloud,
        "region": finding.region,
        "kind": finding.kind,
        "resource_id": finding.resource_id,
    }
    for where in ("cloud", "region"):
        if not labels[where]:
            del labels[where]
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
    source: str = "policy",
) -> AlertChanges:
    """Make the firing alerts of `policy` follow its open findings. `source` is what
    the alerts say raised them: "policy", or the pack of an infrastructure policy
    ("database", ...), as those alerts said before the packs were policies."""
    found = open_findings(store, policy)
    firing = {
        fp: a
        for fp, a in alert_store.firing_by_fingerprint(store, source).items()
        if a["alertname"] == policy
    }
    wanted: dict[str, WantedAlert] = {}
    for finding in found:
        # a policy's `escalate` gives findings their own severities
        label_set = finding_labels(finding, finding.severity or severity, labels)
        name = finding.resource_name or finding.resource_id
        summary = (finding.details or {}).get("summary")
        wanted[fingerprint(label_set)] = WantedAlert(
            labels=label_set,
            annotations={
                "summary": summary or f"{policy}: {finding.kind} {name}",
                "description": description
                or f"StackFleet policy {policy} matched {finding.kind} {name}",
            },
            starts_at=finding.opened_at,
            finding_id=finding.id,
            # a summary from the record follows its readings
            refresh_annotations=bool(summary),
        )
    return _sync(store, source, firing, wanted, now)


def sync_alerts(
    store: Store,
    source: str,
    wanted: Sequence[WantedAlert],
    now: datetime,
    scope: str | None = None,
) -> AlertChanges:
    """Make the firing alerts of `source` (e.g. "hardware") be exactly `wanted`: new
    label sets fire, known ones stay (one alert per fingerprint), the others resolve.
    With `scope`, only firing alerts whose alertname starts with it are resolved."""
    firing = {
        fp: a
        for fp, a in alert_store.firing_by_fingerprint(store, source).items()
        if scope is None or a["alertname"].startswith(scope)
    }
    return _sync(store, source, firing, {fingerprint(w.labels): w for w in wanted}, now)


def _sync(
    store: Store,
    source: str,
    firing: dict[str, dict[str, Any]],
    wanted: dict[str, WantedAlert],
    now: datetime,
) -> AlertChanges:
    changes = AlertChanges()
    new_rows = []
    for fp, item in wanted.items():
        current = firing.get(fp)
        if current is not None:
            if item.refresh_annotations and current["annotations"] != item.annotations:
                alert_store.touch(store, [current["id"]], now, annotations=item.annotations)
            continue
        new_rows.append(
            {
                "fingerprint": fp,
                "alertname": item.labels.get("alertname", "unnamed"),
                "severity": item.labels.get("severity", "warning"),
                "labels": item.labels,
                "annotations": item.annotations,
                "source": source,
                "status": "firing",
                "starts_at": item.starts_at,
                "ends_at": None,
                "updated_at": now,
                "finding_id": item.finding_id,
                "generator_url": item.generator_url,
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
    # new alerts of this batch by fingerprint: a label set given twice is one alert,
    # and the later item wins (it may resolve what the earlier one fired)
    new_rows: dict[str, dict[str, Any]] = {}
    for item in items:
        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        fp = fingerprint(labels)
        ends = parse_time(item.get("endsAt"))
        if ends is not None and ends.year <= 1:
            ends = None
        resolved = item.get("status") == "resolved" or (ends is not None and ends <= now)
        if fp in new_rows:
            if resolved:
                del new_rows[fp]
            else:
                new_rows[fp]["annotations"] = _strings(item.get("annotations"))
            continue
        current = firing.get(fp)
        if current is not None and current["source"] not in EXTERNAL_SOURCES:
            # a caller cannot resolve (or re-annotate) an alert StackFleet raised: it
            # resolves when its own check passes again
            changes.refused += 1
            continue
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
        new_rows[fp] = {
            "fingerprint": fp,
            # cut to the columns' sizes (the labels keep the whole values)
            "alertname": labels.get("alertname", "unnamed")[:255],
            "severity": labels.get("severity", "warning")[:32],
            "labels": labels,
            "annotations": _strings(item.get("annotations")),
            "source": source,
            "status": "firing",
            "starts_at": parse_time(item.get("startsAt")) or now,
            "ends_at": None,
            "updated_at": now,
            "finding_id": None,
            "generator_url": item.get("generatorURL"),
        }
    alert_store.fire(store, new_rows.values())
    changes.fired = len(new_rows)
    return changes


def _strings(mapping: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (mapping or {}).items()}
