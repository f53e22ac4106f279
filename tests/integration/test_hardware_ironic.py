"""Hardware of real Ironic nodes: the testbed's Ironic (redfish hardware type) drives
sushy-tools' fake systems; StackFleet finds the BMCs in the nodes' driver_info, reads
them and records the readings on the nodes. Needs `testbed/up` and `testbed/smoke`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from stackfleet.engine.collect import collect
from stackfleet.engine.hardware import resolve_targets, run_sweep
from stackfleet.sources.redfish import parse_bmc_map
from stackfleet.store.metrics import latest

pytestmark = pytest.mark.integration

HOME = Path(os.environ.get("STACKFLEET_TESTBED_HOME", Path.home() / ".cache/stackfleet-testbed"))


@pytest.fixture(scope="module")
def testbed() -> dict:
    info = HOME / "testbed.json"
    if not info.exists():
        pytest.skip("no testbed (run testbed/up and testbed/smoke)")
    return json.loads(info.read_text())


def test_ironic_redfish_nodes_are_swept_from_their_driver_info(testbed, store):
    clouds = testbed["clouds"]
    collect(
        store,
        clouds["admin"],
        None,
        clouds["system"],
        [testbed["clouds_yaml"]],
        kinds=["baremetal_node"],
    )
    nodes = {n["name"]: n for n in store.list_resources("baremetal_node")[0]}
    if "sftb-redfish-1" not in nodes:
        pytest.skip("no sftb-redfish-1 node (run testbed/smoke)")
    # sushy-tools here has no authentication: any credentials do, but some must be given
    bmc_map = parse_bmc_map("ironic:\n  username: stackfleet\n  password: unused\n", "map")
    targets = [t for t in resolve_targets(store, bmc_map) if t.name == "sftb-redfish-1"]
    [target] = targets
    assert target.address.startswith("http://127.0.0.1:")  # the emulator, on loopback
    assert target.source.startswith("Ironic node")
    [status] = run_sweep(store, targets).statuses
    assert status.status == "ok", status.error
    assert (status.kind, status.resource_id) == ("baremetal_node", nodes["sftb-redfish-1"]["id"])
    system = requests.get(f"{target.address}{target.system_id}", timeout=10).json()
    assert status.reading.power_state == system["PowerState"]
    assert status.reading.inlet_celsius is not None
    assert status.reading.power_watts is None  # sushy-tools has no Power resource
    samples = latest(store, "baremetal_node", ["hw_up", "hw_power_on"])
    values = samples[(status.cloud, status.region, status.resource_id)]
    assert values["hw_up"][1] == 1.0
    assert values["hw_power_on"][1] == float(system["PowerState"] == "On")
