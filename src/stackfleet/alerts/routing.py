"""Routing alerts to receivers: a webhook (Alertmanager's webhook format, so anything
that takes Alertmanager notifications takes ours), e-mail over SMTP, and an Alertmanager
(its v2 API, `POST /api/v2/alerts`). Each receiver takes the alerts whose labels match
all its matchers, grouped by the labels of its `group_by` (Alertmanager's aggregation
groups): one message per group, after `group_wait`, at most every `group_interval`,
repeated after `repeat_interval` while the group still fires. Inhibition rules mute
alerts while a related alert fires."""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stackfleet.actions.base import ActionError
from stackfleet.actions.notify import NotifySettings, post_json, smtp_tls_context
from stackfleet.alerts.model import Matcher, matches_all
from stackfleet.policy.times import Duration

log = logging.getLogger(__name__)

# group_by: ['...'] groups by every label, i.e. one group per alert (Alertmanager's word)
EVERY_LABEL = "..."
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


@dataclass(frozen=True)
class Timing:
    """A receiver's grouping intervals in force."""

    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta


# Alertmanager's defaults. An Alertmanager receiver is told again every minute instead:
# Alertmanager resolves an alert nobody refreshes (resolve_timeout, 5 min by default),
# so it needs the refresh Prometheus gives it (Prometheus re-sends every minute).
DEFAULT_TIMING = Timing(timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=4))
ALERTMANAGER_TIMING = Timing(timedelta(0), timedelta(minutes=1), timedelta(minutes=1))


def _check_matchers(value: list[str]) -> list[str]:
    for text in value:
        Matcher.parse(text)
    return value


class Receiver(BaseModel):
    """Where matching alerts go."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: Literal["webhook", "email", "alertmanager"]
    url: str | None = Field(default=None, description="webhook URL, or the Alertmanager's base URL")
    to: list[str] = Field(default_factory=list, description="email: addresses")
    match: list[str] = Field(
        default_factory=list, description="Label matchers, e.g. severity=~warning|critical"
    )
    send_resolved: bool = Field(default=True, description="Also tell when alerts resolve.")
    group_by: list[str] = Field(
        default_factory=list,
        description="Labels whose values make a group (one message per group); [] puts "
        "every alert in one group, ['...'] gives each alert a group of its own.",
    )
    group_wait: Duration | None = Field(
        default=None,
        description="How long a new group waits for more alerts before its first message "
        "(default 30s; 0s for an alertmanager receiver).",
    )
    group_interval: Duration | None = Field(
        default=None,
        description="How long a group waits before telling about new or resolved alerts "
        "(default 5m; 1m for an alertmanager receiver).",
    )
    repeat_interval: Duration | None = Field(
        default=None,
        description="How long before a still-firing group is told again (default 4h; 1m "
        "for an alertmanager receiver, which forgets alerts nobody refreshes).",
    )

    @field_validator("match")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        return _check_matchers(value)

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        for name in value:
            if name != EVERY_LABEL and not re.match(LABEL_NAME, name):
                raise ValueError(f"group_by: {name!r} is not a label name (or '...')")
        if EVERY_LABEL in value and len(value) > 1:
            raise ValueError("group_by: '...' groups by every label; give it alone")
        return value

    def matchers(self) -> list[Matcher]:
        return [Matcher.parse(m) for m in self.match]

    def timing(self) -> Timing:
        """The intervals in force: the receiver's own, else its type's defaults."""
        default = ALERTMANAGER_TIMING if self.type == "alertmanager" else DEFAULT_TIMING
        return Timing(
            self.group_wait if self.group_wait is not None else default.group_wait,
            self.group_interval if self.group_interval is not None else default.group_interval,
            self.repeat_interval if self.repeat_interval is not None else default.repeat_interval,
        )

    def wants(self, alert: dict[str, Any], matchers: list[Matcher] | None = None) -> bool:
        """Whether this receiver takes `alert` at all (`matchers`: its parsed matchers,
        when the caller asks about many alerts)."""
        # never echo an Alertmanager's alerts back to an Alertmanager
        if self.type == "alertmanager" and alert["source"] == "alertmanager":
            return False
        return matches_all(self.matchers() if matchers is None else matchers, alert["labels"])

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        """The labels that name the group an alert with `labels` belongs to."""
        if self.group_by == [EVERY_LABEL]:
            return dict(sorted(labels.items()))
        return {name: labels[name] for name in self.group_by if name in labels}

    @model_validator(mode="after")
    def _complete(self) -> Receiver:
        if self.type in ("webhook", "alertmanager") and not self.url:
            raise ValueError(f"receiver {self.name}: a {self.type} receiver needs a url")
        if self.type == "email" and not self.to:
            raise ValueError(f"receiver {self.name}: an email receiver needs 'to' addresses")
        return self


def group_key(receiver: str, labels: dict[str, str]) -> str:
    """Alertmanager's group key: the route (here: the receiver) and the group labels."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f'{{}}/{{receiver="{receiver}"}}:{{{inner}}}'


