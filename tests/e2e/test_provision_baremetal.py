"""Bare metal through standalone Ironic against the simulated cloud (no bare-metal
flavors in Nova, so the catalog's Ironic is the backend): apply allocates nodes and
deploys the image until `active`, a second apply changes nothing, capacity and resource
class are checked before anything is made, the verbs map to Ironic (resize refused),
destroy undeploys the nodes back to `available`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest
from typer.testing import CliRunner

from stackfleet.actions.base import ActionError
from stackfleet.cli.main import app
from stackfleet.core.errors import StackFleetError
from stackfleet.provision import ironic
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

SPEC = """workloads:
  - name: rack
    kind: baremetal
    count: COUNT
    project: alpha-01
    image: IMAGE
    baremetal: {resource_class: RC}
    timeout: 20s
"""


class Outcome:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


@pytest.fixture
def cloud(tmp_path, monkeypatch) -> Iterator[tuple[SimulatorServer, Path]]:
    with SimulatorServer(preset("small")) as server:
        region = server.state.regions["RegionOne"]
        alpha = next(p["id"] for p in server.state.projects.values() if p["name"] == "alpha-01")
        # the operator gives the project its nodes (owner) and ends a maintenance
        admin = openstack.connect(**server.connect_kwargs(system_scope=True))
        for node in region.nodes.values():
            if node["provision_state"] == "available":
                admin.baremetal.update_node(node["uuid"], owner=alpha)
                admin.baremetal.unset_node_maintenance(node["uuid"])
        admin.close()
        server.sim.action_delay = 0.1  # deploying, deleting, cleaning are seen
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", "sim")
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        monkeypatch.setenv("OS_CLOUD", "sim")
        monkeypatch.delenv("OS_AUTH_URL", raising=False)
        monkeypatch.setenv("STACKFLEET_CONFIG_DIR", str(tmp_path))
        yield server, tmp_path


def region(server: SimulatorServer):
    return server.state.regions["RegionOne"]


def spec(server: SimulatorServer, tmp: Path, count: int, rc: str = "baremetal.general") -> Path:
    image = next(
        i for i in region(server).images.values()
        if i["status"] == "active" and i.get("visibility") == "public"
    )  # fmt: skip
    path = tmp / "rack.yaml"
    path.write_text(
        SPEC.replace("COUNT", str(count)).replace("IMAGE", image["name"]).replace("RC", rc)
    )
    return path


def cli(tmp: Path, *args: str) -> Outcome:
    result = CliRunner().invoke(app, ["--db-url", f"sqlite:///{tmp / 'store.db'}", *args])
    if isinstance(result.exception, StackFleetError):
        return Outcome(result.exception.exit_code, result.output + f"Error: {result.exception}")
    return Outcome(result.exit_code, result.output)


def deployed(server: SimulatorServer) -> dict[str, dict[str, Any]]:
    """Nodes reserved by the workload's allocations, by allocation name."""
    out = {}
    for allocation in region(server).allocations.values():
        if allocation["extra"].get("stackfleet-workload") == "rack":
            out[allocation["name"]] = region(server).nodes[allocation["node_uuid"]]
    return out


def test_apply_deploys_nodes_to_active_and_destroy_gives_them_back(cloud):
    server, tmp = cloud
    path = spec(server, tmp, 2)
    plan = cli(tmp, "provision", "plan", str(path), "-f", "json")
    assert [(r["change"], r["member"]) for r in json.loads(plan.output)] == [
        ("create", "rack-1"), ("create", "rack-2")
    ]  # fmt: skip
    applied = cli(tmp, "provision", "apply", str(path), "--execute", "-f", "json")
    assert applied.exit_code == 0, applied.output
    assert sorted((r["member"], r["status"]) for r in json.loads(applied.output)) == [
        ("rack-1", "active"), ("rack-2", "active")
    ]  # fmt: skip
    nodes = deployed(server)
    assert sorted(nodes) == ["rack-1", "rack-2"]
    image_id = next(
        i["id"] for i in region(server).images.values()
        if i["status"] == "active" and i.get("visibility") == "public"
    )  # fmt: skip
    for node in nodes.values():
        assert node["provision_state"] == "active" and node["power_state"] == "power on"
        assert node["instance_info"]["image_source"] == image_id
    again = cli(tmp, "provision", "apply", str(path), "--execute")
    assert again.exit_code == 0 and "nothing to do" in again.output
    listed = cli(tmp, "workload", "list", "--project", "alpha-01", "-f", "json")
    assert [(r["workload"], r["backend"], r["active"]) for r in json.loads(listed.output)] == [
        ("rack", "ironic", 2)
    ]
    stopped = cli(
        tmp, "workload", "stop", "rack", "--project", "alpha-01", "--member", "rack-1",
        "--execute",
    )  # fmt: skip
    assert stopped.exit_code == 0, stopped.output
    assert deployed(server)["rack-1"]["power_state"] == "power off"
    resize = cli(tmp, "workload", "resize", "rack", "--project", "alpha-01", "--size", "m1.small")
    assert resize.exit_code == 2
    assert "rack is a bare-metal workload (standalone Ironic): it has no resize" in resize.output
    node_ids = [n["uuid"] for n in nodes.values()]
    destroyed = cli(tmp, "provision", "destroy", str(path), "--execute")
    assert destroyed.exit_code == 0, destroyed.output
    assert not deployed(server) and not region(server).allocations
    for node_id in node_ids:
        node = region(server).nodes[node_id]
        assert node["provision_state"] in ("cleaning", "available")
        assert node["instance_uuid"] is None


