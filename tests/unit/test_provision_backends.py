"""How each backend's objects read as workload members (status words, faults, labels),
and the simulated Ironic's JSON patch — pure functions, no cloud."""

from __future__ import annotations

import pytest

from stackfleet.provision import ironic, zun
from stackfleet.provision.approvals import _changes
from stackfleet.simulator.http import ApiError
from stackfleet.simulator.services.ironic_provision import _apply_patch

LABELS = {"stackfleet-workload": "w", "stackfleet-member": "2", "stackfleet-spec": "abc"}


def allocation(state: str = "active", **extra: object) -> dict:
    return {"uuid": "a1", "name": "w-2", "state": state, "extra": LABELS,
            "node_uuid": "n1", **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("provision", "power", "status"),
    [
        ("active", "power on", "ACTIVE"),
        ("active", "power off", "SHUTOFF"),
        ("deploying", "power off", "BUILD"),
        ("deploy failed", "power off", "ERROR"),
        ("deleting", "power off", "DELETING"),
        ("cleaning", "power off", "DELETING"),
    ],
)
def test_a_nodes_provision_state_is_a_member_status(provision, power, status):
    node = {"uuid": "n1", "name": "bm-1", "provision_state": provision, "power_state": power,
            "last_error": "boom" if provision == "deploy failed" else None}  # fmt: skip
    member = ironic.member_of(allocation(), node)
    assert member.status == status
    assert (member.index, member.spec_hash, member.host) == (2, "abc", "bm-1")
    if status == "ERROR":
        assert member.fault == "boom"


def test_an_allocation_in_error_is_a_failed_member_with_ironics_message():
    member = ironic.member_of(allocation("error", last_error="no nodes"), None)
    assert member.failed and member.fault == "no nodes" and member.id == "a1"


@pytest.mark.parametrize(
    ("zun_status", "status"),
    [("Running", "ACTIVE"), ("Creating", "BUILD"), ("Created", "BUILD"),
     ("Stopped", "SHUTOFF"), ("Error", "ERROR"), ("Deleting", "DELETING")],
)  # fmt: skip
def test_a_containers_status_is_a_member_status(zun_status, status):
    member = zun.member_of(
        {
            "uuid": "c1",
            "name": "w-2",
            "status": zun_status,
            "labels": LABELS,
            "status_reason": "pull failed",
            "host": "h1",
        }  # fmt: skip
    )
    assert member.status == status and member.index == 2
    assert member.fault == ("pull failed" if status == "ERROR" else None)


def test_ironic_patch_adds_nested_values_and_refuses_internal_attributes():
    node = {"uuid": "n1", "instance_info": {}, "extra": {"a": 1}, "provision_state": "available"}
    patched = _apply_patch(
        node,
        [
            {"op": "add", "path": "/instance_info/image_source", "value": "img"},
            {"op": "remove", "path": "/extra/a"},
        ],  # fmt: skip
        78,
    )
    assert patched["instance_info"] == {"image_source": "img"} and patched["extra"] == {}
    assert node["instance_info"] == {}, "the node itself is untouched"
    with pytest.raises(ApiError):
        _apply_patch(node, [{"op": "replace", "path": "/provision_state", "value": "x"}], 78)


def test_an_approved_plans_diff_reads_back_as_changes():
    changes = _changes(["-server: web-1", "+flavor: m1.small"])
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("server", "web-1", None),
        ("flavor", None, "m1.small"),
    ]
