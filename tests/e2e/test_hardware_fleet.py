"""Hardware of a collected simulated cloud: every compute host and Redfish-driven Ironic
node gets a simulated BMC, and the readings land on the inventory's own resources (what
`stackfleet demo` does)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from support import run_cli

from stackfleet.api.app import create_app
from stackfleet.engine.collect import collect
from stackfleet.engine.hardware import hardware_report, run_sweep, targets_for
from stackfleet.engine.nodes import node_view
from stackfleet.simulator.generator import preset
from stackfleet.simulator.redfish import RedfishSimulator, bmcs_for_cloud
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store.metrics import Sample, latest, record_samples


@pytest.fixture
def swept_fleet(store, tmp_path) -> Iterator[tuple[object, RedfishSimulator]]:
    with SimulatorServer(preset("small")) as cloud:
        clouds = cloud.write_clouds_yaml(tmp_path / "clouds.yaml", "sim")
        collect(store, "sim", None, "sim-system", [str(clouds)])
        with RedfishSimulator(bmcs_for_cloud(cloud.state)) as bmcs:
            bmc_map = bmcs.write_bmc_map(tmp_path / "bmc-map.yaml")
            run_sweep(store, targets_for(store, bmc_map, include_ironic=False))
            yield store, bmcs


def test_readings_land_on_the_collected_hypervisors_and_nodes(swept_fleet):
    store, bmcs = swept_fleet
    hypervisors = {h["host"]: h["id"] for h in store.list_resources("hypervisor")[0]}
    nodes = {n["name"]: n["id"] for n in store.list_resources("baremetal_node")[0]}
    report = hardware_report(store)
    assert len(report) == len(bmcs.bmcs)
    for status, _findings in report:
        assert status.status == "ok", status.error
        assert (status.cloud, status.region) == ("sim", "RegionOne")
        expected = hypervisors.get(status.name) or nodes.get(status.name)
        assert status.resource_id == expected
        assert status.kind == ("hypervisor" if status.name in hypervisors else "baremetal_node")
    watts = latest(store, "hypervisor", ["hw_power_watts"])
    assert {rid for _c, _r, rid in watts} == set(hypervisors.values())


def test_node_view_combines_inventory_hardware_services_and_instances(swept_fleet):
    store, _bmcs = swept_fleet
    view = node_view(store, "cmp0001")
    assert view["kind"] == "hypervisor"
    assert view["hardware"]["status"] == "ok"
    # the generator's first host runs hot
    assert any("hardware/inlet-temperature-high" in f for f in view["hardware_findings"])
    assert any(s.startswith("nova-compute") for s in view["services"])
    assert view["instances"] == len(view["instance_names"]) > 0


def test_a_storage_host_lists_its_cinder_volume_service_named_after_the_backend(swept_fleet):
    store, _bmcs = swept_fleet
    # cinder-volume reports host "stor01@rbd-1": it runs on stor01
    view = node_view(store, "stor01")
    assert any(s.startswith("cinder-volume") for s in view["services"])
    assert view["storage_pools"]


def test_an_unreadable_bmc_shows_when_its_old_readings_were_taken(swept_fleet, tmp_path):
    store, bmcs = swept_fleet
    bmcs.bmc("cmp0002").set(unreachable=True)
    bmc_map = bmcs.write_bmc_map(tmp_path / "bmc-map.yaml")
    run_sweep(store, targets_for(store, bmc_map, include_ironic=False), timeout=1.0)
    hardware = node_view(store, "cmp0002")["hardware"]
    assert hardware["status"] in ("unreachable", "timeout")
    assert hardware["readings_at"] < hardware["checked_at"]
    assert "readings_at" not in node_view(store, "cmp0003")["hardware"]


def test_the_api_serves_the_node_view_and_names_an_unknown_host(swept_fleet):
    store, _bmcs = swept_fleet
    client = TestClient(create_app(store))
    answer = client.get("/v1/nodes/cmp0001")
    assert answer.status_code == 200
    body = answer.json()
    assert body["kind"] == "hypervisor" and body["hardware"]["status"] == "ok"
    assert body == node_view(store, "cmp0001")
    missing = client.get("/v1/nodes/no-such-host")
    assert missing.status_code == 404
    assert "no-such-host" in missing.json()["error"]["message"]


def test_a_hypervisors_real_use_shows_beside_its_allocation(swept_fleet):
    store, _bmcs = swept_fleet
    assert "usage" not in node_view(store, "cmp0001")  # no usage source yet
    hv = node_view(store, "cmp0001")
    now = time.time()
    record_samples(
        store,
        [
            Sample(hv["cloud"], hv["region"], "hypervisor", hv["id"], "cpu_util", now - 60, 10.0),
            Sample(hv["cloud"], hv["region"], "hypervisor", hv["id"], "cpu_util", now, 42.0),
        ],
    )
    usage = node_view(store, "cmp0001")["usage"]
    assert usage["cpu_util"] == 42.0
    assert "memory_used_mb" not in usage
    # the usage views take the compute host's short name too, as `nodes show` does
    answer = TestClient(create_app(store)).get("/v1/usage/hypervisors/cmp0001")
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == hv["id"]
    assert answer.json()["metrics"]["cpu_util"]["latest"] == 42.0


def test_cli_nodes_show_prints_a_compute_host_and_names_an_unknown_one(swept_fleet, tmp_path):
    _store, _bmcs = swept_fleet
    env = {"STACKFLEET_DB_URL": f"sqlite:///{tmp_path / 'stackfleet.db'}"}
    shown = run_cli("nodes", "show", "cmp0001", "-f", "json", env=env)
    assert shown.code == 0, shown.stderr
    assert shown.json()["kind"] == "hypervisor"
    assert shown.json()["hardware"]["status"] == "ok"
    missing = run_cli("nodes", "show", "no-such-host", env=env)
    assert missing.code != 0
    assert "no host 'no-such-host'" in missing.stderr
    assert "Traceback" not in missing.stderr
