"""Alert grouping, repeat and inhibition, Alertmanager's way: one message per group of a
receiver, after group_wait, at most every group_interval, again after repeat_interval
while it fires, resolutions told once; what was told survives a restart. Time is
injected: every dispatch gets its `now`."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sinks import Capture, SmtpSink

from stackfleet.alerts import operations
from stackfleet.alerts.dispatch import dispatch
from stackfleet.alerts.lifecycle import ingest
from stackfleet.alerts.routing import InhibitRule, Receiver
from stackfleet.api.app import create_app
from stackfleet.core.delivery import NotifySettings
from stackfleet.core.errors import ConfigError
from stackfleet.engine.settings import load_settings
from stackfleet.store import Store, open_store
from stackfleet.store import alerts as alert_store

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NOTIFY = NotifySettings()


@pytest.fixture
def capture() -> Iterator[Capture]:
    endpoint = Capture()
    yield endpoint
    endpoint.close()


def fire(
    store: Store, at: datetime, alertname: str = "hardware/inlet-temperature-high", **labels: str
) -> None:
    ingest(
        store,
        [{"labels": {"alertname": alertname, "severity": "warning", **labels}}],
        "api",
        at,
    )


def resolve(
    store: Store, at: datetime, alertname: str = "hardware/inlet-temperature-high", **labels: str
) -> None:
    ingest(
        store,
        [
            {
                "labels": {"alertname": alertname, "severity": "warning", **labels},
                "status": "resolved",
            }
        ],
        "api",
        at,
    )


def hook(capture: Capture, **options: Any) -> Receiver:
    return Receiver(name="ops", type="webhook", url=capture.url, **options)


def told(capture: Capture) -> list[list[tuple[str, str]]]:
    """Each message as (status, host) per alert."""
    return [
        sorted((a["status"], a["labels"].get("host", "")) for a in body["alerts"])
        for _path, body in capture.posts
    ]


def test_a_new_group_waits_group_wait_and_then_sends_all_its_alerts_in_one_message(store, capture):
    receiver = hook(capture, group_by=["alertname"])
    fire(store, T0, host="cmp1")
    dispatch(store, [receiver], NOTIFY, T0)
    fire(store, T0 + timedelta(seconds=10), host="cmp2")
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(seconds=10))
    assert capture.posts == []
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(seconds=30))
    assert told(capture) == [[("firing", "cmp1"), ("firing", "cmp2")]]
    body = capture.posts[0][1]
    assert body["groupLabels"] == {"alertname": "hardware/inlet-temperature-high"}
    assert body["commonLabels"] == {
        "alertname": "hardware/inlet-temperature-high",
        "severity": "warning",
    }
    assert body["groupKey"] == '{}/{receiver="ops"}:{alertname="hardware/inlet-temperature-high"}'
    assert body["status"] == "firing" and body["version"] == "4"


def test_group_by_labels_sends_one_message_per_group(store, capture):
    receiver = hook(capture, group_by=["host"], group_wait="0s")
    for host in ("cmp1", "cmp2"):
        fire(store, T0, host=host)
        fire(store, T0, "hardware/psu-redundancy-lost", host=host)
    dispatch(store, [receiver], NOTIFY, T0)
    assert sorted(body["groupLabels"]["host"] for _p, body in capture.posts) == ["cmp1", "cmp2"]
    assert all(len(body["alerts"]) == 2 for _p, body in capture.posts)


def test_group_by_every_label_gives_each_alert_a_message_of_its_own(store, capture):
    receiver = hook(capture, group_by=["..."], group_wait="0s")
    fire(store, T0, host="cmp1")
    fire(store, T0, host="cmp2")
    dispatch(store, [receiver], NOTIFY, T0)
    assert len(capture.posts) == 2
    assert all(len(body["alerts"]) == 1 for _p, body in capture.posts)


def test_an_alert_joining_a_told_group_waits_for_the_group_interval(store, capture):
    receiver = hook(capture, group_wait="0s", group_interval="5m")
    fire(store, T0, host="cmp1")
    dispatch(store, [receiver], NOTIFY, T0)
    fire(store, T0 + timedelta(minutes=1), host="cmp2")
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(minutes=1))
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(minutes=4))
    assert len(capture.posts) == 1
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(minutes=5))
    assert told(capture)[1] == [("firing", "cmp1"), ("firing", "cmp2")]


def test_a_still_firing_group_is_told_again_after_the_repeat_interval(store, capture):
    receiver = hook(capture, group_wait="0s", group_interval="5m", repeat_interval="1h")
    fire(store, T0, host="cmp1")
    for minutes in range(0, 60, 5):
        dispatch(store, [receiver], NOTIFY, T0 + timedelta(minutes=minutes))
    assert len(capture.posts) == 1
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(minutes=60))
    assert told(capture) == [[("firing", "cmp1")], [("firing", "cmp1")]]


def test_a_resolved_alert_is_told_once_then_the_group_is_gone(store, capture):
    receiver = hook(capture, group_wait="0s", group_interval="1m")
    fire(store, T0, host="cmp1")
    fire(store, T0, host="cmp2")
    dispatch(store, [receiver], NOTIFY, T0)
    resolve(store, T0 + timedelta(seconds=10), host="cmp1")
    for seconds in (60, 120, 180):
        dispatch(store, [receiver], NOTIFY, T0 + timedelta(seconds=seconds))
    assert told(capture)[1:] == [[("firing", "cmp2"), ("resolved", "cmp1")]]
    resolve(store, T0 + timedelta(seconds=200), host="cmp2")
    for seconds in (240, 300, 360):
        dispatch(store, [receiver], NOTIFY, T0 + timedelta(seconds=seconds))
    assert told(capture)[2:] == [[("resolved", "cmp2")]]
    assert capture.posts[-1][1]["status"] == "resolved"


def test_without_send_resolved_a_resolution_is_not_told(store, capture):
    receiver = hook(capture, group_wait="0s", group_interval="1m", send_resolved=False)
    fire(store, T0, host="cmp1")
    dispatch(store, [receiver], NOTIFY, T0)
    resolve(store, T0 + timedelta(seconds=10), host="cmp1")
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(minutes=1))
    assert told(capture) == [[("firing", "cmp1")]]


def test_an_alert_that_fires_and_resolves_before_the_group_wait_is_never_told(store, capture):
    receiver = hook(capture)
    fire(store, T0, host="cmp1")
    dispatch(store, [receiver], NOTIFY, T0)
    resolve(store, T0 + timedelta(seconds=5), host="cmp1")
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(seconds=30))
    assert capture.posts == []


def told_across_a_restart(url: str, capture: Capture) -> list[int]:
    """Messages after: a first dispatch, a restart, 10 minutes, 4 hours."""
    receiver = hook(capture, group_wait="0s", repeat_interval="4h")
    first = open_store(url)
    fire(first, T0, host="cmp1")
    dispatch(first, [receiver], NOTIFY, T0)
    first.close()
    again = open_store(url)  # the daemon restarted
    counts = [len(capture.posts)]
    try:
        dispatch(again, [receiver], NOTIFY, T0 + timedelta(minutes=10))
        counts.append(len(capture.posts))
        dispatch(again, [receiver], NOTIFY, T0 + timedelta(hours=4))
        counts.append(len(capture.posts))
    finally:
        again.close()
    return counts


def test_what_was_told_survives_a_restart(tmp_path: Path, capture):
    assert told_across_a_restart(f"sqlite:///{tmp_path / 'sf.db'}", capture) == [1, 1, 2]


@pytest.mark.postgres
def test_what_was_told_survives_a_restart_on_postgresql(postgres_url: str, capture):
    assert told_across_a_restart(postgres_url, capture) == [1, 1, 2]


def test_a_failed_notification_is_tried_again_and_sent_once(store, capture):
    broken = Receiver(name="ops", type="webhook", url="http://127.0.0.1:9/", group_wait="0s")
    fire(store, T0, host="cmp1")
    result = dispatch(store, [broken], NOTIFY, T0)
    assert result.errors and "webhook http://127.0.0.1:9/ failed" in result.errors[0]
    working = hook(capture, group_wait="0s")
    dispatch(store, [working], NOTIFY, T0 + timedelta(seconds=10))
    assert capture.posts == []  # the retry waits a little
    dispatch(store, [working], NOTIFY, T0 + timedelta(seconds=30))
    dispatch(store, [working], NOTIFY, T0 + timedelta(seconds=60))
    assert told(capture) == [[("firing", "cmp1")]]


def test_an_inhibiting_alert_mutes_the_alerts_of_the_same_host(store, capture):
    rule = InhibitRule(
        source_matchers=["alertname=hardware/bmc-unreachable"],
        target_matchers=["alertname=hardware/stale-reading"],
        equal=["host"],
    )
    receiver = hook(capture, group_by=["..."], group_wait="0s")
    fire(store, T0, "hardware/bmc-unreachable", host="cmp1")
    fire(store, T0, "hardware/stale-reading", host="cmp1")
    fire(store, T0, "hardware/stale-reading", host="cmp2")
    result = dispatch(store, [receiver], NOTIFY, T0, [rule])
    sent = sorted(
        (a["labels"]["alertname"], a["labels"]["host"])
        for _p, b in capture.posts
        for a in b["alerts"]
    )
    assert sent == [("hardware/bmc-unreachable", "cmp1"), ("hardware/stale-reading", "cmp2")]
    assert result.inhibited == 1


def test_grouping_settings_are_validated_with_the_field_named(tmp_path: Path):
    path = tmp_path / "stackfleet.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "alerts": {
                    "receivers": [
                        {
                            "name": "ops",
                            "type": "webhook",
                            "url": "http://x",
                            "group_by": ["host name"],
                        }
                    ]
                }
            }
        )
    )
    with pytest.raises(
        ConfigError, match=r"alerts\.receivers\.0\.group_by.*'host name' is not a label name"
    ):
        load_settings(str(path))


def test_receiver_defaults_are_alertmanagers():
    timing = Receiver(name="ops", type="webhook", url="http://x").timing()
    assert (timing.group_wait, timing.group_interval, timing.repeat_interval) == (
        timedelta(seconds=30),
        timedelta(minutes=5),
        timedelta(hours=4),
    )


def test_an_acknowledged_alert_is_not_repeated_but_its_resolution_is_told(store, capture):
    receiver = hook(capture, group_wait="0s", group_interval="1m", repeat_interval="1h")
    fire(store, T0, host="cmp1")
    dispatch(store, [receiver], NOTIFY, T0)
    [alert] = alert_store.list_alerts(store)
    operations.acknowledge(store, alert["id"], "alice", T0)
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(hours=2))
    assert len(capture.posts) == 1
    resolve(store, T0 + timedelta(hours=3), host="cmp1")
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(hours=3))
    assert told(capture) == [[("firing", "cmp1")], [("resolved", "cmp1")]]


def test_an_email_receiver_sends_one_email_per_group(store):
    sink = SmtpSink()
    try:
        receiver = Receiver(
            name="dc", type="email", to=["dc@example.org"], group_by=["host"], group_wait="0s"
        )
        for host in ("cmp1", "cmp2"):
            fire(store, T0, host=host)
            fire(store, T0, "hardware/psu-redundancy-lost", host=host)
        dispatch(store, [receiver], NotifySettings(smtp_host="127.0.0.1", smtp_port=sink.port), T0)
        subjects = sorted(
            email.message_from_string(raw, policy=email.policy.default)["Subject"]
            for raw in sink.messages
        )
    finally:
        sink.close()
    assert subjects == [
        "[FIRING:2] hardware/inlet-temperature-high, hardware/psu-redundancy-lost (host=cmp1)",
        "[FIRING:2] hardware/inlet-temperature-high, hardware/psu-redundancy-lost (host=cmp2)",
    ]


def test_inhibited_alerts_are_listed_as_inhibited(store, tmp_path: Path, monkeypatch):
    settings = tmp_path / "stackfleet.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "alerts": {
                    "inhibit_rules": [
                        {
                            "source_matchers": ["alertname=HostDown"],
                            "target_matchers": ["pack=hardware"],
                            "equal": ["host"],
                        }
                    ]
                }
            }
        )
    )
    monkeypatch.setenv("STACKFLEET_CONFIG", str(settings))
    fire(store, T0, "HostDown", host="cmp1")
    fire(store, T0, pack="hardware", host="cmp1")
    fire(store, T0, pack="hardware", host="cmp2")
    items = TestClient(create_app(store)).get("/v1/alerts").json()["items"]
    states = {(a["alertname"], a["labels"]["host"]): a["state"] for a in items}
    assert states == {
        ("HostDown", "cmp1"): "firing",
        ("hardware/inlet-temperature-high", "cmp1"): "inhibited",
        ("hardware/inlet-temperature-high", "cmp2"): "firing",
    }


def test_a_run_without_receivers_does_not_swallow_a_resolution(store, capture):
    """E.g. a `stackfleet policy run` from cron, with no settings, beside the daemon."""
    receiver = hook(capture, group_wait="0s", group_interval="1m")
    fire(store, T0, host="cmp1")
    dispatch(store, [receiver], NOTIFY, T0)
    resolve(store, T0 + timedelta(seconds=10), host="cmp1")
    dispatch(store, [], NOTIFY, T0 + timedelta(seconds=20))
    dispatch(store, [receiver], NOTIFY, T0 + timedelta(minutes=1))
    assert told(capture) == [[("firing", "cmp1")], [("resolved", "cmp1")]]
