"""The simulated Zun (Container API), as a keystoneauth client calls it: registered in
the catalog only when enabled; create → Creating → Created (→ Running with run=true),
list/show by name, stop/start/reboot/rebuild, logs, delete with Zun's state rules and
error body."""

from __future__ import annotations

import time

import openstack
import pytest
from keystoneauth1.adapter import Adapter

from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

VERSION = "1.40"


@pytest.fixture
def zun():
    with SimulatorServer(preset("small"), zun=True) as server:
        conn = openstack.connect(**server.connect_kwargs())
        adapter = Adapter(
            session=conn.session, service_type="container", region_name="RegionOne",
            default_microversion=VERSION,
        )  # fmt: skip
        yield adapter, server.state.regions["RegionOne"], server
        conn.close()


def _call(adapter, method, path, **kwargs):
    return adapter.request(path, method, raise_exc=False, **kwargs)


def test_the_catalog_has_zun_only_when_enabled():
    with SimulatorServer(preset("small")) as server:
        conn = openstack.connect(**server.connect_kwargs())
        types = {
            e["type"] for e in conn.session.auth.get_access(conn.session).service_catalog.catalog
        }
        assert "container" not in types
        conn.close()
    with SimulatorServer(preset("small"), zun=True) as server:
        conn = openstack.connect(**server.connect_kwargs())
        catalog = conn.session.auth.get_access(conn.session).service_catalog.catalog
        zun = next(e for e in catalog if e["type"] == "container")
        assert zun["name"] == "zun" and zun["endpoints"][0]["url"].endswith("/container/v1")
        conn.close()


def test_create_with_run_goes_creating_created_running(zun):
    adapter, region, server = zun
    server.sim.action_delay = 0.1
    made = _call(adapter, "POST", "/containers?run=true", json={
        "name": "web-1", "image": "nginx", "command": ["nginx", "-g", "daemon off;"],
        "environment": {"MODE": "prod"}, "labels": {"app": "web"}, "cpu": 0.5, "memory": 256,
        "exposed_ports": {"80/tcp": {}},
    })  # fmt: skip
    assert made.status_code == 202, made.text
    body = made.json()
    assert body["status"] == "Creating" and body["task_state"] == "image_pulling"
    seen = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        status = region.containers[body["uuid"]]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.02)
    assert seen == ["Creating", "Created", "Running"]
    shown = _call(adapter, "GET", "/containers/web-1").json()
    assert shown["uuid"] == body["uuid"] and shown["ports"] == [80] and shown["host"]
    listed = _call(adapter, "GET", "/containers").json()["containers"]
    assert [c["name"] for c in listed] == ["web-1"]
    logs = _call(adapter, "GET", f"/containers/{body['uuid']}/logs").json()
    assert "starting nginx" in logs and "MODE=prod" in logs


def test_state_rules_and_error_body(zun):
    adapter, region, server = zun
    uuid_ = _call(adapter, "POST", "/containers", json={"name": "c", "image": "busybox"}).json()[
        "uuid"
    ]
    assert region.containers[uuid_]["status"] == "Created"
    refused = _call(adapter, "POST", f"/containers/{uuid_}/stop")
    assert refused.status_code == 409
    error = refused.json()["errors"][0]
    assert error["detail"] == f"Cannot stop container {uuid_} in Created state"
    assert error["title"] == "Conflict" and error["status"] == 409
    assert _call(adapter, "POST", f"/containers/{uuid_}/start").status_code == 202
    assert region.containers[uuid_]["status"] == "Running"
    running_delete = _call(adapter, "DELETE", f"/containers/{uuid_}")
    assert running_delete.status_code == 409
    assert _call(adapter, "POST", f"/containers/{uuid_}/reboot").status_code == 202
    assert _call(adapter, "POST", f"/containers/{uuid_}/rebuild?image=alpine").status_code == 202
    assert region.containers[uuid_]["image"] == "alpine"
    assert _call(adapter, "DELETE", f"/containers/{uuid_}?stop=true").status_code == 204
    assert uuid_ not in region.containers
    missing = _call(adapter, "GET", f"/containers/{uuid_}")
    assert missing.status_code == 404 and "could not be found" in missing.text


def test_a_glance_image_that_does_not_exist_ends_in_error(zun):
    adapter, region, server = zun
    made = _call(adapter, "POST", "/containers", json={
        "name": "g", "image": "no-such-image", "image_driver": "glance"})  # fmt: skip
    container = region.containers[made.json()["uuid"]]
    assert container["status"] == "Error"
    assert container["status_reason"] == "Image no-such-image could not be found."
    assert _call(adapter, "POST", "/containers", json={"name": "x"}).status_code == 400


def test_quotas_are_read_with_usages_and_enforced_on_create(zun):
    adapter, region, server = zun
    project = adapter.session.get_project_id()
    made = _call(adapter, "POST", "/containers", json={"image": "busybox", "cpu": 2})
    assert made.status_code == 202
    usages = _call(adapter, "GET", f"/quotas/{project}?usages=true").json()
    assert usages["containers"] == {"limit": 40, "in_use": 1}
    assert usages["cpu"] == {"limit": 20, "in_use": 2.0}
    assert usages["memory"] == {"limit": 51200, "in_use": 512}  # Zun's default memory
    assert _call(adapter, "GET", f"/quotas/{project}").json()["containers"] == 40
    put = _call(adapter, "PUT", f"/quotas/{project}", json={"cpu": 3})
    assert put.status_code == 200 and put.json()["cpu"] == 3
    over = _call(adapter, "POST", "/containers", json={"image": "busybox", "cpu": 2})
    assert over.status_code == 403
    assert over.json()["errors"][0]["detail"] == "Quota exceeded for resources: ['cpu']"
    assert len(region.containers) == 1
    assert _call(adapter, "DELETE", f"/quotas/{project}").status_code == 202
    assert _call(adapter, "GET", f"/quotas/{project}").json()["cpu"] == 20


def test_hosts_report_their_use_and_a_container_without_room_ends_in_error(zun):
    adapter, region, server = zun
    server.sim.zun_host_memory = 1024
    hosts = _call(adapter, "GET", "/hosts").json()["hosts"]
    assert hosts and {h["mem_total"] for h in hosts} == {1024}
    for _ in hosts:
        _call(adapter, "POST", "/containers", json={"image": "busybox", "memory": 1000})
    after = _call(adapter, "GET", "/hosts").json()["hosts"]
    assert all(h["mem_used"] == 1000 and h["total_containers"] == 1 for h in after)
    extra = _call(adapter, "POST", "/containers", json={"image": "busybox", "memory": 100})
    shown = _call(adapter, "GET", f"/containers/{extra.json()['uuid']}").json()
    assert shown["status"] == "Error"
    assert shown["status_reason"] == "There are not enough hosts available."
