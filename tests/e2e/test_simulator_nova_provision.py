"""The simulated Nova's provisioning calls, as openstacksdk makes them: server create
(labels, groups, volumes), its refusals worded as Nova words them, key pairs."""

from __future__ import annotations

import openstack
import openstack.exceptions
import pytest

from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer(preset("small")) as server:
        conn = openstack.connect(**server.connect_kwargs())
        region = server.state.regions["RegionOne"]
        image = next(
            i["id"]
            for i in region.images.values()
            if i["status"] == "active" and i.get("visibility") == "public"
        )
        network = next(n["id"] for n in region.networks.values() if n["name"] == "alpha-01-net")
        flavor = next(f["id"] for f in region.flavors.values() if f["name"] == "m1.tiny")
        yield conn, region, image, network, flavor
        conn.close()


def test_a_created_server_goes_active_with_its_labels_ports_and_group(sim):
    conn, region, image, network, flavor = sim
    group = conn.compute.create_server_group(name="g", policy="anti-affinity")
    made = conn.compute.create_server(
        name="x", image_id=image, flavor_id=flavor, networks=[{"uuid": network}],
        metadata={"k": "v"}, tags=["t"], key_name="admin-key",
        scheduler_hints={"group": group.id},
    )  # fmt: skip
    server = conn.compute.get_server(made.id)
    assert server.status == "ACTIVE" and server.compute_host
    assert server.metadata == {"k": "v"} and server.tags == ["t"]
    assert [p for p in region.ports.values() if p["device_id"] == made.id]
    assert made.id in region.server_groups[group.id]["members"]
    assert [s.name for s in conn.compute.servers(tags="t")] == ["x"]
    conn.compute.delete_server(made.id)
    assert made.id not in region.servers
    assert not [p for p in region.ports.values() if p["device_id"] == made.id]


def test_a_boot_volume_with_delete_on_termination_goes_with_the_server(sim):
    conn, region, image, network, flavor = sim
    made = conn.compute.create_server(
        name="bfv", flavor_id=flavor, networks="none",
        block_device_mapping=[{
            "boot_index": 0, "uuid": image, "source_type": "image",
            "destination_type": "volume", "volume_size": 5, "delete_on_termination": True,
        }],
    )  # fmt: skip
    volume_ids = [v["id"] for v in region.servers[made.id]["os-extended-volumes:volumes_attached"]]
    assert len(volume_ids) == 1 and region.volumes[volume_ids[0]]["status"] == "in-use"
    conn.compute.delete_server(made.id)
    assert volume_ids[0] not in region.volumes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flavor_id": "nope"}, "Invalid flavorRef provided."),
        ({"image_id": "nope"}, "Can not find requested image"),
        ({"key_name": "nope"}, "Invalid key_name provided."),
        ({"networks": [{"uuid": "nope"}]}, "Network nope could not be found."),
        ({"availability_zone": "nope"}, "The requested availability zone is not available"),
    ],
)
def test_a_bad_create_is_refused_with_novas_400(sim, change, message):
    conn, _region, image, network, flavor = sim
    attrs = {"name": "bad", "image_id": image, "flavor_id": flavor, "networks": [{"uuid": network}]}
    with pytest.raises(openstack.exceptions.BadRequestException, match=message):
        conn.compute.create_server(**{**attrs, **change})


def test_a_create_over_quota_is_refused_with_403(sim):
    conn, region, image, network, flavor = sim
    project = conn.current_project_id
    region.quotas.setdefault("compute", {})[project] = {"instances": 0}
    try:
        with pytest.raises(
            openstack.exceptions.ForbiddenException, match="Quota exceeded for instances"
        ):
            conn.compute.create_server(
                name="q", image_id=image, flavor_id=flavor, networks=[{"uuid": network}]
            )
    finally:
        del region.quotas["compute"][project]


def test_key_pairs_are_the_callers(sim):
    conn, _region, *_ = sim
    assert [k.name for k in conn.compute.keypairs()] == ["admin-key"]
    made = conn.compute.create_keypair(name="mine")
    assert made.fingerprint and conn.compute.get_keypair("mine").name == "mine"
    conn.compute.delete_keypair("mine")
    assert [k.name for k in conn.compute.keypairs()] == ["admin-key"]
