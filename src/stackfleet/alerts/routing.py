"""Routing alerts to receivers: a webhook (Alertmanager's webhook format, so anything
that takes Alertmanager notifications takes ours), e-mail over SMTP, and an Alertmanager
(its v2 API, `POST /api/v2/alerts`). Each receiver takes the alerts whose labels match
all its matchers."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stackfleet.actions.base import ActionError
from stackfleet.actions.notify import NotifySettings, post_json
from stackfleet.alerts.model import Matcher, matches_all

log = logging.getLogger(__name__)


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
    send_resolved: bool = True

    @field_validator("match")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        for text in value:
            Matcher.parse(text)
        return value

    def matchers(self) -> list[Matcher]:
        return [Matcher.parse(m) for m in self.match]

    @model_validator(mode="after")
    def _complete(self) -> Receiver:
        if self.type in ("webhook", "alertmanager") and not self.url:
            raise ValueError(f"receiver {self.name}: a {self.type} receiver needs a url")
        if self.type == "email" and not self.to:
            raise ValueError(f"receiver {self.name}: an email receiver needs 'to' addresses")
        return self


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


def webhook_payload(receiver: str, alerts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for a batch of alerts."""
    labels = [a["labels"] for a in alerts]
    common = dict(set.intersection(*(set(item.items()) for item in labels))) if labels else {}
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": f"stackfleet:{receiver}",
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": [_am_alert(a) for a in alerts],
    }


def alertmanager_payload(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The body of Alertmanager's `POST /api/v2/alerts` (postable alerts)."""
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
        body.append(item)
    return body


def _email(settings: NotifySettings, receiver: Receiver, alerts: Sequence[dict[str, Any]]) -> None:
    if not settings.smtp_host:
        raise ActionError(f"receiver {receiver.name}: no smtp_host in the notify settings")
    firing = [a for a in alerts if a["status"] == "firing"]
    status = f"FIRING:{len(firing)}" if firing else f"RESOLVED:{len(alerts)}"
    names = sorted({a["alertname"] for a in alerts})
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(receiver.to)
    message["Subject"] = f"[{status}] {', '.join(names)}"
    lines = []
    for alert in alerts:
        labels = " ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
        summary = alert["annotations"].get("summary") or alert["annotations"].get("description", "")
        lines.append(f"[{alert['status']}] {alert['alertname']} {labels}\n  {summary}")
    message.set_content("\n".join(lines) + "\n")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise ActionError(f"receiver {receiver.name}: sending e-mail failed: {exc}") from exc


def send(receiver: Receiver, alerts: Sequence[dict[str, Any]], settings: NotifySettings) -> None:
    """Deliver one batch to one receiver; ActionError when it fails."""
    if receiver.type == "webhook":
        post_json(receiver.url or "", webhook_payload(receiver.name, alerts), settings.timeout)
    elif receiver.type == "alertmanager":
        base = (receiver.url or "").rstrip("/")
        post_json(f"{base}/api/v2/alerts", alertmanager_payload(alerts), settings.timeout)
    else:
        _email(settings, receiver, alerts)


def route(
    receivers: Sequence[Receiver],
    alerts: Sequence[dict[str, Any]],
    settings: NotifySettings,
) -> tuple[set[int], list[str]]:
    """Send each alert to every receiver that matches it. Returns the ids of alerts
    delivered everywhere they had to go (or that no receiver wanted) and the errors."""
    failed: set[int] = set()
    errors: list[str] = []
    for receiver in receivers:
        matchers = receiver.matchers()
        batch = [
            a
            for a in alerts
            if matches_all(matchers, a["labels"])
            and (receiver.send_resolved or a["status"] == "firing")
            # never echo an Alertmanager's alerts back to an Alertmanager
            and not (receiver.type == "alertmanager" and a["source"] == "alertmanager")
        ]
        if not batch:
            continue
        try:
            send(receiver, batch, settings)
        except ActionError as exc:
            log.warning("%s", exc)
            errors.append(str(exc))
            failed |= {a["id"] for a in batch}
    return {a["id"] for a in alerts} - failed, errors
