"""Delivering a message (stackfleet.core.delivery): what the notify action and alert
routing both use to post to a webhook and to send e-mail."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sinks import Capture, SmtpSink

from stackfleet.actions.base import ActionError
from stackfleet.actions.notify import Notifier
from stackfleet.core.delivery import DeliveryError, NotifySettings, post_json, send_email


@pytest.fixture
def capture() -> Iterator[Capture]:
    endpoint = Capture()
    yield endpoint
    endpoint.close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def message(subject: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "stackfleet@localhost"
    mail["To"] = "ops@example.org"
    mail["Subject"] = subject
    mail.set_content("body")
    return mail


def test_a_webhook_gets_the_payload_as_json(capture: Capture) -> None:
    assert post_json(f"{capture.url}/hook", {"a": 1}) == 200
    assert capture.posts == [("/hook", {"a": 1})]


def test_an_unreachable_webhook_is_a_delivery_error_naming_it() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    with pytest.raises(DeliveryError, match=f"webhook {url} failed"):
        post_json(url, {}, timeout=2)


def test_e_mail_goes_through_the_configured_server(smtp: SmtpSink) -> None:
    send_email(NotifySettings(smtp_host="127.0.0.1", smtp_port=smtp.port), message("hello"))
    assert len(smtp.messages) == 1 and "Subject: hello" in smtp.messages[0]


def test_e_mail_without_a_server_says_what_to_configure() -> None:
    with pytest.raises(DeliveryError, match="no smtp_host"):
        send_email(NotifySettings(), message("hello"))


def test_the_notify_action_reports_a_failed_webhook_as_an_action_error() -> None:
    # the engine records ActionError as a failed action; a DeliveryError must not escape
    url = f"http://127.0.0.1:{closed_port()}/hook"
    with pytest.raises(ActionError, match="failed"):
        Notifier(NotifySettings(timeout=2)).send([], "subject", "body", url)
