"""Notifications mapped to resources, event policy validation, debouncing, the
single-resource store writes, and event runs scoped to their resources (SQLite)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from stackfleet.core.redaction import redact_url
from stackfleet.engine.event_processor import EventProcessor
from stackfleet.engine.policies import PolicyRunner
from stackfleet.policy import PolicyError, load_text
from stackfleet.sources.notifications import (
    Notification,
    NotificationFormatError,
    ResourceEvent,
    is_deletion,
    kinds_for_pattern,
    parse_notification,
)
from stackfleet.store import Store
from stackfleet.store.findings import list_findings

SERVER = "9b5b2c2e-4e0c-4d8f-9a54-1f0f8e0f3b11"


def event_of(event_type: str, payload: object) -> ResourceEvent | None:
    return Notification(event_type, payload, cloud="c1", region="r1").resource_event()


# ------------------------------------------------------------------ mapping
def test_nova_versioned_instance_events_are_about_a_server() -> None:
    payload = {
        "nova_object.name": "InstanceUpdatePayload",
        "nova_object.data": {"uuid": SERVER, "tenant_id": "p1", "state": "active"},
    }
    event = event_of("instance.update", payload)
    assert event is not None
    assert (event.kind, event.resource_id, event.project_id) == ("server", SERVER, "p1")
    assert (event.cloud, event.region, event.deleted) == ("c1", "r1", False)


def test_nova_delete_end_says_the_server_is_gone() -> None:
    versioned = event_of("instance.delete.end", {"nova_object.data": {"uuid": SERVER}})
    legacy = event_of("compute.instance.delete.end", {"instance_id": SERVER})
    assert versioned is not None and versioned.deleted
    assert legacy is not None and legacy.deleted and legacy.kind == "server"
    started = event_of("instance.delete.start", {"nova_object.data": {"uuid": SERVER}})
    assert started is not None and not started.deleted


def test_soft_delete_is_not_a_deletion() -> None:
    assert not is_deletion("instance.soft_delete.end")
    assert is_deletion("image.delete") and is_deletion("port.delete.end")


def test_neutron_events_find_the_id_in_the_object_or_beside_it() -> None:
    created = event_of("port.create.end", {"port": {"id": "port-1", "project_id": "p2"}})
    deleted = event_of("floatingip.delete.end", {"floatingip_id": "fip-1"})
    assert created is not None and (created.kind, created.resource_id) == ("port", "port-1")
    assert created.project_id == "p2"
    assert deleted is not None
    assert (deleted.kind, deleted.resource_id, deleted.deleted) == ("floating_ip", "fip-1", True)


def test_a_create_start_without_an_id_is_about_no_resource() -> None:
    """Neutron's create.start carries the request body: there is no id yet."""
    assert event_of("port.create.start", {"port": {"network_id": "net-1"}}) is None


def test_cinder_and_glance_events() -> None:
    volume = event_of("volume.delete.end", {"volume_id": "vol-1", "tenant_id": "p1"})
    image = event_of("image.update", {"id": "img-1", "owner": "p3"})
    assert volume is not None and (volume.kind, volume.deleted) == ("volume", True)
    assert image is not None and (image.kind, image.project_id) == ("image", "p3")


def test_events_about_kinds_not_kept_are_ignored() -> None:
    assert event_of("aggregate.create.end", {"nova_object.data": {"uuid": "a"}}) is None
    assert event_of("identity.authenticate", {"initiator": {}}) is None


def test_patterns_name_the_kinds_they_can_concern() -> None:
    assert kinds_for_pattern("instance.*") == {"server"}
    assert kinds_for_pattern("floatingip.create.end") == {"floating_ip"}
    assert {"server", "port", "volume"} <= kinds_for_pattern("*.delete.end")
    assert kinds_for_pattern("aggregate.*") == set()


# ------------------------------------------------------------------ pushed bodies
def test_the_oslo_messaging_envelope_is_unwrapped() -> None:
    message = {
        "event_type": "volume.create.end",
        "publisher_id": "volume.cinder1",
        "priority": "INFO",
        "payload": {"volume_id": "vol-2"},
        "timestamp": "2026-11-25 12:00:00.000000",
    }
    body = {"oslo.version": "2.0", "oslo.message": json.dumps(message)}
    notification = parse_notification(body, "c1")
    assert (notification.event_type, notification.priority) == ("volume.create.end", "info")
    assert notification.resource_event() is not None


