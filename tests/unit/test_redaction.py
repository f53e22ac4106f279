"""One redaction for every URL StackFleet shows: passwords (also with `@` in them),
query-string secrets, and webhooks shown by their public part only."""

from __future__ import annotations

import ssl

import pytest

from stackfleet.actions.notify import Notify
from stackfleet.core.delivery import DeliveryError, NotifySettings, post_json, smtp_tls_context
from stackfleet.core.redaction import public_url, redact_options, redact_text, redact_url
from stackfleet.sources.database import DatabaseTarget
from stackfleet.sources.rabbitmq import BrokerTarget


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mysql://sf:p4ss@db1:3306", "mysql://sf:***@db1:3306"),
        ("mysql://sf:p@ss@w0rd@db1:3306/nova", "mysql://sf:***@db1:3306/nova"),
        ("mysql://sf:p?ss#w@db1/x", "mysql://sf:***@db1/x"),
        ("mysql://root@127.0.0.1:3306", "mysql://root@127.0.0.1:3306"),
        ("http://db1/x?password=hunter2&a=1", "http://db1/x?password=***&a=1"),
        ("https://h/hook?token=abc", "https://h/hook?token=***"),
        ("rabbit://u:p1@h1:5672,u:p2@h2:5672/nova", "rabbit://u:***@h1:5672,u:***@h2:5672/nova"),
        ("sqlite:////var/lib/stackfleet.db", "sqlite:////var/lib/stackfleet.db"),
        ("not a url", "not a url"),
        ("http://h?password=pw@x&a=1", "http://h?password=***&a=1"),
        ("https://h?to=ops@example.org", "https://h?to=ops@example.org"),
    ],
)
def test_redact_url_hides_passwords_and_query_secrets(url, shown):
    assert redact_url(url) == shown


def test_a_password_with_at_signs_leaves_nothing_behind():
    assert "w0rd" not in redact_url("postgresql://sf:S3cr@t@w0rd@db/sf")


def test_urls_inside_messages_are_redacted():
    text = "cannot open mysql://sf:se@cret@db:3306/x: refused"
    assert redact_text(text) == "cannot open mysql://sf:***@db:3306/x: refused"


def test_webhooks_show_scheme_host_and_path_without_tokens():
    url = "https://u:pw@hooks.example.org/services/T01/B02/Xk9sl2Kd8sLq0aZ1?token=t0k"
    assert public_url(url) == "https://hooks.example.org/services/T01/B02/***"


def test_action_options_show_webhooks_by_their_public_part():
    options = redact_options({"webhook": "https://h.example/hook?token=secret", "to": ["x@y"]})
    assert options == {"webhook": "https://h.example/hook", "to": ["x@y"]}


def test_a_notify_plan_keeps_no_webhook_token():
    plan = Notify(webhook="https://h.example/hook?token=s3cret").plan(
        {"cloud": "c", "region": "r", "kind": "server", "id": "1", "name": "n"}
    )
    assert plan is not None
    assert "s3cret" not in str(plan.options)


def test_webhook_errors_do_not_name_the_token():
    with pytest.raises(DeliveryError) as caught:
        post_json("http://127.0.0.1:9/hook?token=s3cret", {}, timeout=2)
    assert "s3cret" not in str(caught.value)
    assert "http://127.0.0.1:9/hook" in str(caught.value)


def test_infra_targets_keep_passwords_out_of_their_repr():
    assert "s3cret" not in repr(DatabaseTarget(host="db", password="s3cret"))
    assert "s3cret" not in repr(BrokerTarget(password="s3cret"))


def test_starttls_verifies_the_server_certificate():
    context = smtp_tls_context(NotifySettings(smtp_host="mail", smtp_starttls=True))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_missing_smtp_ca_file_is_a_clear_error(tmp_path):
    with pytest.raises(DeliveryError, match="smtp_ca_file"):
        smtp_tls_context(NotifySettings(smtp_ca_file=str(tmp_path / "none.pem")))
