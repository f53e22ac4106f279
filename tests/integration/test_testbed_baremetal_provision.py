"""Bare metal on the real testbed's standalone Ironic (Nova has no bare-metal flavors, so
the catalog's Ironic is the backend): two fake-hardware nodes of the test's own resource
class, owned by the member project, go `available` → `active` with the image through a
workload spec, a second apply changes nothing, a third node is refused before anything
is made, `stackfleet workload stop/start` power the real nodes, and destroy gives them
back `available` with their allocations gone.

The nodes are the test's own (resource class `sfit-bm`, no one else asks for it), made
for this module and deleted afterwards even when a test fails; the shared fleet is not
used or moved.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest
from testbed_fleet import (
    MEMBER_PROJECT,
    PREFIX,
    Connection,
    Testbed,
    provisioner_on_testbed,
    wait_until,
)
from typer.testing import CliRunner

from stackfleet.cli.main import app
from stackfleet.core.errors import StackFleetError
from stackfleet.provision.apply import CapacityError, Provisioner
from stackfleet.provision.spec import load_spec_text
from stackfleet.store.audit import AuditLog

pytestmark = pytest.mark.integration

WORKLOAD = f"{PREFIX}bm"
RESOURCE_CLASS = f"{PREFIX}bm"
NODE_NAMES = (f"{PREFIX}bm-node-1", f"{PREFIX}bm-node-2")
# fake-hardware with every interface fake (network and storage have no fake: noop), as
# the testbed enables them (testbed/stackfleet_testbed/configs.py IRONIC_INTERFACES)
FAKE_INTERFACES = {
    f"{kind}_interface": "fake"
    for kind in (
        "boot", "deploy", "management", "power", "inspect", "console", "bios", "raid",
        "rescue", "vendor", "firmware",
    )
} | {"network_interface": "noop", "storage_interface": "noop"}  # fmt: skip

SPEC = """workloads:
  - name: WORKLOAD
    kind: baremetal
    count: COUNT
    project: PROJECT
    image: IMAGE
    baremetal: {resource_class: RC}
    timeout: 120s
"""


def spec(testbed: Testbed, count: int) -> str:
    return (
        SPEC.replace("WORKLOAD", WORKLOAD)
        .replace("COUNT", str(count))
        .replace("PROJECT", MEMBER_PROJECT)
        .replace("IMAGE", str(testbed.info["image"]))
        .replace("RC", RESOURCE_CLASS)
    )


# -- the test's nodes ------------------------------------------------------------------


def _remove_nodes(system: Connection) -> None:
    """Every node of the test (a crashed run's too) undeployed, its allocation removed,
    and deleted."""
    baremetal = system.baremetal
    ours = [n for n in baremetal.nodes(details=True) if n.name in NODE_NAMES]
    for node in ours:
        if node.provision_state in ("active", "deploy failed", "error"):
            with contextlib.suppress(openstack.exceptions.SDKException):
                baremetal.set_node_provision_state(node, "deleted", wait=True, timeout=120)
    for allocation in baremetal.allocations():
        if allocation.resource_class == RESOURCE_CLASS:
            with contextlib.suppress(openstack.exceptions.SDKException):
                baremetal.delete_allocation(allocation, ignore_missing=True)
    for node in ours:
        baremetal.delete_node(node, ignore_missing=True)


@pytest.fixture(scope="module")
def system(testbed: Testbed) -> Iterator[Connection]:
    conn = testbed.connect(testbed.system_cloud)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture(scope="module")
def member_project_id(testbed: Testbed) -> str:
    conn = testbed.connect(testbed.admin_cloud, project=MEMBER_PROJECT)
    try:
        return str(conn.current_project_id)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def nodes(system: Connection, member_project_id: str) -> Iterator[list[str]]:
    """Two fake-hardware nodes of resource class `sfit-bm`, owned by the member project,
    `available` (manage, then provide; automated cleaning is off on the testbed)."""
    baremetal = system.baremetal
    _remove_nodes(system)
    try:
        made = [
            baremetal.create_node(
                name=name,
                driver="fake-hardware",
                resource_class=RESOURCE_CLASS,
                owner=member_project_id,
                properties={"cpus": 4, "memory_mb": 8192, "local_gb": 100},
                **FAKE_INTERFACES,
            )
            for name in NODE_NAMES
        ]
        ready = []
        for node in made:
            node = baremetal.set_node_provision_state(node, "manage", wait=True, timeout=60)
            node = baremetal.set_node_provision_state(node, "provide", wait=True, timeout=60)
            assert node.provision_state == "available", (node.name, node.provision_state)
            # a fake-hardware node has no power state until one is set, and Ironic
            # allocates only nodes whose power it knows; available nodes are off
            baremetal.set_node_power_state(node, "power off", wait=True, timeout=60)
            ready.append(str(node.id))
        yield ready
    finally:
        _remove_nodes(system)


def node_states(system: Connection, node_ids: list[str]) -> dict[str, Any]:
    """Each node's provision state, power, allocation and image, by name."""
    found = {}
    for node_id in node_ids:
        node = system.baremetal.get_node(node_id)
        found[node.name] = {
            "provision_state": node.provision_state,
            "power_state": node.power_state,
            "allocation_id": node.allocation_id,
            "image_source": (node.instance_info or {}).get("image_source"),
            "owner": node.owner,
        }
    return found


# -- StackFleet --------------------------------------------------------------------------


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'provision.db'}"


