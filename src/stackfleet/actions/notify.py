"""Notifications: the `notify` action, and the notifier that finds a resource's owner
and sends e-mail (SMTP) and webhooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, Literal

from pydantic import Field

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
from stackfleet.core.delivery import (
    DeliveryError,
    NotifySettings,
    message_id,
    post_json,
    send_email,
)
from stackfleet.model import KINDS

log = logging.getLogger(__name__)


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
        self,
        recipients: list[str],
        subject: str,
        body: str,
        webhook: str | None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Send by e-mail (when an SMTP server is configured) and to the webhook. With
        `idempotency_key` (the action's own: stable per lease step or finding), the
        webhook gets it as an `Idempotency-Key` header and in the body, the e-mail a
        `Message-ID` made from it: a notice sent again after a crash left its delivery
        in doubt can be told from a new one and dropped by its receiver."""
        result: dict[str, Any] = {}
        s = self.settings
        if recipients and s.smtp_host:
            self._mail(recipients, subject, body, idempotency_key)
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
            if idempotency_key:
                payload["idempotency_key"] = idempotency_key
            try:
                result["webhook_status"] = post_json(
                    target, payload, s.timeout, idempotency_key=idempotency_key
                )
            except DeliveryError as exc:
                raise ActionError(str(exc)) from exc
        if not recipients and not target:
            # Say so in the audit entry: nobody was told (no owner address, no
            # notify.default_recipients, no webhook).
            result["told_nobody"] = "no recipient address and no webhook configured"
            log.warning("notice %r went to nobody: no recipient and no webhook", subject)
        return result

    def _mail(
        self, recipients: list[str], subject: str, body: str, idempotency_key: str | None
    ) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_from
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        if idempotency_key:
            message["Message-ID"] = message_id(idempotency_key, s.smtp_from)
        message.set_content(body)
        try:
            send_email(s, message)
        except DeliveryError as exc:
            raise ActionError(str(exc)) from exc


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
    (in a lifecycle). Sent once per finding (idempotency key); the key goes with the
    notice (webhook: `Idempotency-Key` header and `idempotency_key` field; e-mail: the
    `Message-ID`), so a receiver can drop a notice re-sent after a crash."""

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
        result = ctx.notifier.send(
            sorted(set(recipients)), subject, body, self.webhook, ctx.idempotency_key or None
        )
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