def test_a_body_without_event_type_names_the_field() -> None:
    with pytest.raises(NotificationFormatError, match="^event_type: required"):
        parse_notification({"payload": {}})
    with pytest.raises(NotificationFormatError, match="^payload: required"):
        parse_notification({"event_type": "instance.update"})


def test_transport_urls_are_shown_without_their_password() -> None:
    assert redact_url("rabbit://nova:s3cret@mq1:5672/nova") == "rabbit://nova:***@mq1:5672/nova"


# ------------------------------------------------------------------ validation
def test_an_event_policy_with_events_that_never_concern_its_kind_is_invalid() -> None:
    text = """policies:
  - name: volumes-on-instance-events
    resource: volume
    mode:
      type: event
      events: [volume.*, "instance.*"]
"""
    with pytest.raises(PolicyError) as caught:
        load_text(text, "events.yaml")
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == ("events.yaml", 6)
    assert problem.field == "policy 'volumes-on-instance-events' mode.events[1]"
    assert "never concerns a volume" in problem.message and "volume.*" in problem.message


def test_an_event_policy_without_events_is_invalid() -> None:
    with pytest.raises(PolicyError, match="needs at least one event type"):
        load_text("policies:\n  - {name: p, resource: server, mode: {type: event}}\n")


def test_an_event_policy_on_a_kind_no_event_concerns_says_so() -> None:
    text = "policies:\n  - {name: h, resource: hypervisor, mode: {type: event, events: [x.*]}}\n"
    with pytest.raises(PolicyError, match="no notification is mapped to hypervisor"):
        load_text(text)


# ------------------------------------------------------------------ debouncing
POLICIES = """policies:
  - name: fip-unattached
    resource: floating_ip
    mode: {type: event, events: ["floatingip.*"]}
    filters: [{port_id: absent}]
"""


def processor(store: Store, **options: float) -> EventProcessor:
    return EventProcessor(store, PolicyRunner(store), load_text(POLICIES), **options)  # type: ignore[arg-type]


def fip_event(fid: str, event_type: str = "floatingip.update.end") -> ResourceEvent:
    return ResourceEvent(
        event_type, "floating_ip", fid, "c1", "r1", deleted=is_deletion(event_type)
    )


def test_a_burst_about_one_resource_is_one_pending_refresh(store: Store) -> None:
    events = processor(store)
    for _ in range(50):
        assert events.submit(fip_event("fip-1"))
    assert events.submit(fip_event("fip-1", "floatingip.delete.end"))
    assert events.pending == 1
    assert (events.stats["queued"], events.stats["merged"]) == (1, 50)
    [(key, entry)] = events._pending.items()
    assert key == ("c1", "r1", "floating_ip", "fip-1")
    assert entry.deleted and entry.count == 51
    assert entry.event_types == ["floatingip.update.end", "floatingip.delete.end"]


def test_a_full_queue_drops_new_resources_but_merges_pending_ones(store: Store) -> None:
    events = processor(store, queue_size=2)
    assert events.submit(fip_event("fip-1")) and events.submit(fip_event("fip-2"))
    assert not events.submit(fip_event("fip-3"))
    assert events.submit(fip_event("fip-1"))
    assert events.stats["dropped"] == 1 and events.pending == 2


def test_a_resource_is_due_after_quiet_or_after_the_longest_wait(store: Store) -> None:
    events = processor(store, debounce=2.0, max_delay=10.0)
    events.submit(fip_event("fip-1"))
    entry = events._pending[("c1", "r1", "floating_ip", "fip-1")]
    due, next_at = events._due(entry.last + 1.0)
    assert due == [] and next_at == pytest.approx(entry.last + 2.0)
    entry.last = entry.first + 9.5  # still busy: waits no longer than max_delay
    due, _ = events._due(entry.first + 10.0)
    assert [key for key, _ in due] == [("c1", "r1", "floating_ip", "fip-1")]
    assert events.pending == 0


# ------------------------------------------------------------------ store writes
def fip(fid: str, port: str | None = None) -> dict:
    return {"id": fid, "name": fid, "project_id": "p1", "status": "DOWN", "port_id": port}