@pytest.fixture
def provisioner(testbed: Testbed, nodes: list[str], store_url: str) -> Iterator[Provisioner]:
    # whatever happens, the workload goes (the nodes fixture deletes the nodes)
    with provisioner_on_testbed(testbed, store_url, spec(testbed, 0), poll_interval=1.0) as runner:
        yield runner


def converge(provisioner: Provisioner, text: str) -> tuple[Any, Any]:
    plans = provisioner.plan(provisioner.prepare(load_spec_text(text)))
    provisioner.check_capacity(plans)
    return plans, provisioner.apply(plans, execute=True)


def workload_cli(testbed: Testbed, store_url: str, *args: str) -> tuple[int, str]:
    """`stackfleet workload ...` on the testbed's admin cloud, as the member project."""
    result = CliRunner().invoke(
        app,
        ["--db-url", store_url, "workload", *args, "--os-cloud", testbed.admin_cloud,
         "--project", MEMBER_PROJECT],
        env={"OS_CLIENT_CONFIG_FILE": str(testbed.clouds_yaml)},
    )  # fmt: skip
    if isinstance(result.exception, StackFleetError):
        return result.exception.exit_code, f"{result.output}Error: {result.exception}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


# -- tests -------------------------------------------------------------------------------


def test_a_spec_for_more_nodes_than_are_available_is_refused_and_nothing_is_made(
    testbed: Testbed, system: Connection, nodes: list[str], provisioner: Provisioner
):
    plans = provisioner.plan(provisioner.prepare(load_spec_text(spec(testbed, 3))))
    with pytest.raises(CapacityError) as refused:
        provisioner.check_capacity(plans)
    assert f"needs 3 available {RESOURCE_CLASS} node(s), 2 in" in str(refused.value)
    assert not [a for a in system.baremetal.allocations() if a.resource_class == RESOURCE_CLASS]
    states = node_states(system, nodes)
    assert {s["provision_state"] for s in states.values()} == {"available"}, states


