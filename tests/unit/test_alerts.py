"""Alerts: fingerprints and matchers, firing and resolving with findings, routing to a
webhook, e-mail and an Alertmanager once per status change, silences, acknowledgements,
and alerts received from outside."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sinks import Capture, SmtpSink

from stackfleet.alerts import operations
from stackfleet.alerts.lifecycle import ingest
from stackfleet.alerts.model import Matcher, fingerprint
from stackfleet.alerts.routing import Receiver
from stackfleet.api.app import create_app
from stackfleet.core.delivery import NotifySettings
from stackfleet.core.errors import InvalidQueryError
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import AlertSettings, Settings
from stackfleet.policy import load_text
from stackfleet.store import alerts as alert_store

NOW = datetime.now(UTC)


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


def collect(store, *servers: dict[str, Any]) -> None:
    pass_id = store.begin_pass("c", "r")
    store.record_kind(pass_id, "c", "r", "server", list(servers), True)
    store.finish_pass(pass_id, "complete", None, 0)


def server(id: str, status: str = "ERROR") -> dict[str, Any]:
    return {"id": id, "name": f"vm-{id}", "project_id": "p1", "status": status}


POLICY = load_text(
    """policies:
  - name: error-servers
    resource: server
    severity: critical
    labels: {team: compute}
    filters: [{status: ERROR}]