def record_pass(store: Store, records: list[dict]) -> None:
    pass_id = store.begin_pass("c1", "r1")
    store.record_kind(pass_id, "c1", "r1", "floating_ip", records, True)
    store.finish_pass(pass_id, "complete", None, 1)


def test_upserting_one_resource_keeps_first_seen_and_records_history(store: Store) -> None:
    record_pass(store, [fip("fip-1", "port-1"), fip("fip-2")])
    before = store.get_resource("floating_ip", "fip-1")
    assert store.upsert_resource("c1", "r1", "floating_ip", fip("fip-1")) == "changed"
    after = store.get_resource("floating_ip", "fip-1")
    assert after["first_seen"] == before["first_seen"]
    assert after["last_seen"] > before["last_seen"]
    assert after["port_id"] is None
    [change] = [c for c in after["changes"] if c["field"] == "port_id"]
    assert (change["old"], change["new"], change["pass_id"]) == ("port-1", None, 0)
    assert store.upsert_resource("c1", "r1", "floating_ip", fip("fip-1")) == "unchanged"
    assert store.upsert_resource("c1", "r1", "floating_ip", fip("fip-3")) == "added"
    live, _ = store.list_resources("floating_ip")
    assert {r["id"] for r in live} == {"fip-1", "fip-2", "fip-3"}


def test_marking_one_resource_gone_touches_no_other(store: Store) -> None:
    record_pass(store, [fip("fip-1"), fip("fip-2")])
    assert store.mark_resource_gone("c1", "r1", "floating_ip", "fip-1")
    assert not store.mark_resource_gone("c1", "r1", "floating_ip", "fip-1")
    live, _ = store.list_resources("floating_ip")
    assert [r["id"] for r in live] == ["fip-2"]
    assert store.upsert_resource("c1", "r1", "floating_ip", fip("fip-1")) == "revived"
    assert store.regions_of("c1", "floating_ip", "fip-1") == ["r1"]


# ------------------------------------------------------------------ scoped runs
def test_an_event_run_opens_and_resolves_findings_of_its_resources_only(store: Store) -> None:
    record_pass(store, [fip("fip-1"), fip("fip-2"), fip("fip-3", "port-3")])
    [policy] = load_text(POLICIES)
    runner = PolicyRunner(store)
    now = datetime.now(UTC)
    runner.run([policy], now=now, only={("c1", "r1", "floating_ip", "fip-1")})
    rows, _ = list_findings(store, status="open", policy="fip-unattached")
    assert [r["resource_id"] for r in rows] == ["fip-1"]
    # a periodic run over the whole kind finds fip-2 as well
    runner.run([policy], now=now)
    rows, _ = list_findings(store, status="open", policy="fip-unattached")
    assert {r["resource_id"] for r in rows} == {"fip-1", "fip-2"}
    # fip-1 gets attached; an event run about it resolves its finding, not fip-2's
    store.upsert_resource("c1", "r1", "floating_ip", fip("fip-1", "port-9"))
    runner.run([policy], now=now, only={("c1", "r1", "floating_ip", "fip-1")})
    rows, _ = list_findings(store, status="open", policy="fip-unattached")
    assert [r["resource_id"] for r in rows] == ["fip-2"]


def test_a_pass_listed_before_an_event_does_not_undo_it(store: Store) -> None:
    """A pass lists at its start and records later: a floating IP created (and one
    deleted) in between, seen by events, keeps what the events said."""
    record_pass(store, [fip("fip-1"), fip("fip-2")])
    pass_id = store.begin_pass("c1", "r1")
    listed = [fip("fip-1"), fip("fip-2")]  # the listing, before the events
    store.upsert_resource("c1", "r1", "floating_ip", fip("fip-new"))
    store.mark_resource_gone("c1", "r1", "floating_ip", "fip-2")
    store.record_kind(pass_id, "c1", "r1", "floating_ip", listed, True)
    store.finish_pass(pass_id, "complete", None, 1)
    live, _ = store.list_resources("floating_ip")
    assert {r["id"] for r in live} == {"fip-1", "fip-new"}
    # the next pass decides from its own listing
    record_pass(store, [fip("fip-1")])
    live, _ = store.list_resources("floating_ip")
    assert {r["id"] for r in live} == {"fip-1"}
