"""The simulated Nova's management calls as openstacksdk makes them: rebuild, resize
(then confirm or revert, with Placement usage following), console output and remote
consoles, and their refusals worded as Nova words them."""

from __future__ import annotations

import openstack
import openstack.exceptions
import pytest

from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.simulator.services.nova import derived_usages, provider_usages

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer(preset("small")) as server:
        conn = openstack.connect(**server.connect_kwargs())
        region = server.state.regions["RegionOne"]
        images = [
            i["id"]
            for i in region.images.values()
            if i["status"] == "active" and i.get("visibility") == "public"
        ]
        flavors = {f["name"]: f["id"] for f in region.flavors.values()}
        yield conn, region, images, flavors
        conn.close()


def _server(conn, images, flavors, name):
    made = conn.compute.create_server(
        name=name, image_id=images[0], flavor_id=flavors["m1.tiny"], networks="none"
    )
    return conn.compute.wait_for_server(made, wait=10)


def _usage(region, server):
    node = server.hypervisor_hostname
    provider = next(u for u, rp in region.resource_providers.items() if rp.get("name") == node)
    usage = provider_usages(region, provider)
    return usage["VCPU"], usage["MEMORY_MB"], provider


def test_resize_holds_both_flavors_until_confirmed(sim):
    conn, region, images, flavors = sim
    server = _server(conn, images, flavors, "rs")
    vcpu, ram, _ = _usage(region, server)
    conn.compute.resize_server(server, flavors["m1.small"])
    resized = conn.compute.get_server(server.id)
    assert resized.status == "VERIFY_RESIZE"
    assert resized.flavor.name == "m1.small"
    held_vcpu, held_ram, _ = _usage(region, resized)
    assert (held_vcpu, held_ram) == (vcpu + 1, ram + 2048), "old and new flavor both held"
    conn.compute.confirm_server_resize(server)
    done = conn.compute.get_server(server.id)
    assert done.status == "ACTIVE"
    assert _usage(region, done)[:2] == (vcpu, ram - 512 + 2048), "only the new flavor left"
    conn.compute.delete_server(server.id)


def test_a_reverted_resize_restores_the_flavor(sim):
    conn, region, images, flavors = sim
    server = _server(conn, images, flavors, "rv")
    before = _usage(region, server)[:2]
    conn.compute.resize_server(server, flavors["m1.small"])
    conn.compute.revert_server_resize(server)
    back = conn.compute.get_server(server.id)
    assert back.status == "ACTIVE" and back.flavor.name == "m1.tiny"
    assert _usage(region, back)[:2] == before
    conn.compute.delete_server(server.id)


def test_resize_to_the_same_flavor_is_refused(sim):
    conn, region, images, flavors = sim
    server = _server(conn, images, flavors, "same")
    with pytest.raises(openstack.exceptions.BadRequestException, match="must change flavor"):
        conn.compute.resize_server(server, flavors["m1.tiny"])
    conn.compute.delete_server(server.id)


def test_rebuild_changes_the_image_and_keeps_the_server(sim):
    conn, region, images, flavors = sim
    if len(images) < 2:
        pytest.skip("the preset has one public image")
    server = _server(conn, images, flavors, "rb")
    conn.compute.rebuild_server(server, image=images[1])
    rebuilt = conn.compute.get_server(server.id)
    assert rebuilt.status == "ACTIVE" and rebuilt.image.id == images[1]
    with pytest.raises(openstack.exceptions.BadRequestException, match="could not be found"):
        conn.compute.rebuild_server(server, image="no-such-image")
    conn.compute.delete_server(server.id)


def test_console_output_and_remote_console(sim):
    conn, region, images, flavors = sim
    server = _server(conn, images, flavors, "cons")
    output = conn.compute.get_server_console_output(server, length=2)["output"]
    assert output.splitlines()[-1] == "cons login:" and len(output.splitlines()) == 2
    console = conn.compute.create_server_remote_console(server, protocol="vnc", type="novnc")
    assert console.url.startswith("http://") and "token" in console.url
    conn.compute.stop_server(server)
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.compute.create_server_remote_console(server, protocol="vnc", type="novnc")
    conn.compute.delete_server(server.id)


def test_derived_usage_counts_the_old_flavor_of_a_pending_resize(sim):
    conn, region, images, flavors = sim
    server = _server(conn, images, flavors, "derived")
    conn.compute.resize_server(server, flavors["m1.small"])
    provider = _usage(region, conn.compute.get_server(server.id))[2]
    derived = derived_usages(region, provider)
    assert derived["VCPU"] >= 2  # the server's new flavor and the held old one
    conn.compute.confirm_server_resize(server)
    conn.compute.delete_server(server.id)
