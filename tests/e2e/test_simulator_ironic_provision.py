"""The simulated Ironic's provisioning calls, as openstacksdk makes them: allocations
(node reserved, or Ironic's error), node PATCH, deploy (needs an image; deploying →
active) and undeploy (deleting → cleaning → available, the allocation destroyed)."""

from __future__ import annotations

import time

import openstack
import openstack.exceptions
import pytest

from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture
def sim():
    with SimulatorServer(preset("small")) as server:
        conn = openstack.connect(**server.connect_kwargs(system_scope=True))
        conn.baremetal.default_microversion = "1.78"
        region = server.state.regions["RegionOne"]
        for node in region.nodes.values():
            if node["provision_state"] == "available":
                conn.baremetal.unset_node_maintenance(node["uuid"])
        yield conn, region, server
        conn.close()


def _states(region, node_id, seconds):
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = region.nodes[node_id]["provision_state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.02)
    return seen


def test_an_allocation_reserves_an_available_node(sim):
    conn, region, server = sim
    made = conn.baremetal.create_allocation(
        resource_class="baremetal.general", name="a1", extra={"k": "v"}
    )
    allocation = conn.baremetal.get_allocation(made.id)  # allocated at once (no delay)
    assert allocation.state == "active" and allocation.node_id
    node = region.nodes[allocation.node_id]
    assert node["provision_state"] == "available"
    assert node["instance_uuid"] == allocation.id == node["allocation_uuid"]
    again = conn.baremetal.post(
        "/allocations", json={"resource_class": "baremetal.general", "name": "a1"},
        microversion="1.78", raise_exc=False, retriable_status_codes=[],
    )  # fmt: skip
    assert again.status_code == 409 and "already exists" in again.text


def test_an_allocation_nothing_matches_ends_in_error_with_ironics_message(sim):
    conn, region, server = sim
    made = conn.baremetal.create_allocation(resource_class="baremetal.gpu")
    allocation = conn.baremetal.get_allocation(made.id)
    assert allocation.state == "error"
    assert allocation.last_error == (
        f"Failed to process allocation {made.id}: no available nodes match the resource "
        "class baremetal.gpu."
    )
    traits = conn.baremetal.create_allocation(
        resource_class="baremetal.general", traits=["CUSTOM_GPU"]
    )
    assert "no suitable nodes have the requested traits CUSTOM_GPU" in str(
        conn.baremetal.get_allocation(traits.id).last_error
    )


def test_deploy_needs_an_image_and_goes_deploying_then_active(sim):
    conn, region, server = sim
    made = conn.baremetal.create_allocation(resource_class="baremetal.general")
    allocation = conn.baremetal.get_allocation(made.id)
    node_id = allocation.node_id
    with pytest.raises(openstack.exceptions.BadRequestException, match="image_source"):
        conn.baremetal.set_node_provision_state(node_id, "active")
    conn.baremetal.patch_node(
        node_id, [{"op": "add", "path": "/instance_info/image_source", "value": "img-1"}]
    )
    assert region.nodes[node_id]["instance_info"]["image_source"] == "img-1"
    server.sim.action_delay = 0.2
    conn.baremetal.set_node_provision_state(node_id, "active")
    assert _states(region, node_id, 0.5) == ["deploying", "active"]
    assert region.nodes[node_id]["power_state"] == "power on"
    refused = conn.baremetal.delete(
        f"/allocations/{allocation.id}", microversion="1.78", raise_exc=False,
        retriable_status_codes=[],
    )  # fmt: skip
    assert refused.status_code == 409 and "because the node is active" in refused.text
    conn.baremetal.set_node_provision_state(node_id, "deleted")
    assert _states(region, node_id, 0.8) == ["deleting", "cleaning", "available"]
    node = region.nodes[node_id]
    assert node["instance_uuid"] is None and node["instance_info"] == {}
    assert allocation.id not in region.allocations, "the teardown destroyed the allocation"


def test_patch_refuses_read_only_fields(sim):
    conn, region, server = sim
    node_id = next(iter(region.nodes))
    with pytest.raises(openstack.exceptions.BadRequestException, match="internal attribute"):
        conn.baremetal.patch_node(
            node_id, [{"op": "replace", "path": "/provision_state", "value": "active"}]
        )
