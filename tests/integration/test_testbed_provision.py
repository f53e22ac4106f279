"""Provisioning on the real testbed's Nova: a workload of two VMs with anti-affinity
lands on both compute hosts, a second apply changes nothing, a third member is refused
before anything is created (two hosts only), a member put in ERROR is replaced, scaling
down deletes the newest, and destroy leaves the testbed's own servers alone.

Not run by the author of this module (the testbed belonged to another session): run with
`pytest -m integration tests/integration/test_testbed_provision.py` on a running testbed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed_fleet import (
    COMPUTE_HOSTS,
    FLAVOR,
    MEMBER_PROJECT,
    PREFIX,
    Fleet,
    Testbed,
    provisioner_on_testbed,
)

from stackfleet.provision.apply import CapacityError, Provisioner
from stackfleet.provision.spec import load_spec_text

pytestmark = pytest.mark.integration

SPEC = """workloads:
  - name: sfit-prov
    count: COUNT
    project: PROJECT
    image: IMAGE
    size: FLAVOR
    networks: [NETWORK]
    placement: {server_group: anti-affinity}
    timeout: 180s
"""


@pytest.fixture
def provisioner(testbed: Testbed, fleet: Fleet, tmp_path: Path) -> Iterator[Provisioner]:
    # whatever happened, the workload goes
    url = f"sqlite:///{tmp_path / 'provision.db'}"
    with provisioner_on_testbed(testbed, url, spec(testbed, 0)) as runner:
        yield runner


def spec(testbed: Testbed, count: int) -> str:
    return (
        SPEC.replace("COUNT", str(count))
        .replace("PROJECT", MEMBER_PROJECT)
        .replace("IMAGE", str(testbed.info["image"]))
        .replace("FLAVOR", str(FLAVOR["name"]))
        .replace("NETWORK", f"{PREFIX}net")
    )


def converge(provisioner: Provisioner, text: str):
    plans = provisioner.plan(provisioner.prepare(load_spec_text(text)))
    provisioner.check_capacity(plans)
    return plans, provisioner.apply(plans, execute=True)


def test_a_workload_converges_on_the_testbed_nova(testbed: Testbed, fleet: Fleet, provisioner):
    plans, report = converge(provisioner, spec(testbed, 2))
    assert not report.failed, report.outcomes
    hosts = {o.message for o in report.outcomes if o.status == "active"}
    assert hosts == set(COMPUTE_HOSTS), "anti-affinity puts one member on each compute host"

    again, _ = converge(provisioner, spec(testbed, 2))
    assert not again[0][0].changes, "a second apply changes nothing"

    with pytest.raises(CapacityError, match="anti-affinity needs 1 more hosts"):
        converge(provisioner, spec(testbed, 3))

    conn = testbed.connect(testbed.admin_cloud, project=MEMBER_PROJECT)
    member = next(m for m in again[0][0].members if m.name == "sfit-prov-2")
    conn.compute.reset_server_state(member.id, "error")
    replaced, report = converge(provisioner, spec(testbed, 2))
    assert [(s.kind, s.name) for s in replaced[0][0].steps if s.kind != "keep"] == [
        ("replace", "sfit-prov-2")
    ]
    assert not report.failed, report.outcomes

    shrunk, report = converge(provisioner, spec(testbed, 1))
    assert [s.name for s in shrunk[0][0].of("delete")] == ["sfit-prov-2"]
    assert not report.failed, report.outcomes

    testbed_servers = set(fleet.servers.values())
    destroyed = provisioner.plan(
        provisioner.prepare(load_spec_text(spec(testbed, 1))), destroy=True
    )
    assert {s.member.id for s in destroyed[0][0].steps if s.member} & testbed_servers == set()
    report = provisioner.apply(destroyed, execute=True)
    assert not report.failed, report.outcomes
    left = {s.id for s in conn.compute.servers()}
    assert testbed_servers <= left, "the testbed's own servers are untouched"
