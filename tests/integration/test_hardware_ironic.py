"""Hardware of real Ironic nodes: the testbed's Ironic (redfish hardware type) drives
sushy-tools' fake systems; StackFleet finds the BMCs in the nodes' driver_info, reads
them and records the readings on the nodes. Needs `testbed/up` only: the test makes the
redfish node it reads itself (the one `testbed/smoke` makes, when smoke has not run)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from testbed_fleet import Testbed

from stackfleet.engine.collect import collect
from stackfleet.engine.hardware import resolve_targets, run_sweep
from stackfleet.sources.redfish import parse_bmc_map
from stackfleet.store.metrics import latest

pytestmark = pytest.mark.integration

# the same node testbed/smoke makes: either may run first, neither makes a second one
NODE = "sftb-redfish-1"


@pytest.fixture(scope="module")
def redfish_node(testbed: Testbed) -> Iterator[dict[str, Any]]:
    """An Ironic node of the redfish hardware type on the testbed's sushy-emulator,
    manageable and powered on; deleted afterwards when this fixture made it."""
    redfish = testbed.info["redfish"]
    system_id = f"/redfish/v1/Systems/{redfish['systems'][0]['uuid']}"
    conn = testbed.connect(testbed.system_cloud)
    baremetal = conn.baremetal
    try:
        node = baremetal.find_node(NODE, ignore_missing=True)
        created = node is None
        if created:
            node = baremetal.create_node(
                name=NODE,
                driver="redfish",
                boot_interface="redfish-virtual-media",
                deploy_interface="direct",
                management_interface="redfish",
                power_interface="redfish",
                resource_class="baremetal",
                provision_state="enroll",
                driver_info={
                    "redfish_address": redfish["address"],
                    "redfish_system_id": system_id,
                    "redfish_username": "admin",
                    "redfish_password": "password",
                },
            )
        if node.provision_state == "enroll":
            # Ironic reads the BMC (power state) on the way to manageable
            node = baremetal.set_node_provision_state(node, "manage", wait=True, timeout=120)
        assert node.provision_state in ("manageable", "available"), node.provision_state
        if node.power_state != "power on":
            baremetal.set_node_power_state(node, "power on", wait=True, timeout=60)
        yield {"id": node.id, "address": redfish["address"], "system_id": system_id}
        if created:
            baremetal.delete_node(node, ignore_missing=True)
    finally:
        conn.close()


def test_ironic_redfish_nodes_are_swept_from_their_driver_info(testbed, redfish_node, store):
    collect(
        store,
        testbed.admin_cloud,
        None,
        testbed.system_cloud,
        [str(testbed.clouds_yaml)],
        kinds=["baremetal_node"],
    )
    nodes = {n["name"]: n for n in store.list_resources("baremetal_node")[0]}
    assert NODE in nodes, f"the pass did not list {NODE}: {sorted(nodes)}"
    # sushy-tools here has no authentication: any credentials do, but some must be given
    bmc_map = parse_bmc_map("ironic:\n  username: stackfleet\n  password: unused\n", "map")
    targets = [t for t in resolve_targets(store, bmc_map) if t.name == NODE]
    [target] = targets
    assert target.address.startswith("http://127.0.0.1:")  # the emulator, on loopback
    assert target.source.startswith("Ironic node")
    assert target.problem is None  # loopback http: the shared credentials may go there
    [status] = run_sweep(store, targets).statuses
    assert status.status == "ok", status.error
    assert (status.kind, status.resource_id) == ("baremetal_node", redfish_node["id"])
    system = requests.get(f"{target.address}{target.system_id}", timeout=10).json()
    assert status.reading.power_state == system["PowerState"]
    assert status.reading.inlet_celsius is not None
    assert status.reading.power_watts is None  # sushy-tools has no Power resource
    samples = latest(store, "baremetal_node", ["hw_up", "hw_power_on"])
    values = samples[(status.cloud, status.region, status.resource_id)]
    assert values["hw_up"][1] == 1.0
    assert values["hw_power_on"][1] == float(system["PowerState"] == "On")
