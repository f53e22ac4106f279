"""Notifications: the `notify` action, and the notifier that finds a resource's owner
and sends e-mail (SMTP) and webhooks."""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, Literal

from pydantic import BaseModel, Field

from stackfleet.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Record,
    label,
)
from stackfleet.core.redaction import public_url, redact_text
from stackfleet.model import KINDS

log = logging.getLogger(__name__)


class NotifySettings(BaseModel):
    """Where notifications go (the `notify:` section of the settings file)."""

    smtp_host: str | None = Field(default=None, description="SMTP server; none: no e-mail.")
    smtp_port: int = 25
    smtp_from: str = "stackfleet@localhost"
    smtp_starttls: bool = Field(
        default=False,
        description="Upgrade to TLS (STARTTLS) before sending, verifying the server's "
        "certificate and name.",
    )
    smtp_ca_file: str | None = Field(
        default=None,
        description="CA bundle to verify the SMTP server's certificate with (default: the "
        "system's).",
    )
    smtp_username: str | None = None
    smtp_password_env: str | None = Field(
        default=None, description="Environment variable holding the SMTP password."
    )
    owners: dict[str, list[str]] = Field(
        default_factory=dict, description="Project id or name -> e-mail addresses."
    )
    owner_metadata_key: str = Field(
        default="owner", description="Resource metadata key holding the owner's e-mail."
    )
    keystone_email: bool = Field(
        default=True, description="Ask Keystone for the e-mail of the resource's user."
    )
    default_recipients: list[str] = Field(
        default_factory=list, description="Used when no owner address is found."
    )
    webhook: str | None = Field(default=None, description="Default webhook URL.")
    timeout: float = 10.0


class Notifier:
    """Sends e-mail and webhook notifications as configured."""

    def __init__(
        self, settings: NotifySettings | None = None, project_names: dict[str, str] | None = None
    ) -> None:
        self.settings = settings or NotifySettings()
        self.project_names = project_names or {}

    def owner_addresses(self, record: Record, conn_for: Callable[[], Any]) -> list[str]:
        """The owner's addresses: the resource's owner metadata, the configured map (by
        project id, then name), the Keystone e-mail of the resource's user, else the
        default recipients."""
        s = self.settings
        metadata = record.get("metadata")
        if isinstance(metadata, dict):
            value = metadata.get(s.owner_metadata_key)
            if isinstance(value, str) and "@" in value:
                return [value]
        project = record.get("project_id") or ""
        for key in (project, self.project_names.get(project, "")):
            if key and key in s.owners:
                return list(s.owners[key])
        user_id = record.get("user_id")
        if s.keystone_email and user_id:
            try:
                user = conn_for().identity.get_user(user_id)
                email = getattr(user, "email", None)
                if email:
                    return [str(email)]
            except Exception as exc:  # an owner lookup failing must not stop the run
                log.info("no Keystone e-mail for user %s: %s", user_id, exc)
        return list(s.default_recipients)

    def send(
        self, recipients: list[str], subject: str, body: str, webhook: str | None
    ) -> dict[str, Any]:
        """Send by e-mail (when an SMTP server is configured) and to the webhook."""
        result: dict[str, Any] = {}
        s = self.settings
        if recipients and s.smtp_host:
            self._mail(recipients, subject, body)
            result["emailed"] = recipients
        elif recipients:
            result["not_emailed"] = "no smtp_host configured"
        target = webhook or s.webhook
        if target:
            payload = {
                "source": "stackfleet",
                "subject": subject,
                "message": body,
                "recipients": recipients,
            }
            result["webhook_status"] = post_json(target, payload, s.timeout)
        if not recipients and not target:
            # Say so in the audit entry: nobody was told (no owner address, no
            # notify.default_recipients, no webhook).
            result["told_nobody"] = "no recipient address and no webhook configured"
            log.warning("notice %r went to nobody: no recipient and no webhook", subject)
        return result

    def _mail(self, recipients: list[str], subject: str, body: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_from
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message.set_content(body)
        try:
            with smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=s.timeout) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=smtp_tls_context(s))
                if s.smtp_username:
                    smtp.login(s.smtp_username, os.environ.get(s.smtp_password_env or "", ""))
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise ActionError(
                f"sending e-mail through {s.smtp_host}:{s.smtp_port} failed: {exc}"
            ) from exc


def smtp_tls_context(settings: NotifySettings) -> ssl.SSLContext:
    """The TLS context of STARTTLS: the server's certificate and host name verified
    (smtplib's own default verifies nothing), against `smtp_ca_file` when set."""
    try:
        return ssl.create_default_context(cafile=settings.smtp_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ActionError(f"notify.smtp_ca_file {settings.smtp_ca_file}: {exc}") from exc


def post_json(url: str, payload: Any, timeout: float = 10.0) -> int:
    """POST JSON to a webhook; returns the HTTP status, raises ActionError on failure.
    Errors name the webhook by `public_url` only: its URL is often its credential."""
    data = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise ActionError(f"webhook {public_url(url)} answered {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ActionError(f"webhook {public_url(url)} failed: {redact_text(str(exc))}") from exc


class _Defaults(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, values: dict[str, Any]) -> str:
    """`template` with {field} placeholders filled from `values` (unknown ones kept)."""
    try:
        return template.format_map(_Defaults(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


@ACTIONS.register("notify")
class Notify(Action):
    """Tell someone: `to` lists e-mail addresses and/or `owner` (the resource's owner,
    found from its `owner` metadata, the configured project map, or the Keystone e-mail
    of its user); `webhook` posts a JSON message. `subject` and `message` may use
    {placeholders}: any field of the resource, plus {policy}, {kind} and {deadline}
    (in a lifecycle). Sent once per finding (idempotency key)."""

    kinds = tuple(KINDS)
    type: Literal["notify"] = "notify"
    to: list[str] = Field(default_factory=lambda: ["owner"], description="owner and/or addresses.")
    webhook: str | None = Field(default=None, description="Webhook URL (default: settings).")
    subject: str = Field(
        default="[StackFleet] {policy}: {kind} {name}", description="Subject template."
    )
    message: str = Field(
        default="StackFleet policy {policy} matched {kind} {name} ({id}) in {cloud}/{region}.",
        description="Body template.",
    )

    def plan(self, record: Record) -> Plan | None:
        return self.make_plan(
            record,
            f"notify {', '.join(self.to)} about {label(record)}",
            Change("notification", None, f"to {', '.join(self.to)}"),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        recipients: list[str] = []
        for target in self.to:
            if target == "owner":
                recipients += ctx.notifier.owner_addresses(
                    record, lambda: ctx.connection(record["cloud"], record["region"])
                )
            else:
                recipients.append(target)
        values = {**record, **ctx.template_values}
        subject = render(self.subject, values)
        body = render(self.message, values)
        result = ctx.notifier.send(sorted(set(recipients)), subject, body, self.webhook)
        result["subject"] = subject
        return result

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        # A notice that reached nobody is not a notice: a lifecycle must not start a
        # grace period (and later stop or delete) on the strength of it.
        if not result.get("emailed") and "webhook_status" not in result:
            why = result.get("told_nobody") or result.get("not_emailed") or "nothing was sent"
            return Outcome(
                verified=False,
                result=result,
                message=f"the notice reached nobody ({why}): configure notify.smtp_host "
                "with owners or default_recipients, or a webhook",
            )
        return Outcome(verified=True, result=result)