"""
)


# no waiting: these tests are about what is sent, the grouping tests about when
PROMPT = {"group_wait": "0s", "group_interval": "0s"}


def run(store, receivers: list[Receiver] | None = None, smtp_port: int | None = None):
    settings = Settings(
        alerts=AlertSettings(receivers=receivers or []),
        notify=NotifySettings(
            smtp_host="127.0.0.1" if smtp_port else None, smtp_port=smtp_port or 25
        ),
    )
    return PolicyRunner(store, settings).run(POLICY)


def test_a_fingerprint_depends_on_the_labels_not_their_order():
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})


def test_matchers_equal_not_equal_and_anchored_regex():
    labels = {"alertname": "ssh-open", "severity": "critical"}
    assert Matcher.parse("severity=critical").matches(labels)
    assert Matcher.parse("severity!=warning").matches(labels)
    assert Matcher.parse("alertname=~ssh.*").matches(labels)
    assert not Matcher.parse("alertname=~ssh").matches(labels)  # anchored
    assert Matcher.parse("alertname!~rdp.*").matches(labels)


def test_a_malformed_matcher_says_what_is_allowed():
    with pytest.raises(InvalidQueryError, match="use name=value, name!=value"):
        Matcher.parse("severity critical")


def test_an_open_finding_fires_one_alert_with_labels_and_a_fingerprint(store):
    collect(store, server("a"))
    run(store)
    run(store)
    [alert] = alert_store.list_alerts(store)
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "error-servers",
        "severity": "critical",
        "team": "compute",
        "cloud": "c",
        "region": "r",
        "kind": "server",
        "resource_id": "a",
        "project_id": "p1",
    }
    assert alert["fingerprint"] == fingerprint(alert["labels"])


def test_the_alert_resolves_with_its_finding(store):
    collect(store, server("a"))
    run(store)
    collect(store, server("a", "ACTIVE"))
    run(store)
    assert alert_store.list_alerts(store) == []
    [alert] = alert_store.list_alerts(store, status="resolved")
    assert alert["ends_at"]


def test_a_webhook_receiver_hears_each_status_change_once(store, capture):
    hook = Receiver(name="ops", type="webhook", url=f"{capture.url}/hook", **PROMPT)
    collect(store, server("a"))
    run(store, [hook])
    run(store, [hook])
    collect(store, server("a", "ACTIVE"))
    run(store, [hook])
    statuses = [body["alerts"][0]["status"] for _path, body in capture.posts]
    assert statuses == ["firing", "resolved"]
    first = capture.posts[0][1]
    assert first["version"] == "4" and first["receiver"] == "ops"
    assert first["alerts"][0]["labels"]["alertname"] == "error-servers"


def test_receivers_only_get_alerts_their_matchers_match(store, capture):
    hook = Receiver(
        name="db-team", type="webhook", url=capture.url, match=["team=database"], **PROMPT
    )
    collect(store, server("a"))
    run(store, [hook])
    assert capture.posts == []


def test_a_silenced_alert_is_not_sent_until_the_silence_ends(store, capture):
    hook = Receiver(name="ops", type="webhook", url=capture.url, **PROMPT)
    silence = operations.silence(
        store,
        ["alertname=error-servers", "severity=~crit.*"],
        timedelta(hours=1),
        "me",
        "maintenance",
        NOW,
    )
    collect(store, server("a"))
    run(store, [hook])
    assert capture.posts == []
    [alert] = operations.with_state(store, alert_store.list_alerts(store), NOW)
    assert alert["state"] == f"silenced (#{silence['id']})"
    operations.expire(store, silence["id"], "me", datetime.now(UTC))
    run(store, [hook])
    assert len(capture.posts) == 1


def test_an_acknowledged_alert_is_not_sent(store, capture):
    collect(store, server("a"))
    run(store)  # no receivers yet
    [alert] = alert_store.list_alerts(store)
    operations.acknowledge(store, alert["id"], "alice", NOW)
    hook = Receiver(name="ops", type="webhook", url=capture.url, **PROMPT)
    run(store, [hook])
    assert capture.posts == []
    assert (
        operations.with_state(store, alert_store.list_alerts(store), NOW)[0]["state"]
        == "acknowledged"
    )


def test_alerts_are_sent_to_an_alertmanager_in_its_v2_format(store, capture):
    collect(store, server("a"))
    run(store, [Receiver(name="am", type="alertmanager", url=capture.url)])
    [(path, body)] = capture.posts
    assert path == "/api/v2/alerts"
    assert body[0]["labels"]["alertname"] == "error-servers"
    # valid for four refresh intervals, as Prometheus sends them: Alertmanager keeps
    # the alert firing while StackFleet refreshes it every minute
    valid_until = datetime.fromisoformat(body[0]["endsAt"])
    assert timedelta(minutes=3) < valid_until - datetime.now(UTC) <= timedelta(minutes=4)


def test_alerts_are_sent_by_email(store, smtp):
    collect(store, server("a"))
    run(
        store,
        [Receiver(name="mail", type="email", to=["ops@example.org"], **PROMPT)],
        smtp_port=smtp.port,
    )
    [raw] = smtp.messages
    message = email.message_from_string(raw, policy=email.policy.default)
    assert message["Subject"] == "[FIRING:1] error-servers"
    assert message["To"] == "ops@example.org"
    assert "resource_id=a" in message.get_content()


def test_alerts_from_an_alertmanager_webhook_fire_and_resolve(store):
    client = TestClient(create_app(store))
    alert = {
        "labels": {"alertname": "HostDown", "severity": "critical", "instance": "cmp1"},
        "startsAt": NOW.isoformat(),
    }
    posted = client.post(
        "/v1/alerts/webhook",
        json={"version": "4", "status": "firing", "alerts": [{**alert, "status": "firing"}]},
    )
    assert posted.json() == {"fired": 1, "refreshed": 0, "resolved": 0, "refused": 0}
    again = client.post("/v1/alerts/webhook", json={"alerts": [{**alert, "status": "firing"}]})
    assert again.json()["refreshed"] == 1
    [listed] = client.get("/v1/alerts").json()["items"]
    assert (listed["alertname"], listed["source"], listed["state"]) == (
        "HostDown",
        "alertmanager",
        "firing",
    )
    done = client.post("/v1/alerts/webhook", json={"alerts": [{**alert, "status": "resolved"}]})
    assert done.json()["resolved"] == 1
    assert client.get("/v1/alerts").json()["items"] == []


def test_alerts_posted_in_alertmanager_v2_shape_are_received(store):
    changes = ingest(store, [{"labels": {"alertname": "DiskFull"}, "endsAt": None}], "api", NOW)
    assert changes.fired == 1
    assert alert_store.list_alerts(store)[0]["alertname"] == "DiskFull"


def test_an_alertmanagers_alerts_are_not_echoed_back_to_an_alertmanager(store, capture):
    ingest(store, [{"labels": {"alertname": "HostDown"}}], "alertmanager", NOW)
    PolicyRunner(
        store,
        Settings(
            alerts=AlertSettings(
                receivers=[Receiver(name="am", type="alertmanager", url=capture.url)]
            )
        ),
    ).run([])
    assert capture.posts == []


def test_silences_and_acks_through_the_api_are_audited(store):
    client = TestClient(create_app(store))
    collect(store, server("a"))
    run(store)
    [alert] = client.get("/v1/alerts").json()["items"]
    assert (
        client.post(f"/v1/alerts/{alert['id']}/ack", json={"actor": "bob"}).json()["state"]
        == "acknowledged"
    )
    made = client.post(
        "/v1/silences", json={"matchers": ["kind=server"], "duration": "1h", "comment": "x"}
    )
    assert made.status_code == 200 and made.json()["state"] == "active"
    bad = client.post("/v1/silences", json={"matchers": ["kind server"]})
    assert bad.status_code == 400
    events = [e["event"] for e in client.get("/v1/audit").json()["items"]]
    assert events[:2] == ["silence.created", "alert.acknowledged"]


def test_an_unknown_key_in_an_api_body_is_a_400_naming_it(store):
    client = TestClient(create_app(store))
    collect(store, server("a"))
    run(store)
    [alert] = client.get("/v1/alerts").json()["items"]
    wrong = client.post(f"/v1/alerts/{alert['id']}/ack", json={"by": "bob"})
    assert wrong.status_code == 400 and "'by'" in wrong.json()["error"]["message"]
    assert client.get("/v1/alerts").json()["items"][0]["state"] == "firing"
    silence = client.post("/v1/silences", json={"matchers": ["kind=server"], "until": "1h"})
    assert silence.status_code == 400 and "'until'" in silence.json()["error"]["message"]


def test_a_posted_alert_cannot_resolve_stackfleets_own_alert(store):
    collect(store, server("a"))
    run(store)
    [own] = alert_store.list_alerts(store)
    client = TestClient(create_app(store))
    answer = client.post("/v1/alerts", json=[{"labels": own["labels"], "status": "resolved"}])
    assert answer.status_code == 200 and answer.json()["refused"] == 1
    [still] = alert_store.list_alerts(store)
    assert still["id"] == own["id"] and still["status"] == "firing"


def test_a_catastrophic_silence_regex_cannot_stall_matching():
    """RE2, as in Alertmanager: `(a+)+$` against a long label is linear, not exponential
    (Python's re takes minutes on this input; the test's 600 s timeout would catch it)."""
    from stackfleet.alerts.model import Matcher

    matcher = Matcher.parse("resource_id=~(a+)+$")
    assert not matcher.matches({"resource_id": "a" * 100_000 + "b"})
    assert matcher.matches({"resource_id": "aaa"})


def test_a_regex_outside_re2_syntax_is_refused_naming_the_matcher():
    from stackfleet.alerts.model import Matcher
    from stackfleet.core.errors import InvalidQueryError

    with pytest.raises(InvalidQueryError, match=r"team=~\(a\)\\\\1.*RE2"):
        Matcher.parse(r"team=~(a)\1")
    with pytest.raises(InvalidQueryError, match="longer than"):
        Matcher.parse("team=~" + "a" * 2000)
