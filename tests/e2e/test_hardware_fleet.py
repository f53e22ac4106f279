"""Hardware of a collected simulated cloud: every compute host and Redfish-driven Ironic
node gets a simulated BMC, and the readings land on the inventory's own resources (what
`stackfleet demo` does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stackfleet.cli.nodes import node_view
from stackfleet.engine.collect import collect
from stackfleet.engine.hardware import hardware_report, run_sweep, targets_for
from stackfleet.simulator.generator import preset
from stackfleet.simulator.redfish import RedfishSimulator, bmcs_for_cloud
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store.metrics import latest


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
    assert any("inlet_temperature_high" in f for f in view["hardware_findings"])
    assert any(s.startswith("nova-compute") for s in view["services"])
    assert view["instances"] == len(view["instance_names"]) > 0
