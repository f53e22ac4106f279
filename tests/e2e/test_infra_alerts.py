"""Infrastructure findings become findings and alerts, as `stackfleet serve` records
them after each sweep: against simulated Redfish BMCs (a host running hot, a BMC that
answers garbage), the machine's real MariaDB (127.0.0.1:3306) and RabbitMQ (a queue
nobody consumes, in a vhost of our own), with a local webhook sink as the receiver."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pymysql
import pytest
import requests
from fastapi.testclient import TestClient
from sinks import Capture
from support import run_cli, service_missing

from stackfleet.alerts.routing import Receiver
from stackfleet.api.app import create_app
from stackfleet.engine.hardware import HardwareSweepLoop
from stackfleet.engine.infra_monitor import InfraMonitorLoop, pack_policies
from stackfleet.engine.infra_packs import InfraPacks
from stackfleet.policy.loader import pack_path
from stackfleet.simulator.redfish import RedfishSimulator, SimulatedBmc
from stackfleet.sources.database import DatabaseTarget
from stackfleet.sources.rabbitmq import BrokerTarget
from stackfleet.store import Store, open_store
from stackfleet.store import alerts as alert_store
from stackfleet.store.findings import list_findings

INLET = "hardware/inlet-temperature-high"
MQ_API = "http://127.0.0.1:15672"
MQ_AUTH = ("guest", "guest")


@pytest.fixture
def capture() -> Iterator[Capture]:
    endpoint = Capture()
    yield endpoint
    endpoint.close()


@pytest.fixture
def bmcs() -> Iterator[RedfishSimulator]:
    fleet = [SimulatedBmc(f"cmp{i}", seed=i) for i in range(1, 4)]
    with RedfishSimulator(fleet) as simulator:
        yield simulator


def alerting(store: Store, capture: Capture) -> InfraPacks:
    """What serve builds from the settings: one webhook receiver grouping by alertname,
    with intervals short enough for a test."""
    receiver = Receiver(
        name="ops",
        type="webhook",
        url=capture.url,
        group_by=["alertname"],
        group_wait="0s",
        group_interval="1s",
    )
    return InfraPacks(store, [receiver])


def hardware_loop(
    store: Store, bmcs: RedfishSimulator, tmp_path: Path, hooks: InfraPacks
) -> HardwareSweepLoop:
    bmc_map = bmcs.write_bmc_map(tmp_path / "bmc-map.yaml")
    return HardwareSweepLoop(
        store, bmc_map, include_ironic=False, timeout=5.0, after_sweep=hooks.after_hardware_sweep
    )


def open_findings(store: Store, name: str) -> list[dict[str, object]]:
    return list_findings(store, status="open", policy=name)[0]


def test_a_hot_host_fires_one_grouped_alert_and_its_resolution_once(store, bmcs, tmp_path, capture):
    hooks = alerting(store, capture)
    loop = hardware_loop(store, bmcs, tmp_path, hooks)
    loop.run_once()
    assert open_findings(store, INLET) == [] and capture.posts == []

    bmcs.bmc("cmp2").set(inlet_celsius=38.0)
    loop.run_once()
    [finding] = open_findings(store, INLET)
    assert (finding["resource_name"], finding["severity"]) == ("cmp2", "warning")
    assert finding["details"]["summary"].endswith("°C is above 35 °C")
    # what usually helps: the policy's description, on its alert
    [firing] = alert_store.list_alerts(store)
    assert "cooling" in firing["annotations"]["description"]
    [(_path, body)] = capture.posts
    assert body["groupLabels"] == {"alertname": INLET} and body["status"] == "firing"
    [alert] = body["alerts"]
    keys = ("alertname", "severity", "pack", "host", "kind", "host_kind")
    assert {k: alert["labels"][k] for k in keys} == {
        "alertname": INLET,
        "severity": "warning",
        "pack": "hardware",
        "host": "cmp2",
        "kind": "bmc",
        "host_kind": "hypervisor",
    }
    # the API shows it as any alert
    [listed] = TestClient(create_app(store)).get("/v1/alerts").json()["items"]
    assert (listed["alertname"], listed["source"], listed["state"]) == (INLET, "hardware", "firing")

    time.sleep(1.1)  # past the group interval: nothing new, so nothing is sent
    loop.run_once()
    assert len(capture.posts) == 1

    bmcs.bmc("cmp2").set(inlet_celsius=22.0)
    loop.run_once()
    assert open_findings(store, INLET) == []
    assert alert_store.list_alerts(store) == []
    time.sleep(1.1)  # the group interval since the last look; serve's ticker then sends
    hooks.dispatch()
    [(_path, resolved)] = capture.posts[1:]
    assert resolved["status"] == "resolved"
    assert [a["labels"]["host"] for a in resolved["alerts"]] == ["cmp2"]
    time.sleep(1.1)
    loop.run_once()
    assert len(capture.posts) == 2


def test_a_bmc_that_stops_answering_is_a_finding_and_leaves_the_others_open(
    store, bmcs, tmp_path, capture
):
    loop = hardware_loop(store, bmcs, tmp_path, alerting(store, capture))
    bmcs.bmc("cmp1").set(inlet_celsius=39.0)
    loop.run_once()
    assert len(open_findings(store, INLET)) == 1

    bmcs.bmc("cmp1").set(garbage=True, inlet_celsius=22.0)
    loop.run_once()
    # no reading is no evidence the host cooled down
    assert len(open_findings(store, INLET)) == 1
    [bad] = open_findings(store, "hardware/bmc-bad-response")
    assert bad["resource_name"] == "cmp1"
    firing = {a["alertname"] for a in alert_store.list_alerts(store)}
    assert firing == {INLET, "hardware/bmc-bad-response"}

    bmcs.bmc("cmp1").set(garbage=False)
    loop.run_once()
    assert open_findings(store, INLET) == []
    assert open_findings(store, "hardware/bmc-bad-response") == []


def test_the_cli_sweep_records_findings_only_when_asked(store, bmcs, tmp_path):
    bmc_map = bmcs.write_bmc_map(tmp_path / "bmc-map.yaml")
    bmcs.bmc("cmp3").set(inlet_celsius=40.5)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    common = ("--db-url", db, "hardware", "sweep", "--bmc-map", str(bmc_map), "--no-ironic")
    shown = run_cli(*common)
    assert shown.code == 0, shown.stderr
    read_only = open_store(db)
    try:
        assert alert_store.list_alerts(read_only) == []
        assert list_findings(read_only)[1] == 0
    finally:
        read_only.close()
    recorded = run_cli(*common, "--record")
    assert recorded.code == 0, recorded.stderr
    [alert] = run_cli("--db-url", db, "alerts", "list", "-f", "json").json()
    assert (alert["alertname"], alert["severity"]) == (INLET, "critical")  # 5 °C over


# --------------------------------------------------------------------------- MariaDB


@pytest.fixture(scope="module")
def mariadb() -> DatabaseTarget:
    try:
        pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3).close()
    except pymysql.err.MySQLError as exc:
        service_missing(f"MariaDB not reachable on 127.0.0.1:3306 as root: {exc}")
    return DatabaseTarget("127.0.0.1", 3306, user="root", name="db-local")


def test_a_database_threshold_and_an_unreachable_server_become_alerts(
    store, mariadb, capture, tmp_path
):
    from mariadb_server import free_ports

    dead = DatabaseTarget("127.0.0.1", free_ports(1)[0], user="root", name="db-gone")
    # a threshold every server crosses: any connection in use (a copy of the pack with
    # one number changed, as an operator tunes it)
    copy = tmp_path / "database.yaml"
    copy.write_text(
        pack_path("database")
        .read_text()
        .replace(
            "key: metrics.connections_used_ratio, op: gt, value: 0.8}",
            "key: metrics.connections_used_ratio, op: gt, value: 0}",
        )
    )
    policies = pack_policies("database", [copy])
    hooks = alerting(store, capture)
    hooks.policies["database"] = policies
    loop = InfraMonitorLoop(
        store,
        [mariadb, dead],
        [],
        database_policies=policies,
        after_sweep=hooks.after_infra_sweep,
    )
    loop.run_once()
    [high] = open_findings(store, "database/connections-high")
    assert high["resource_id"] == "127.0.0.1:3306"
    [gone] = open_findings(store, "database/unreachable")
    assert gone["resource_name"] == "db-gone"
    alerts = {a["alertname"]: a for a in alert_store.list_alerts(store)}
    high_alert = alerts["database/connections-high"]
    assert high_alert["labels"] == {
        "alertname": "database/connections-high",
        "severity": "warning",
        "pack": "database",
        "kind": "database_server",
        "resource_id": "127.0.0.1:3306",
        "instance": "db-local",
    }
    assert high_alert["source"] == "database"
    assert "of max_connections in use" in high_alert["annotations"]["summary"]
    assert alerts["database/unreachable"]["severity"] == "critical"
    assert alerts["database/unreachable"]["labels"]["instance"] == "db-gone"
    # one message per alertname (the shared server may cross other lines too)
    groups = [body["groupLabels"]["alertname"] for _p, body in capture.posts]
    assert sorted(set(groups)) == sorted(groups)
    assert {"database/connections-high", "database/unreachable"} <= set(groups)


# --------------------------------------------------------------------------- RabbitMQ


def mq_api(method: str, path: str, **kwargs: object) -> requests.Response:
    response = requests.request(method, f"{MQ_API}{path}", auth=MQ_AUTH, timeout=10, **kwargs)
    response.raise_for_status()
    return response


@pytest.fixture
def orphan_queue() -> Iterator[tuple[str, str]]:
    """A vhost of our own with one queue nobody consumes."""
    from test_mq_monitoring import enable_management_plugin

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as exc:
        service_missing(f"RabbitMQ not reachable on 127.0.0.1:5672: {exc}")
    enable_management_plugin()
    vhost = f"sf-alerts-{uuid.uuid4().hex[:8]}"
    encoded = quote(vhost, safe="")
    mq_api("PUT", f"/api/vhosts/{encoded}")
    try:
        mq_api(
            "PUT",
            f"/api/permissions/{encoded}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        )
        mq_api("PUT", f"/api/queues/{encoded}/sf-orphan", json={"durable": False})
        deadline = time.monotonic() + 30
        while mq_api("GET", f"/api/queues/{encoded}/sf-orphan").json().get("consumers") != 0:
            if time.monotonic() > deadline:
                pytest.fail("the queue's statistics did not arrive in 30 s")
            time.sleep(0.5)
        yield vhost, "sf-orphan"
    finally:
        with contextlib.suppress(requests.RequestException):
            mq_api("DELETE", f"/api/vhosts/{encoded}")


def test_a_queue_without_consumer_becomes_a_rabbitmq_alert(store, orphan_queue, capture, tmp_path):
    vhost, queue = orphan_queue
    hooks = alerting(store, capture)
    # no waiting for a minute of readings: the operator's copy drops the window
    text = pack_path("rabbitmq").read_text()
    start = text.index("- name: rabbitmq/queue-no-consumer\n")
    end = text.index("\n  - name:", start)
    body = re.sub(r"\n      # for .*\n      - \{type: metric.*\}", "", text[start:end])
    copy = tmp_path / "rabbitmq.yaml"
    copy.write_text(text[:start] + body + text[end:])
    hooks.policies["rabbitmq"] = pack_policies("rabbitmq", [copy])
    broker = BrokerTarget.from_url("http://guest:guest@127.0.0.1:15672", name="mq-local")
    loop = InfraMonitorLoop(
        store,
        [],
        [broker],
        rabbitmq_policies=hooks.pack("rabbitmq"),
        after_sweep=hooks.after_infra_sweep,
    )
    loop.run_once()
    ours = [
        f
        for f in open_findings(store, "rabbitmq/queue-no-consumer")
        if f["resource_name"] == queue and f["details"]["labels"].get("vhost") == vhost
    ]
    [finding] = ours
    [alert] = [a for a in alert_store.list_alerts(store) if a["finding_id"] == finding["id"]]
    assert alert["labels"]["pack"] == "rabbitmq" and alert["labels"]["queue"] == queue
    assert alert["labels"]["instance"] == "mq-local" and alert["severity"] == "warning"
    told = [
        a["labels"].get("queue")
        for _p, body in capture.posts
        if body["groupLabels"] == {"alertname": "rabbitmq/queue-no-consumer"}
        for a in body["alerts"]
    ]
    assert queue in told

    # the queue is deleted: the next successful sweep no longer sees it
    mq_api("DELETE", f"/api/queues/{quote(vhost, safe='')}/{queue}")
    loop.run_once()
    assert finding["id"] not in {
        f["id"] for f in open_findings(store, "rabbitmq/queue-no-consumer")
    }


# --------------------------------------------------------------------------- serve


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_sweeps_the_bmcs_and_tells_the_receivers(bmcs, tmp_path, capture):
    """The daemon end to end: `serve --bmc-map` with a webhook receiver in the settings
    file (no cloud to collect: its passes fail and the sweeps go on)."""
    bmcs.bmc("cmp1").set(inlet_celsius=39.0)
    bmc_map = bmcs.write_bmc_map(tmp_path / "bmc-map.yaml")
    settings = tmp_path / "stackfleet.yaml"
    settings.write_text(
        f"alerts:\n  receivers:\n    - {{name: ops, type: webhook, url: '{capture.url}', "
        "group_by: [alertname], group_wait: 1s}\n"
    )
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "stackfleet.cli.main",
        "--db-url",
        f"sqlite:///{tmp_path / 'serve.db'}",
        "serve",
        "--os-cloud",
        "nowhere",
        "--port",
        str(port),
        "--config",
        str(settings),
        "--bmc-map",
        str(bmc_map),
        "--infra-config",
        os.devnull,
    ]
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds)}
    env.pop("STACKFLEET_INFRA_CONFIG", None)
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not capture.posts and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        [(_path, body)] = capture.posts
        assert body["groupLabels"] == {"alertname": INLET}
        assert [a["labels"]["host"] for a in body["alerts"]] == ["cmp1"]
        listed = requests.get(f"http://127.0.0.1:{port}/v1/alerts", timeout=10).json()
        assert [(a["alertname"], a["labels"]["host"]) for a in listed["items"]] == [(INLET, "cmp1")]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert "Traceback" not in output, output
