"""RabbitMQ monitoring against the machine's real broker (127.0.0.1:5672).

The set-up enables the management plugin when it is off (as a fresh machine needs) and
works in a vhost of its own, `sf-probe-<random>`, deleted afterwards: queues named as
OpenStack's oslo.messaging names them, some consumed (over AMQP, with pika) and some
not, with messages published into them.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from fastapi.testclient import TestClient
from support import run_cli, service_missing

from stackfleet.api.app import create_app
from stackfleet.engine.infra_monitor import BrokerStatus, pack_policies, sweep_brokers
from stackfleet.policy.loader import pack_path
from stackfleet.policy.schema import Policy
from stackfleet.sources.rabbitmq import BrokerTarget, classify_queue, rpc_consumers
from stackfleet.store import Store

API = "http://127.0.0.1:15672"
AUTH = ("guest", "guest")
TARGET = BrokerTarget.from_url("http://guest:guest@127.0.0.1:15672")

DEAD_COMPUTE = "compute.sf-probe-host-1"
LIVE_COMPUTE = "compute.sf-probe-host-2"
ORPHAN = "sf-probe-orphan"
NOTIFICATIONS = "versioned_notifications.info"
UNACKED = "sf-probe-worker"


def management_api_answers() -> bool:
    try:
        return requests.get(f"{API}/api/overview", auth=AUTH, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def enable_management_plugin() -> None:
    """What a fresh machine needs: the plugin ships with RabbitMQ but is off."""
    if management_api_answers():
        return
    plugins = shutil.which("rabbitmq-plugins")
    if not plugins:
        service_missing("RabbitMQ's management API is off and rabbitmq-plugins is not installed")
    subprocess.run(
        [plugins, "enable", "rabbitmq_management"], check=True, capture_output=True, timeout=120
    )
    deadline = time.monotonic() + 60
    while not management_api_answers():
        if time.monotonic() > deadline:
            pytest.fail("the management API did not answer 60 s after enabling the plugin")
        time.sleep(0.5)


def api(method: str, path: str, **kwargs: object) -> requests.Response:
    response = requests.request(method, f"{API}{path}", auth=AUTH, timeout=10, **kwargs)
    response.raise_for_status()
    return response


def publish(vhost: str, queue: str, count: int) -> None:
    for i in range(count):
        body = api(
            "POST",
            f"/api/exchanges/{quote(vhost, safe='')}/amq.default/publish",
            json={
                "properties": {},
                "routing_key": queue,
                "payload": json.dumps({"n": i}),
                "payload_encoding": "string",
            },
        ).json()
        assert body["routed"], f"message to {queue} was not routed"


def queue_stats(vhost: str, queue: str) -> dict[str, object]:
    return api("GET", f"/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}").json()


class Consumer:
    """An AMQP consumer on one queue that acknowledges nothing (messages stay unacked)."""

    def __init__(self, vhost: str, queue: str) -> None:
        import pika

        params = pika.ConnectionParameters(
            "127.0.0.1", 5672, vhost, pika.PlainCredentials(*AUTH), heartbeat=30
        )
        self.connection = pika.BlockingConnection(params)
        self.channel = self.connection.channel()
        self.channel.basic_consume(queue, lambda *_: None, auto_ack=False)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.connection.process_data_events(time_limit=0.2)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        with contextlib.suppress(Exception):
            self.connection.close()


@pytest.fixture(scope="module")
def vhost() -> Iterator[str]:
    """Our own vhost with the queues of an OpenStack-like deployment, half-dead."""
    try:
        import pika  # noqa: F401, PLC0415 - only these tests publish
    except ImportError:
        service_missing("the pika package is not installed")
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as exc:
        service_missing(f"RabbitMQ not reachable on 127.0.0.1:5672: {exc}")
    enable_management_plugin()
    name = f"sf-probe-{uuid.uuid4().hex[:10]}"
    encoded = quote(name, safe="")
    api("PUT", f"/api/vhosts/{encoded}")
    consumers: list[Consumer] = []
    try:
        api(
            "PUT",
            f"/api/permissions/{encoded}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        )
        for queue in (DEAD_COMPUTE, LIVE_COMPUTE, ORPHAN, NOTIFICATIONS, UNACKED):
            api("PUT", f"/api/queues/{encoded}/{quote(queue, safe='')}", json={"durable": False})
        consumers = [Consumer(name, LIVE_COMPUTE), Consumer(name, UNACKED)]
        publish(name, DEAD_COMPUTE, 3)
        publish(name, ORPHAN, 2)
        publish(name, NOTIFICATIONS, 30)
        publish(name, UNACKED, 150)
        # statistics reach the management API every collection interval (5 s)
        deadline = time.monotonic() + 30
        while True:
            seen = {
                q: queue_stats(name, q)
                for q in (DEAD_COMPUTE, NOTIFICATIONS, UNACKED, LIVE_COMPUTE)
            }
            if (
                seen[DEAD_COMPUTE].get("messages") == 3
                and seen[NOTIFICATIONS].get("messages") == 30
                and seen[UNACKED].get("messages_unacknowledged") == 150
                and seen[LIVE_COMPUTE].get("consumers") == 1
            ):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"queue statistics did not arrive in 30 s: {seen}")
            time.sleep(0.5)
        yield name
    finally:
        for consumer in consumers:
            consumer.close()
        with contextlib.suppress(requests.RequestException):
            api("DELETE", f"/api/vhosts/{encoded}")


def findings_on(status: BrokerStatus, queue: str) -> dict[str, dict[str, object]]:
    return {f.rule: f.as_dict() for f in status.findings if f.resource_id.endswith("/" + queue)}


def tuned(tmp_path: Path, policy: str, *changes: tuple[str, str]) -> list[Policy]:
    """What an operator does to change a threshold: copy the RabbitMQ pack, change one
    policy's lines (each `changes` item: old text, new text), list the copy."""
    text = pack_path("rabbitmq").read_text()
    start = text.index(f"- name: {policy}\n")
    end = text.find("\n  - name:", start)
    end = len(text) if end < 0 else end
    body = text[start:end]
    for old, new in changes:
        assert old in body, old
        body = body.replace(old, new)
    copy = tmp_path / "rabbitmq.yaml"
    copy.write_text(text[:start] + body + text[end:])
    return pack_policies("rabbitmq", [copy])