def test_baremetal_goes_from_available_to_active_and_back(
    testbed: Testbed,
    system: Connection,
    nodes: list[str],
    member_project_id: str,
    provisioner: Provisioner,
    store_url: str,
):
    admin = testbed.connect(testbed.admin_cloud)  # Glance refuses the system scope
    try:
        image_id = str(admin.image.find_image(testbed.info["image"], ignore_missing=False).id)
    finally:
        admin.close()

    plans, report = converge(provisioner, spec(testbed, 2))
    assert [(s.kind, s.name) for s in plans[0][0].steps] == [
        ("create", f"{WORKLOAD}-1"), ("create", f"{WORKLOAD}-2")
    ]  # fmt: skip
    assert not report.failed, report.outcomes
    assert sorted((o.name, o.status) for o in report.outcomes) == [
        (f"{WORKLOAD}-1", "active"), (f"{WORKLOAD}-2", "active")
    ]  # fmt: skip
    states = node_states(system, nodes)
    for name, state in states.items():
        assert state["provision_state"] == "active", (name, state)
        assert state["image_source"] == image_id, (name, state)
    allocations = {
        a.name: a for a in system.baremetal.allocations() if a.resource_class == RESOURCE_CLASS
    }
    assert sorted(allocations) == [f"{WORKLOAD}-1", f"{WORKLOAD}-2"]
    assert {a.node_id for a in allocations.values()} == set(nodes)
    for allocation in allocations.values():
        assert allocation.state == "active"
        assert allocation.owner == member_project_id
        assert allocation.extra["stackfleet-workload"] == WORKLOAD
    audit = AuditLog(provisioner.store)
    completed, _ = audit.list(event="action.completed", policy=f"provision/{WORKLOAD}")
    assert sorted(str(e["target"]).rsplit("/", 1)[-1] for e in completed) == [
        f"new:{WORKLOAD}-1", f"new:{WORKLOAD}-2"
    ]  # fmt: skip
    active, _ = audit.list(event="provision.member_active", policy=f"provision/{WORKLOAD}")
    assert sorted(str(e["target"]).rsplit("/", 1)[-1] for e in active) == sorted(nodes)

    again, report = converge(provisioner, spec(testbed, 2))
    assert not again[0][0].changes, "a second apply changes nothing"
    assert not report.outcomes

    grown = provisioner.plan(provisioner.prepare(load_spec_text(spec(testbed, 3))))
    with pytest.raises(CapacityError, match=f"needs 1 available {RESOURCE_CLASS} node"):
        provisioner.check_capacity(grown)

    # the common verbs act on the real nodes (fake-hardware's deploy leaves the power as
    # it was, off: a real deploy ends powered on)
    first, other = (allocations[f"{WORKLOAD}-{i}"].node_id for i in (1, 2))
    code, output = workload_cli(
        testbed, store_url, "start", WORKLOAD, "--execute", "--timeout", "60"
    )
    assert code == 0, output
    assert {system.baremetal.get_node(n).power_state for n in (first, other)} == {"power on"}
    code, output = workload_cli(
        testbed, store_url, "stop", WORKLOAD, "--member", f"{WORKLOAD}-1", "--execute",
        "--timeout", "60",
    )  # fmt: skip
    assert code == 0, output
    assert system.baremetal.get_node(first).power_state == "power off"
    assert system.baremetal.get_node(other).power_state == "power on", "only the one member"
    code, output = workload_cli(testbed, store_url, "show", WORKLOAD, "-f", "json")
    assert code == 0, output
    assert [(m["member"], m["status"], m["size"]) for m in json.loads(output)] == [
        (f"{WORKLOAD}-1", "SHUTOFF", RESOURCE_CLASS), (f"{WORKLOAD}-2", "ACTIVE", RESOURCE_CLASS)
    ]  # fmt: skip
    code, output = workload_cli(testbed, store_url, "resize", WORKLOAD, "--size", "m1.small")
    assert code == 2
    assert "(standalone Ironic): it has no resize" in output

    destroyed = provisioner.plan(
        provisioner.prepare(load_spec_text(spec(testbed, 2))), destroy=True
    )
    report = provisioner.apply(destroyed, execute=True)
    assert not report.failed, report.outcomes
    assert sorted((o.name, o.status) for o in report.outcomes) == [
        (f"{WORKLOAD}-1", "deleted"), (f"{WORKLOAD}-2", "deleted")
    ]  # fmt: skip

    def given_back() -> dict[str, Any] | None:
        now = node_states(system, nodes)
        done = all(s["provision_state"] == "available" for s in now.values())
        return now if done else None

    states = wait_until("the nodes back to available", given_back, 120)
    for name, state in states.items():
        assert state["allocation_id"] is None, (name, state)
        assert not state["image_source"], (name, state)
    assert not [a for a in system.baremetal.allocations() if a.resource_class == RESOURCE_CLASS]
