"""RabbitMQ clusters, nodes and queues are resources and their thresholds the RabbitMQ
policy pack: findings and alerts keep their names and labels; a cluster whose API does
not answer keeps its queues' findings; a deleted queue's findings resolve at the next
successful sweep; a vhost sweep judges only that vhost's queues."""

from __future__ import annotations

import time
from pathlib import Path

from stackfleet.engine.infra_monitor import (
    pack_policies,
    record_broker,
    record_broker_unreachable,
)
from stackfleet.engine.infra_packs import InfraPacks
from stackfleet.policy.loader import pack_path
from stackfleet.sources.rabbitmq import (
    BrokerReading,
    BrokerTarget,
    NodeReading,
    QueueReading,
    classify_queue,
)
from stackfleet.store import alerts as alert_store
from stackfleet.store.findings import list_findings

TARGET = BrokerTarget.from_url("http://guest:guest@mq1.example.org:15672", name="mq1")
NO_CONSUMER = "rabbitmq/queue-no-consumer"


def queue(vhost: str, name: str, consumers: float = 0.0) -> QueueReading:
    values = {"consumers": consumers, "messages": 3.0, "messages_ready": 3.0}
    return QueueReading(
        vhost, name, classify_queue(name), "classic", "running", True, False, False, values
    )


def read(store, *queues: QueueReading, vhost: str | None = None) -> None:
    node = NodeReading("rabbit@mq1", {"running": 1.0, "mem_used_ratio": 0.2})
    reading = BrokerReading(TARGET, time.time(), "c1", "3.13", {}, [node], list(queues))
    record_broker(store, reading, vhost)


def now_pack(tmp_path: Path) -> list:
    """The pack without the one-minute window of `queue-no-consumer` (an operator's copy)."""
    text = pack_path("rabbitmq").read_text()
    start = text.index(f"- name: {NO_CONSUMER}\n")
    end = text.index("\n  - name:", start)
    body = "\n".join(line for line in text[start:end].split("\n") if "type: metric" not in line)
    copy = tmp_path / "rabbitmq.yaml"
    copy.write_text(text[:start] + body + text[end:])
    return pack_policies("rabbitmq", [copy])


def run(store, policies) -> None:
    InfraPacks(store, policies={"rabbitmq": policies}).run_pack("rabbitmq")


def open_queues(store) -> set[str]:
    rows = list_findings(store, status="open", policy=NO_CONSUMER)[0]
    return {r["resource_name"] for r in rows}


def test_a_queue_without_consumer_fires_with_its_place_labels(store, tmp_path):
    read(store, queue("/", "orphan"))
    run(store, now_pack(tmp_path))
    [alert] = alert_store.list_alerts(store)
    assert alert["source"] == "rabbitmq"
    assert alert["labels"] == {
        "alertname": NO_CONSUMER,
        "severity": "warning",
        "pack": "rabbitmq",
        "kind": "queue",
        "resource_id": "mq1.example.org:15672/%2F/orphan",
        "instance": "mq1",
        "vhost": "/",
        "queue": "orphan",
    }
    assert alert["annotations"]["summary"] == "queue orphan (vhost /) has no consumer"


def test_an_unreachable_cluster_keeps_its_queues_findings(store, tmp_path):
    policies = now_pack(tmp_path)
    read(store, queue("/", "orphan"))
    run(store, policies)
    record_broker_unreachable(store, TARGET, time.time(), "mq1.example.org:15672: no answer")
    run(store, policies)
    assert open_queues(store) == {"orphan"}
    [down] = list_findings(store, status="open", policy="rabbitmq/unreachable")[0]
    assert down["resource_name"] == "mq1"
    read(store, queue("/", "orphan", consumers=1.0))
    run(store, policies)
    assert open_queues(store) == set()
    assert list_findings(store, status="open", policy="rabbitmq/unreachable")[0] == []


def test_a_deleted_queue_resolves_and_a_vhost_sweep_judges_only_its_vhost(store, tmp_path):
    policies = now_pack(tmp_path)
    read(store, queue("a", "q1"), queue("b", "q2"))
    run(store, policies)
    assert open_queues(store) == {"q1", "q2"}
    read(store, vhost="a")  # vhost a has no queue any more; b was not looked at
    run(store, policies)
    assert open_queues(store) == {"q2"}
    read(store)  # the whole cluster: q2 is gone too
    run(store, policies)
    assert open_queues(store) == set()


def test_no_consumer_must_last_a_minute_of_readings(store):
    read(store, queue("/", "orphan"))
    run(store, pack_policies("rabbitmq"))
    assert open_queues(store) == set()