# the line of a policy that makes its condition last (`for`): every reading of a window
WINDOW = re.compile(r"\n      # for .*\n      - \{type: metric.*\}")


def without_window(tmp_path: Path, policy: str) -> list[Policy]:
    text = pack_path("rabbitmq").read_text()
    start = text.index(f"- name: {policy}\n")
    end = text.find("\n  - name:", start)
    body = WINDOW.sub("", text[start:end])
    copy = tmp_path / "rabbitmq.yaml"
    copy.write_text(text[:start] + body + text[end:])
    return pack_policies("rabbitmq", [copy])


def sweep(store: Store, vhost: str, policies: list[Policy] | None = None) -> BrokerStatus:
    (status,) = sweep_brokers(store, [TARGET], policies, vhost=vhost)
    assert status.error is None, status.error
    return status


def test_queue_names_map_to_openstack_services() -> None:
    role = classify_queue("compute.cmp1")
    assert (role.role, role.service, role.host) == ("rpc", "nova-compute", "cmp1")
    assert classify_queue("conductor").service == "nova-conductor"
    volume = classify_queue("cinder-volume.ctl@lvm")
    assert (volume.service, volume.host) == ("cinder-volume", "ctl@lvm")
    assert classify_queue("ironic.conductor_manager.c1").service == "ironic-conductor"
    assert classify_queue("q-agent-notifier-port-update").role == "rpc"
    assert classify_queue("versioned_notifications.info").role == "notification"
    assert classify_queue("ironic_versioned_notifications.error").role == "notification"
    assert classify_queue("reply_0123456789abcdef0123456789abcdef").role == "reply"
    assert classify_queue("compute_fanout_0123456789abcdef0123456789abcdef").role == "fanout"
    assert classify_queue("compute-alt.cmp1").role == "other"


