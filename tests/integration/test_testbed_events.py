"""Event policies on the real testbed: Nova's own versioned notifications (on the
testbed's notifications vhost) make StackFleet re-read a server it has never listed
and open a finding for it, and the deletion resolves it — with no collection pass in
between. Everything created is named `sfev-` and deleted however the test ends; the
listener's pool queue is deleted too."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testbed_fleet import Testbed, collect_testbed, wait_until

from stackfleet.engine.event_processor import EVENTS_TICK, EventProcessor, Targets
from stackfleet.engine.execute import Connections
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.scheduler import Job, Scheduler
from stackfleet.policy import load_text
from stackfleet.sources.notifications import (
    CloudNotifications,
    NotificationListener,
    delete_pool_queue,
)
from stackfleet.store import Store, open_store
from stackfleet.store.findings import list_findings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

PREFIX = "sfev-"
POLICY = """
policies:
  - name: server-without-owner
    resource: server
    mode: {type: event, events: [instance.create.end, instance.delete.end]}
    filters:
      - metadata.owner: absent
"""


def findings(store: Store, status: str) -> dict[str, dict[str, Any]]:
    rows, _ = list_findings(store, status=status, policy="server-without-owner")
    return {r["resource_id"]: r for r in rows}


@pytest.fixture(scope="module")
def boot(testbed: Testbed) -> Iterator[dict[str, str]]:
    """A flavor and a network of our own to boot a server with (the shared `sfit-`
    fleet may be rebuilt by another test session meanwhile), deleted afterwards."""
    conn = testbed.connect(testbed.admin_cloud)
    suffix = uuid.uuid4().hex[:6]
    image = conn.image.find_image(str(testbed.info["image"]), ignore_missing=False)
    flavor = conn.compute.create_flavor(name=f"{PREFIX}flavor-{suffix}", vcpus=1, ram=64, disk=1)
    network = conn.network.create_network(name=f"{PREFIX}net-{suffix}")
    try:
        conn.network.create_subnet(
            name=f"{PREFIX}subnet-{suffix}",
            network_id=network.id,
            ip_version=4,
            cidr="10.78.0.0/24",
        )
        yield {"image": image.id, "flavor": flavor.id, "network": network.id}
    finally:
        for port in conn.network.ports(network_id=network.id):
            conn.network.delete_port(port, ignore_missing=True)
        conn.network.delete_network(network, ignore_missing=True)
        conn.compute.delete_flavor(flavor, ignore_missing=True)
        conn.close()


@pytest.fixture(scope="module")
def listening(
    testbed: Testbed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, EventProcessor]]:
    """A store with one pass over the testbed, and StackFleet listening to the
    testbed's notifications through a pool of its own."""
    store = open_store(f"sqlite:///{Path(tmp_path_factory.mktemp('events')) / 'store.db'}")
    collect_testbed(store, testbed, kinds=["server", "port", "floating_ip", "project"])
    config_files = [str(testbed.clouds_yaml)]
    processor = EventProcessor(
        store,
        PolicyRunner(store, connections=Connections(config_files)),
        load_text(POLICY),
        Targets(testbed.system_cloud, config_files),
        debounce=1.0,
    )
    url = str(testbed.info["notifications_transport_url"])
    pool = f"{PREFIX}pool-{uuid.uuid4().hex[:8]}"
    listener = NotificationListener(
        testbed.admin_cloud,
        CloudNotifications(transport_url=url, region=str(testbed.info["region"])),
        processor.receive,
        pool,
    )
    jobs = Scheduler([Job("events", processor.run_due, EVENTS_TICK)])
    jobs.start()
    listener.start()
    try:
        yield store, processor
    finally:
        listener.stop()
        jobs.stop()
        delete_pool_queue(url, pool)
        store.close()


def test_a_server_created_without_owner_opens_a_finding_from_novas_notification(
    testbed: Testbed, boot: dict[str, str], listening: tuple[Store, EventProcessor]
) -> None:
    store, processor = listening
    passes = len(store.list_passes(limit=1000))
    conn = testbed.connect(testbed.admin_cloud)
    name = f"{PREFIX}server-{uuid.uuid4().hex[:6]}"
    server = conn.compute.create_server(
        name=name,
        flavor_id=boot["flavor"],
        image_id=boot["image"],
        networks=[{"uuid": boot["network"]}],
    )
    try:
        conn.compute.wait_for_server(server, status="ACTIVE", wait=180)
        active_at = time.monotonic()
        finding = wait_until(
            "finding for the new server", lambda: findings(store, "open").get(server.id), 60
        )
        assert time.monotonic() - active_at < 30
        assert finding["resource_name"] == name
        assert store.get_resource("server", server.id)["status"] == "ACTIVE"
        assert "instance.create.end" in {
            t for outcome in processor.recent for t in outcome.event_types
        }

        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=120)
        wait_until("finding resolved", lambda: findings(store, "resolved").get(server.id), 60)
        assert store.get_resource("server", server.id)["deleted_at"] is not None
        assert len(store.list_passes(limit=1000)) == passes
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
        conn.compute.wait_for_delete(server, wait=120)
