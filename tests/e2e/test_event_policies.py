"""Event-driven refresh and event policies end to end: the simulated cloud publishes
its notifications on the real local RabbitMQ (a vhost of our own, deleted afterwards),
StackFleet listens through its pool, re-reads the resource through openstacksdk and
runs the event policies over it — findings open and resolve within seconds of a
change, with no collection pass in between."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
from fastapi.testclient import TestClient
from support import run_cli

from stackfleet.api.app import create_app
from stackfleet.core.errors import ConfigError
from stackfleet.engine.collect import collect
from stackfleet.engine.event_processor import EVENTS_TICK, EventProcessor, Targets
from stackfleet.engine.execute import Connections
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.scheduler import Job, Scheduler
from stackfleet.policy import load_text
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.notifications import (
    CloudNotifications,
    NotificationListener,
    delete_pool_queue,
)
from stackfleet.store import Store, open_store
from stackfleet.store.findings import list_findings

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
POLICIES = """
policies:
  - name: fip-created-unattached
    resource: floating_ip
    mode: {type: event, events: ["floatingip.*"]}
    filters:
      - port_id: absent
  - name: server-locked
    resource: server
    mode: {type: event, events: ["instance.lock", "instance.unlock", "instance.delete.end"]}
    filters:
      - locked: true
"""


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def transport_url() -> Iterator[str]:
    """A vhost of our own on the local RabbitMQ (guest may use it), deleted afterwards."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed (RabbitMQ on 127.0.0.1:5672 is needed)")
    vhost = f"sfev-e2e-{uuid.uuid4().hex[:8]}"
    try:
        rabbitmqctl("add_vhost", vhost)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"RabbitMQ is not usable here: {exc.stderr.decode(errors='replace')}")
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"rabbit://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


@dataclass
class Wired:
    server: SimulatorServer
    store: Store
    processor: EventProcessor
    conn: Any
    clouds: Path
    store_url: str

    def findings(self, policy: str, status: str = "open") -> dict[str, dict[str, Any]]:
        rows, _ = list_findings(self.store, status=status, policy=policy)
        return {r["resource_id"]: r for r in rows}

    def passes(self) -> int:
        return len(self.store.list_passes(limit=1000))


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


