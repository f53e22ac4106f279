"""The resource model: every kind builds records from API-shaped objects."""

from __future__ import annotations

from stackfleet.model import KINDS, kind


def test_server_record_reads_nova_extended_attributes():
    server = {
        "id": "s1",
        "name": "web-1",
        "status": "SHUTOFF",
        "tenant_id": "p1",
        "OS-EXT-STS:power_state": 4,
        "OS-EXT-STS:task_state": None,
        "OS-EXT-SRV-ATTR:host": "cmp1",
        "OS-EXT-SRV-ATTR:hypervisor_hostname": "cmp1.example",
        "flavor": {"original_name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20},
        "image": {"id": "img1"},
        "security_groups": [{"name": "default"}, {"name": "web"}],
        "os-extended-volumes:volumes_attached": [{"id": "v1"}],
        "addresses": {"net": [{"addr": "10.0.0.5"}]},
        "tags": ["a"],
    }
    record = kind("server").record_builder()(server)
    assert record["project_id"] == "p1"
    assert record["power_state"] == "SHUTDOWN"
    assert record["host"] == "cmp1"
    assert record["flavor_name"] == "m1.small" and record["vcpus"] == 1
    assert record["image_id"] == "img1"
    assert record["security_groups"] == ["default", "web"]
    assert record["volume_ids"] == ["v1"]
    assert record["addresses"] == ["10.0.0.5"]


def test_boot_from_volume_server_has_no_image():
    # Nova answers "image": "" for a server booted from a volume
    record = kind("server").record_builder()({"id": "s", "image": ""})
    assert record["image_id"] is None


def test_hypervisor_placement_fields_start_empty():
    record = kind("hypervisor").record_builder()(
        {"id": "h1", "hypervisor_hostname": "cmp1", "state": "up", "service": {"host": "cmp1"}}
    )
    assert record["host"] == "cmp1" and record["status"] == "up"
    assert record["vcpu_capacity"] is None


def test_every_relation_points_at_a_known_kind_and_field():
    for spec in KINDS.values():
        for rel in spec.relations:
            assert rel.target in KINDS, (spec.name, rel.name)
            assert rel.field in spec.field_names(), (spec.name, rel.field)
            assert rel.target_field in KINDS[rel.target].field_names(), (spec.name, rel.name)


def test_cinder_service_id_is_binary_at_host():
    record = kind("block_storage_service").record_builder()(
        {"binary": "cinder-volume", "host": "st1@lvm", "state": "up", "status": "enabled"}
    )
    assert record["id"] == "cinder-volume@st1@lvm"


def test_pool_capacity_infinite_is_kept_as_reported_but_not_as_a_number():
    record = kind("storage_pool").record_builder()(
        {
            "name": "cinder@lvm#pool",
            "capabilities": {
                "total_capacity_gb": "infinite",
                "free_capacity_gb": "infinite",
                "allocated_capacity_gb": 12,
                "max_over_subscription_ratio": "20.0",
            },
        }
    )
    assert record["total_capacity_gb"] is None and record["free_capacity_gb"] is None
    assert record["capacity_reported"] == "infinite"
    assert record["allocated_capacity_gb"] == 12.0
    assert record["max_over_subscription_ratio"] == 20.0


def test_builder_version_is_the_same_in_every_process():
    """Stored raw hashes are keyed by it: a restart must not make every item look new."""
    import os
    import subprocess
    import sys

    script = (
        "from stackfleet.model import KINDS;"
        "print(','.join(k.builder_version().hex() for k in KINDS.values()))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == ",".join(k.builder_version().hex() for k in KINDS.values())


def test_builder_version_changes_when_a_getter_reads_another_field():
    from dataclasses import replace

    from stackfleet.model.kinds import Field, path

    server = kind("server")
    one = replace(server, fields=(*server.fields, Field("zone_x", path("a", "zone"))))
    other = replace(server, fields=(*server.fields, Field("zone_x", path("b", "zone"))))
    assert len({server.builder_version(), one.builder_version(), other.builder_version()}) == 3