def test_baremetal_workloads_are_in_the_inventory_and_the_api(cloud):
    from fastapi.testclient import TestClient

    from stackfleet.api.app import create_app
    from stackfleet.store import open_store

    server, tmp = cloud
    applied = cli(tmp, "provision", "apply", str(spec(server, tmp, 2)), "--execute")
    assert applied.exit_code == 0, applied.output
    collected = cli(
        tmp,
        "collect",
        "--os-cloud",
        "sim",
        "--kind",
        "server",
        "--kind",
        "baremetal_allocation",
        "--kind",
        "baremetal_node",
        "--kind",
        "container",
    )
    assert collected.exit_code == 0, collected.output
    client = TestClient(create_app(open_store(f"sqlite:///{tmp / 'store.db'}")))
    listed = client.get("/v1/workloads").json()["items"]
    assert [(w["name"], w["backend"], w["member_kind"], w["active_count"]) for w in listed] == [
        ("rack", "ironic", "baremetal_node", 2)
    ]
    one = client.get("/v1/workloads/rack").json()
    assert sorted(r["id"] for r in one["relations"]["nodes"]) == sorted(
        n["uuid"] for n in deployed(server).values()
    )
    shown = cli(tmp, "workload", "show", "rack", "--project", "alpha-01", "-f", "json")
    assert [(m["member"], m["status"], m["size"]) for m in json.loads(shown.output)] == [
        ("rack-1", "ACTIVE", "baremetal.general"), ("rack-2", "ACTIVE", "baremetal.general")
    ]  # fmt: skip
    logs = cli(tmp, "workload", "logs", "rack", "--project", "alpha-01")
    assert logs.exit_code == 2
    assert "rack is a bare-metal workload (standalone Ironic): it has no logs" in logs.output


def test_capacity_and_resource_class_are_checked_before_anything_is_made(cloud):
    server, tmp = cloud
    short = cli(tmp, "provision", "apply", str(spec(server, tmp, 3)), "--execute")
    assert short.exit_code == 2
    assert "needs 3 available baremetal.general node(s), 2" in short.output
    unknown = cli(tmp, "provision", "plan", str(spec(server, tmp, 1, "baremetal.generel")))
    assert unknown.exit_code == 2 and "closest: baremetal.general" in unknown.output
    assert not region(server).allocations


def test_nodes_without_a_power_state_are_not_counted_as_capacity(cloud):
    """Ironic allocates only nodes whose power state it knows (a fake-hardware node has
    none until one is set): the check says so instead of letting the allocation fail."""
    server, tmp = cloud
    for node in region(server).nodes.values():
        if node["resource_class"] == "baremetal.general":
            node["power_state"] = None
    short = cli(tmp, "provision", "apply", str(spec(server, tmp, 1)), "--execute")
    assert short.exit_code == 2, short.output
    assert "needs 1 available baremetal.general node(s), 0 in" in short.output
    assert "(2 more without a known power state, which Ironic does not allocate" in short.output
    assert not region(server).allocations


def test_a_second_apply_by_the_same_provisioner_sees_the_nodes_the_first_took(cloud):
    """The cloud is read afresh for each plan: nodes deployed by the first apply are not
    counted as available by the next one."""
    from stackfleet.engine.settings import Settings
    from stackfleet.provision.apply import CapacityError, Provisioner
    from stackfleet.provision.spec import load_spec_text
    from stackfleet.store import open_store

    server, tmp = cloud
    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    runner = Provisioner(store, Settings(), [str(tmp / "clouds.yaml")], "sim", poll_interval=0.1)
    try:
        plans = runner.plan(runner.prepare(load_spec_text(spec(server, tmp, 2).read_text())))
        runner.check_capacity(plans)
        assert not runner.apply(plans, execute=True).failed
        grown = runner.plan(runner.prepare(load_spec_text(spec(server, tmp, 3).read_text())))
        with pytest.raises(CapacityError, match="needs 1 available baremetal.general node"):
            runner.check_capacity(grown)
    finally:
        runner.close()
        store.close()
    assert len(region(server).allocations) == 2


def test_an_allocation_ironic_cannot_satisfy_is_reported_and_removed(cloud):
    """Run against the simulator directly: the capacity check keeps the CLI from ever
    asking for a node Ironic does not have."""
    server, _tmp = cloud
    conn = openstack.connect(**server.connect_kwargs())

    class Ctx:
        verify_timeout, poll_interval = 5.0, 0.05

        def connection(self, cloud: str, region: str) -> Any:
            return conn

    action = ironic.CreateNodeMember(
        workload="rack", index=1, image_id="img", project_id=conn.current_project_id,
        allocation=ironic.allocation_body(
            "rack", 1, "rack-1", "h", "baremetal.gpu", [], conn.current_project_id, {}
        ),
    )  # fmt: skip
    with pytest.raises(ActionError, match="no available nodes match the resource class"):
        action.execute(Ctx(), {"cloud": "sim", "region": "RegionOne"})  # type: ignore[arg-type]
    assert not region(server).allocations
    conn.close()