def test_rpc_queue_without_consumer_says_the_service_is_dead(store: Store, vhost: str) -> None:
    status = sweep(store, vhost)
    finding = findings_on(status, DEAD_COMPUTE)["rabbitmq/rpc-service-dead"]
    assert finding["severity"] == "critical"
    assert finding["state"] == "pending"  # the pack waits for 1 min of readings
    assert str(finding["message"]).startswith(
        f"nova-compute on sf-probe-host-1: nobody consumes its RPC queue {DEAD_COMPUTE}"
    )
    assert "the service is dead" in str(finding["message"])


def test_dead_service_fires_once_it_has_lasted_the_rules_duration(
    store: Store, vhost: str, tmp_path: Path
) -> None:
    policies = tuned(tmp_path, "rabbitmq/rpc-service-dead", ("window: 1m", "window: 2s"))
    sweep(store, vhost, policies)
    time.sleep(1.1)
    status = sweep(store, vhost, policies)
    assert findings_on(status, DEAD_COMPUTE)["rabbitmq/rpc-service-dead"]["state"] == "firing"


def test_rpc_queue_with_a_consumer_is_not_dead(store: Store, vhost: str) -> None:
    status = sweep(store, vhost)
    (queue,) = [q for q in status.queues if q["name"] == LIVE_COMPUTE]
    assert queue["consumers"] == 1 and queue["service"] == "nova-compute"
    assert findings_on(status, LIVE_COMPUTE) == {}


def test_rpc_consumers_counts_each_compute_hosts_live_consumers(vhost: str) -> None:
    """What the health model reads: the live host's consumer, none for the dead one."""
    assert rpc_consumers(TARGET, vhost) == {"sf-probe-host-2": 1}


def test_rpc_consumers_sees_a_lost_consumer_at_once(vhost: str) -> None:
    """Not after the next statistics round (every 5 s; the queue's `consumers` column
    still says 1 then): a dead process is read as dead on the health job's next
    assessment. (A new consumer shows with the statistics, a few seconds later.)"""
    queue = "compute.sf-probe-host-3"
    path = f"/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}"
    api("PUT", path, json={})
    try:
        consumer = Consumer(vhost, queue)
        try:
            deadline = time.monotonic() + 15
            while rpc_consumers(TARGET, vhost).get("sf-probe-host-3") != 1:
                assert time.monotonic() < deadline, "the new consumer never showed"
                time.sleep(0.2)
        finally:
            consumer.close()
        assert "sf-probe-host-3" not in rpc_consumers(TARGET, vhost)
    finally:
        # the module's vhost is shared: its queue list is what other tests check
        api("DELETE", path)


def test_other_queue_without_consumer_is_flagged(store: Store, vhost: str, tmp_path: Path) -> None:
    status = sweep(store, vhost, without_window(tmp_path, "rabbitmq/queue-no-consumer"))
    finding = findings_on(status, ORPHAN)["rabbitmq/queue-no-consumer"]
    assert finding["severity"] == "warning" and finding["state"] == "firing"
    assert f"queue {ORPHAN} (vhost {vhost}) has no consumer" == finding["message"]


def test_unacknowledged_messages_over_100_are_flagged(store: Store, vhost: str) -> None:
    status = sweep(store, vhost)
    (queue,) = [q for q in status.queues if q["name"] == UNACKED]
    assert queue["messages_unacknowledged"] == 150
    finding = findings_on(status, UNACKED)["rabbitmq/unacked-high"]
    assert "150 unacknowledged messages (> 100)" in str(finding["message"])


def test_notifications_piling_up_are_flagged_above_the_threshold(
    store: Store, vhost: str, tmp_path: Path
) -> None:
    assert "rabbitmq/notifications-piling-up" not in findings_on(sweep(store, vhost), NOTIFICATIONS)
    policies = tuned(
        tmp_path, "rabbitmq/notifications-piling-up", ("op: gt, value: 1000}", "op: gt, value: 20}")
    )
    status = sweep(store, vhost, policies)
    finding = findings_on(status, NOTIFICATIONS)["rabbitmq/notifications-piling-up"]
    assert f"notification queue {NOTIFICATIONS} (vhost {vhost}) holds 30 messages" in str(
        finding["message"]
    )
    assert "driver = noop" in str(finding["advice"])
    # nobody consuming notifications is common: not a "no consumer" finding by itself
    assert "rabbitmq/queue-no-consumer" not in findings_on(status, NOTIFICATIONS)


