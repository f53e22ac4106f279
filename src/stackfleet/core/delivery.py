"""Delivering a message: a JSON POST to a webhook and an e-mail over SMTP, with the
`notify:` settings both use. The `notify` action and alert routing each compose their
own messages and hand them here, so neither has to import the other."""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from pydantic import BaseModel, Field

from stackfleet.core.errors import StackFleetError
from stackfleet.core.redaction import public_url, redact_text


class DeliveryError(StackFleetError):
    """A webhook or mail server did not take a message (the message says which and why)."""

    exit_code = 5


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


def post_json(
    url: str, payload: Any, timeout: float = 10.0, idempotency_key: str | None = None
) -> int:
    """POST JSON to a webhook; returns the HTTP status, raises DeliveryError on failure.
    Errors name the webhook by `public_url` only: its URL is often its credential. With
    `idempotency_key`, the request carries it as an `Idempotency-Key` header (the IETF
    draft's name, as Stripe and others use it): a receiver that keeps the keys it saw
    can drop a message sent again after a crash left its delivery in doubt."""
    data = json.dumps(payload, default=str).encode()
    headers = {"Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook {public_url(url)} answered {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryError(f"webhook {public_url(url)} failed: {redact_text(str(exc))}") from exc


def message_id(idempotency_key: str, sender: str) -> str:
    """A deterministic `Message-ID` for a message with this idempotency key: the same
    notice sent twice (after a crash left the first in doubt) carries the same id, which
    mail stores and filters use to drop the duplicate (RFC 5322 3.6.4: one id per
    message, so a repeat of the same message may reuse it). Its domain is the sender's."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "stackfleet.invalid"
    return f"<{idempotency_key}@{domain}>"


def smtp_tls_context(settings: NotifySettings) -> ssl.SSLContext:
    """The TLS context of STARTTLS: the server's certificate and host name verified
    (smtplib's own default verifies nothing), against `smtp_ca_file` when set."""
    try:
        return ssl.create_default_context(cafile=settings.smtp_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"notify.smtp_ca_file {settings.smtp_ca_file}: {exc}") from exc


def send_email(settings: NotifySettings, message: EmailMessage) -> None:
    """Send `message` through the configured SMTP server (STARTTLS and login when set);
    raises DeliveryError when no server is configured or it refuses the message."""
    if not settings.smtp_host:
        raise DeliveryError("no smtp_host in the notify settings: e-mail cannot be sent")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=smtp_tls_context(settings))
            if settings.smtp_username:
                password = os.environ.get(settings.smtp_password_env or "", "")
                smtp.login(settings.smtp_username, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(
            f"sending e-mail through {settings.smtp_host}:{settings.smtp_port} failed: {exc}"
        ) from exc