@pytest.fixture(scope="module")
def wired(transport_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    """A small simulated cloud publishing notifications, collected once, with
    StackFleet listening to it and processing events (dry-run)."""
    workdir = tmp_path_factory.mktemp("events")
    with SimulatorServer(preset("small"), notify_url=transport_url) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        store_url = f"sqlite:///{workdir / 'store.db'}"
        store = open_store(store_url)
        collect(store, CLOUD, config_files=[str(clouds)])
        policies = load_text(POLICIES)
        processor = EventProcessor(
            store,
            PolicyRunner(store, connections=Connections([str(clouds)])),
            policies,
            Targets(config_files=[str(clouds)]),
            debounce=0.5,
            max_delay=3.0,
        )
        listener = NotificationListener(
            CLOUD, CloudNotifications(transport_url=transport_url), processor.receive
        )
        jobs = Scheduler([Job("events", processor.run_due, EVENTS_TICK)])
        jobs.start()
        listener.start()
        conn = openstack.connect(**server.connect_kwargs())
        try:
            yield Wired(server, store, processor, conn, clouds, store_url)
        finally:
            listener.stop()
            jobs.stop()
            conn.close()
            store.close()


def external_network(wired: Wired) -> str:
    region = wired.server.state.regions["RegionOne"]
    return next(n["id"] for n in region.networks.values() if n.get("router:external"))


def test_floating_ip_created_unattached_opens_a_finding_within_seconds(wired: Wired) -> None:
    passes = wired.passes()
    started = time.monotonic()
    fip = wired.conn.network.create_ip(floating_network_id=external_network(wired))
    finding = wait_for(lambda: wired.findings("fip-created-unattached").get(fip.id))
    assert time.monotonic() - started < 10
    assert finding["kind"] == "floating_ip" and finding["region"] == "RegionOne"
    # the store has the new floating IP, from the event alone
    assert wired.store.get_resource("floating_ip", fip.id)["deleted_at"] is None
    assert wired.passes() == passes


def test_deleting_the_floating_ip_resolves_its_finding(wired: Wired) -> None:
    fip = wired.conn.network.create_ip(floating_network_id=external_network(wired))
    wait_for(lambda: wired.findings("fip-created-unattached").get(fip.id))
    wired.conn.network.delete_ip(fip.id)
    resolved = wait_for(lambda: wired.findings("fip-created-unattached", "resolved").get(fip.id))
    assert resolved["resolved_at"]
    assert wired.store.get_resource("floating_ip", fip.id)["deleted_at"] is not None


def test_an_event_policy_leaves_other_resources_findings_alone(wired: Wired) -> None:
    """The generated fleet has unattached floating IPs no event was about: an event
    run opens no finding for them (only a periodic run over the whole kind would)."""
    region = wired.server.state.regions["RegionOne"]
    seeded = set(wired.server.state.ground_truth["RegionOne"]["unattached_floating_ips"])
    assert seeded and seeded <= set(region.floatingips)
    fip = wired.conn.network.create_ip(floating_network_id=external_network(wired))
    wait_for(lambda: wired.findings("fip-created-unattached").get(fip.id))
    assert not seeded & set(wired.findings("fip-created-unattached"))


def test_locking_a_server_opens_and_unlocking_resolves(wired: Wired) -> None:
    server_id = next(
        s["id"]
        for s in wired.server.state.regions["RegionOne"].servers.values()
        if s.get("status") == "ACTIVE" and not s.get("locked")
    )
    wired.conn.compute.lock_server(server_id)
    wait_for(lambda: wired.findings("server-locked").get(server_id))
    wired.conn.compute.unlock_server(server_id)
    wait_for(lambda: wired.findings("server-locked", "resolved").get(server_id))
    assert server_id not in wired.findings("server-locked")


def test_a_burst_of_50_events_for_one_server_is_re_read_a_few_times(wired: Wired) -> None:
    server_id = [
        s["id"]
        for s in wired.server.state.regions["RegionOne"].servers.values()
        if s.get("status") == "ACTIVE" and not s.get("locked")
    ][-1]
    assert wired.processor.wait_idle()
    before = wired.processor.stats["refreshes"]
    received = wired.processor.stats["notifications"]
    for _ in range(25):
        wired.conn.compute.lock_server(server_id)
        wired.conn.compute.unlock_server(server_id)
    wait_for(lambda: wired.processor.stats["notifications"] - received >= 50)
    assert wired.processor.wait_idle()
    refreshes = wired.processor.stats["refreshes"] - before
    assert 1 <= refreshes <= 5
    # the last state (unlocked) is what the store has
    assert wired.store.get_resource("server", server_id)["locked"] is False


def test_a_notification_pushed_to_the_api_refreshes_the_resource(wired: Wired) -> None:
    """POST /v1/events, as a cloud without RabbitMQ access would push: the change is
    made behind the API's back (no notification), then announced by the push."""
    region = wired.server.state.regions["RegionOne"]
    fip = next(f for f in region.floatingips.values() if f.get("port_id"))
    with wired.server.state.lock:
        fip.update(port_id=None, fixed_ip_address=None, status="DOWN")
    app = create_app(wired.store)
    app.state.events = wired.processor
    with TestClient(app) as client:
        answer = client.post(
            "/v1/events",
            params={"cloud": CLOUD},
            json={
                "event_type": "floatingip.update.end",
                "publisher_id": "network.webhook",
                "payload": {"floatingip": {"id": fip["id"], "port_id": None}},
            },
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["kind"] == "floating_ip"
        wait_for(lambda: wired.findings("fip-created-unattached").get(fip["id"]))
        wrong = client.post("/v1/events", params={"cloud": CLOUD}, json={"payload": {}})
        assert wrong.status_code == 400
        assert wrong.json()["error"]["field"] == "event_type"
        status = client.get("/v1/events").json()
        assert status["counters"]["refreshes"] >= 1
        assert any(o["id"] == fip["id"] and o["refresh"] == "changed" for o in status["recent"]), (
            status["recent"][:3]
        )


def test_policy_run_event_re_reads_one_resource_from_the_cli(wired: Wired, tmp_path: Path) -> None:
    region = wired.server.state.regions["RegionOne"]
    fip = [f for f in region.floatingips.values() if f.get("port_id")][-1]
    with wired.server.state.lock:
        fip.update(port_id=None, fixed_ip_address=None, status="DOWN")
    policy_file = tmp_path / "events.yaml"
    policy_file.write_text(POLICIES)
    (tmp_path / "settings.yaml").write_text("{}\n")
    result = run_cli(
        "policy",
        "run",
        str(policy_file),
        "--event",
        "floatingip.update.end",
        "--resource",
        fip["id"],
        "-f",
        "json",
        env={
            "STACKFLEET_DB_URL": wired.store_url,
            "OS_CLIENT_CONFIG_FILE": str(wired.clouds),
            "OS_CLOUD": CLOUD,
            "STACKFLEET_CONFIG": str(tmp_path / "settings.yaml"),
        },
    )
    assert result.code == 0, result.stderr
    [outcome] = result.json()
    assert outcome["refresh"] == "changed"
    assert [p["policy"] for p in outcome["policies"]] == ["fip-created-unattached"]
    assert outcome["policies"][0]["findings_opened"] == 1
    assert fip["id"] in wired.findings("fip-created-unattached")


def test_policy_run_event_names_an_event_no_policy_listens_to(wired: Wired, tmp_path: Path) -> None:
    policy_file = tmp_path / "events.yaml"
    policy_file.write_text(POLICIES)
    result = run_cli(
        "policy",
        "run",
        str(policy_file),
        "--event",
        "volume.delete.end",
        "--resource",
        "0d3c8b2e-0000-4000-8000-000000000000",
        env={"STACKFLEET_DB_URL": wired.store_url, "OS_CLOUD": CLOUD},
    )
    assert result.code != 0
    assert "no enabled event policy on volume" in result.stderr


def test_events_listen_prints_notifications_as_they_arrive(
    wired: Wired, transport_url: str
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stackfleet.cli.main",
            "events",
            "listen",
            "--transport-url",
            transport_url,
            "--count",
            "1",
            "--timeout",
            "60",
            "-f",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "STACKFLEET_CONFIG": os.devnull},
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "listening on" in first, first + proc.stderr.read()
        fip = wired.conn.network.create_ip(floating_network_id=external_network(wired))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    event = json.loads(out.splitlines()[0])
    assert event["event_type"] == "floatingip.create.end"
    assert (event["kind"], event["id"]) == ("floating_ip", fip.id)
    assert "guest:guest" not in err


def test_a_listener_with_a_wrong_password_fails_at_once_naming_the_url(
    transport_url: str,
) -> None:
    wrong = transport_url.replace("guest:guest@", "guest:not-the-password@")
    listener = NotificationListener(
        CLOUD, CloudNotifications(transport_url=wrong), lambda notification: None
    )
    with pytest.raises(ConfigError) as caught:
        listener.start()
    message = str(caught.value)
    assert "ACCESS_REFUSED" in message and "guest:***@127.0.0.1:5672" in message
    assert "not-the-password" not in message


def test_serve_with_notifications_opens_findings_from_events(
    wired: Wired, transport_url: str, tmp_path: Path
) -> None:
    """`stackfleet serve --notifications`: the daemon's first pass, then a floating IP
    created through the API shows as a finding over the daemon's REST API."""
    policy_file = tmp_path / "events.yaml"
    policy_file.write_text(POLICIES)
    settings = tmp_path / "settings.yaml"
    # a pool of its own: the module's listener consumes from the default pool
    settings.write_text(
        "notifications:\n"
        "  pool: stackfleet-serve-test\n"
        "  debounce: 0.5\n"
        f"  clouds:\n    {CLOUD}:\n      transport_url: {transport_url}\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "STACKFLEET_DB_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "OS_CLIENT_CONFIG_FILE": str(wired.clouds),
        "STACKFLEET_CONFIG": str(settings),
        "STACKFLEET_INFRA_CONFIG": str(tmp_path / "no-infra.yaml"),
    }
    (tmp_path / "no-infra.yaml").write_text("{}\n")
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stackfleet.cli.main",
            "serve",
            "--os-cloud",
            CLOUD,
            "--policy",
            str(policy_file),
            "--notifications",
            "--port",
            str(port),
            "--interval",
            "3600",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def first_pass_done() -> bool:
            try:
                passes = httpx.get(f"{base}/v1/passes").json()["passes"]
            except httpx.HTTPError:
                return False
            return bool(passes) and passes[0]["status"] == "complete"

        wait_for(first_pass_done, 60)
        fip = wired.conn.network.create_ip(floating_network_id=external_network(wired))

        def finding() -> list[dict[str, Any]]:
            page = httpx.get(
                f"{base}/v1/findings", params={"policy": "fip-created-unattached"}
            ).json()
            return [f for f in page["items"] if f["resource_id"] == fip.id]

        wait_for(finding, 15)
        assert httpx.get(f"{base}/v1/events").json()["counters"]["refreshes"] >= 1
    finally:
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        delete_pool_queue(transport_url, "stackfleet-serve-test")


def test_the_simulator_announces_a_power_off_as_nova_does(wired: Wired, transport_url: str) -> None:
    """update, power_off.start, update, power_off.end (Nova with notify_on_state_change
    = vm_and_task_state, as on the testbed), in Nova's versioned format."""
    got: list[Any] = []
    listener = NotificationListener(
        CLOUD, CloudNotifications(transport_url=transport_url), got.append, "sfev-probe"
    )
    listener.start()
    try:
        server_id = next(
            s["id"]
            for s in wired.server.state.regions["RegionOne"].servers.values()
            if s.get("status") == "ACTIVE" and not s.get("locked")
        )
        wired.conn.compute.stop_server(server_id)

        def about_it() -> list[Any]:
            mine = [n for n in got if (e := n.resource_event()) and e.resource_id == server_id]
            return mine if len(mine) >= 4 else []

        notifications = wait_for(about_it)
    finally:
        listener.stop()
        delete_pool_queue(transport_url, "sfev-probe")
    assert [n.event_type for n in notifications] == [
        "instance.update",
        "instance.power_off.start",
        "instance.update",
        "instance.power_off.end",
    ]
    end = notifications[-1]
    assert end.publisher_id.startswith("nova-compute:")
    assert end.payload["nova_object.name"] == "InstanceActionPayload"
    assert end.payload["nova_object.data"]["state"] == "stopped"


def test_deleting_a_locked_server_resolves_its_finding(wired: Wired) -> None:
    server_id = [
        s["id"]
        for s in wired.server.state.regions["RegionOne"].servers.values()
        if s.get("status") == "ACTIVE" and not s.get("locked")
    ][0]
    wired.conn.compute.lock_server(server_id)
    wait_for(lambda: wired.findings("server-locked").get(server_id))
    wired.conn.compute.delete_server(server_id)
    wait_for(lambda: wired.findings("server-locked", "resolved").get(server_id))
    assert wired.store.get_resource("server", server_id)["deleted_at"] is not None