def test_node_memory_and_file_descriptors_are_read_against_their_limits(
    store: Store, vhost: str, tmp_path: Path
) -> None:
    status = sweep(store, vhost)
    (node,) = status.nodes
    assert 0 < node["mem_used_ratio"] < 1
    assert node["mem_used_bytes"] == pytest.approx(node["mem_used_ratio"] * node["mem_limit_bytes"])
    assert 0 < node["fd_used"] <= node["fd_total"]
    assert node["running"] == 1.0 and node["partitions"] == 0.0
    assert not [f for f in status.findings if f.kind == "rabbitmq_node"]
    # the same reading against a threshold it crosses
    without_window(tmp_path, "rabbitmq/memory-high")
    copy = (tmp_path / "rabbitmq.yaml").read_text()
    (tmp_path / "rabbitmq.yaml").write_text(
        copy.replace(
            "key: metrics.mem_used_ratio, op: gt, value: 0.9}",
            "key: metrics.mem_used_ratio, op: gt, value: 0}",
        )
    )
    crossed = sweep(store, vhost, pack_policies("rabbitmq", [tmp_path / "rabbitmq.yaml"]))
    (finding,) = [f for f in crossed.findings if f.rule == "rabbitmq/memory-high"]
    assert finding.message.startswith(f"{node['name']}: memory at ")
    assert "of the high watermark" in finding.message


def test_wrong_password_names_the_broker_and_the_user(store: Store, vhost: str) -> None:
    wrong = replace(TARGET, user="sf-probe-nobody", password="wrong")
    (status,) = sweep_brokers(store, [wrong])
    assert not status.up
    assert "127.0.0.1:15672: RabbitMQ refused user 'sf-probe-nobody'" in (status.error or "")


def test_management_api_that_does_not_answer_says_how_to_enable_it(store: Store) -> None:
    from mariadb_server import free_ports

    target = BrokerTarget.from_url(f"http://guest:guest@127.0.0.1:{free_ports(1)[0]}")
    (status,) = sweep_brokers(store, [target])
    assert not status.up and "rabbitmq-plugins enable rabbitmq_management" in (status.error or "")


def test_cli_mq_status_shows_the_dead_service(tmp_path, vhost: str) -> None:
    db = f"sqlite:///{tmp_path / 'sf.db'}"
    table = run_cli("--db-url", db, "mq", "status", "--vhost", vhost)
    assert table.code == 0, table.stderr
    assert "nova-compute on sf-probe-host-1: nobody consumes" in " ".join(table.stdout.split())
    result = run_cli("--db-url", db, "mq", "status", "--vhost", vhost, "-f", "json")
    (broker,) = result.json()
    queues = {q["name"]: q for q in broker["queues"]}
    assert queues[DEAD_COMPUTE]["messages"] == 3 and queues[DEAD_COMPUTE]["consumers"] == 0
    assert queues[DEAD_COMPUTE]["role"] == "rpc"
    assert "rabbitmq/rpc-service-dead" in {f["rule"] for f in broker["findings"]}


def test_api_and_metrics_show_queues_of_the_newest_probe(store: Store, vhost: str) -> None:
    sweep(store, vhost)
    client = TestClient(create_app(store))
    body = client.get("/v1/queues", params={"vhost": vhost, "role": "rpc"}).json()
    assert {q["name"] for q in body["queues"]} == {DEAD_COMPUTE, LIVE_COMPUTE}
    assert body["brokers"][0]["up"] is True
    assert any(
        f["rule"] == "rabbitmq/rpc-service-dead" and f["resource_id"].endswith(DEAD_COMPUTE)
        for f in body["findings"]
    )
    text = client.get("/metrics").text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("stackfleet_rabbitmq_queue_messages{") and DEAD_COMPUTE in line
    )
    assert 'role="rpc"' in line and 'service="nova-compute"' in line and line.endswith(" 3.0")