def group_id(key: str) -> str:
    """A short stable id of a group key (for the store's index)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class InhibitRule(BaseModel):
    """While an alert matching `source_matchers` fires, alerts matching
    `target_matchers` with the same values of the `equal` labels are not notified
    (Alertmanager's inhibit_rules), e.g. a host that is down mutes its hardware alerts."""

    model_config = ConfigDict(extra="forbid")

    source_matchers: list[str] = Field(description="Label matchers of the inhibiting alert.")
    target_matchers: list[str] = Field(description="Label matchers of the muted alerts.")
    equal: list[str] = Field(
        default_factory=list, description="Labels whose values must be equal on both."
    )

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one matcher, e.g. alertname=host-down")
        return _check_matchers(value)

    def muter(self, firing: Sequence[dict[str, Any]]) -> Callable[[dict[str, Any]], bool]:
        """A test of whether one of the `firing` alerts mutes a given alert (built once
        per dispatch: the sources are indexed by their `equal` label values)."""
        sources = [Matcher.parse(m) for m in self.source_matchers]
        targets = [Matcher.parse(m) for m in self.target_matchers]
        index: dict[tuple[str | None, ...], set[str]] = {}
        for alert in firing:
            if matches_all(sources, alert["labels"]):
                key = tuple(alert["labels"].get(name) for name in self.equal)
                index.setdefault(key, set()).add(alert["fingerprint"])

        def muted(target: dict[str, Any]) -> bool:
            if not index or not matches_all(targets, target["labels"]):
                return False
            found = index.get(tuple(target["labels"].get(name) for name in self.equal))
            return bool(found and found - {target["fingerprint"]})

        return muted

    def inhibits(self, target: dict[str, Any], sources: Sequence[dict[str, Any]]) -> bool:
        """Whether one of the firing `sources` mutes the alert `target`."""
        return self.muter(sources)(target)


def _common(items: Sequence[dict[str, str]]) -> dict[str, str]:
    if not items:
        return {}
    return dict(sorted(set.intersection(*(set(item.items()) for item in items))))


def _am_alert(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": alert["status"],
        "labels": alert["labels"],
        "annotations": alert["annotations"],
        "startsAt": alert["starts_at"],
        "endsAt": alert["ends_at"] or "0001-01-01T00:00:00Z",
        "generatorURL": alert.get("generator_url") or "",
        "fingerprint": alert["fingerprint"],
    }


def webhook_payload(
    receiver: str,
    alerts: Sequence[dict[str, Any]],
    group_labels: dict[str, str] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for the alerts of one group."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": key or group_key(receiver, group_labels or {}),
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": dict(group_labels or {}),
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": "",
        "alerts": [_am_alert(a) for a in alerts],
    }


def alertmanager_payload(
    alerts: Sequence[dict[str, Any]], valid_until: datetime | None = None
) -> list[dict[str, Any]]:
    """The body of Alertmanager's `POST /api/v2/alerts` (postable alerts). Firing alerts
    carry `valid_until` as endsAt when given, as Prometheus does: Alertmanager keeps
    them firing until then, and the next refresh moves it on."""
    body = []
    for alert in alerts:
        item: dict[str, Any] = {
            "labels": alert["labels"],
            "annotations": alert["annotations"],
            "startsAt": alert["starts_at"],
            "generatorURL": alert.get("generator_url") or "",
        }
        if alert["status"] == "resolved" and alert["ends_at"]:
            item["endsAt"] = alert["ends_at"]
        elif alert["status"] == "firing" and valid_until is not None:
            item["endsAt"] = valid_until.isoformat()
        body.append(item)
    return body


def _email(
    settings: NotifySettings,
    receiver: Receiver,
    alerts: Sequence[dict[str, Any]],
    group_labels: dict[str, str],
) -> None:
    if not settings.smtp_host:
        raise ActionError(f"receiver {receiver.name}: no smtp_host in the notify settings")
    firing = [a for a in alerts if a["status"] == "firing"]
    status = f"FIRING:{len(firing)}" if firing else f"RESOLVED:{len(alerts)}"
    names = sorted({a["alertname"] for a in alerts})
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(receiver.to)
    grouped = " ".join(f"{k}={v}" for k, v in sorted(group_labels.items()))
    message["Subject"] = f"[{status}] {', '.join(names)}" + (f" ({grouped})" if grouped else "")
    lines = [f"Group: {grouped}\n"] if grouped else []
    for alert in alerts:
        labels = " ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
        summary = alert["annotations"].get("summary") or alert["annotations"].get("description", "")
        lines.append(f"[{alert['status']}] {alert['alertname']} {labels}\n  {summary}")
    message.set_content("\n".join(lines) + "\n")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=smtp_tls_context(settings))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise ActionError(f"receiver {receiver.name}: sending e-mail failed: {exc}") from exc


def send(
    receiver: Receiver,
    alerts: Sequence[dict[str, Any]],
    settings: NotifySettings,
    group_labels: dict[str, str] | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> None:
    """Deliver the alerts of one group to one receiver (one message); ActionError when
    it fails."""
    labels = group_labels or {}
    if receiver.type == "webhook":
        post_json(
            receiver.url or "",
            webhook_payload(receiver.name, alerts, labels, key),
            settings.timeout,
        )
    elif receiver.type == "alertmanager":
        base = (receiver.url or "").rstrip("/")
        valid_until = now + 4 * receiver.timing().repeat_interval if now else None
        post_json(
            f"{base}/api/v2/alerts", alertmanager_payload(alerts, valid_until), settings.timeout
        )
    else:
        _email(settings, receiver, alerts, labels)
