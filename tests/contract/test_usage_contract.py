"""Contract tests for the call of the diagnostics usage sweep (not part of a pass, so not
in the generated list of test_api_contract): ``GET /servers/{id}/diagnostics`` on the
real testbed (Nova's fake virt driver, which returns fixed diagnostics) and on the
simulator answers alike — the 2.48 standard body, the driver's own body before 2.48,
404 for an unknown server and 403 for a member. The calls the sweep makes are recorded
against the simulator, so a new one without a check here fails.

Not compared: 409 for a server that is not running — it would mean stopping a server of
the shared testbed fleet; the simulator's 409 follows nova/compute/manager.py
(get_instance_diagnostics) and is exercised in tests/e2e/test_usage_simulator.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import openstack
import pytest
from contract_calls import _recording, template
from contract_shapes import differences, shape_of

from stackfleet.engine.collect import collect
from stackfleet.engine.usage import UsageSettings, sweep_diagnostics
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack.connection import connect
from stackfleet.sources.openstack.diagnostics import MICROVERSION, parse_diagnostics
from stackfleet.store import open_store

pytestmark = pytest.mark.contract

USAGE_CALLS = {"compute GET /servers/{uuid}/diagnostics"}


def _diagnostics(conn: Any, server_id: str, microversion: str) -> Any:
    return conn.compute.get(
        f"/servers/{server_id}/diagnostics", microversion=microversion, raise_exc=False
    )


def _sim_server(simulator: SimulatorServer) -> str:
    return str(simulator.state.ground_truth["RegionOne"]["idle_servers"][0])


def test_every_call_of_the_usage_sweep_has_a_contract_check(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    clouds = simulator.write_clouds_yaml(tmp_path / "clouds.yaml", "usage-sim")
    store = open_store(f"sqlite:///{tmp_path / 'usage.db'}")
    calls: dict[str, Any] = {}
    try:
        collect(store, "usage-sim", config_files=[str(clouds)])
        targets = connect("usage-sim", config_files=[str(clouds)])
        with _recording(calls):
            sweep = sweep_diagnostics(store, targets, UsageSettings(budget=3))
    finally:
        store.close()
    assert sweep.count("first reading") == 3
    made = {f"{c.service} {c.method} {template(c.path)}" for c in calls.values()}
    made -= {"identity POST /auth/tokens"}
    assert made == USAGE_CALLS
    assert {c.microversion for c in calls.values() if "diagnostics" in c.path} == {MICROVERSION}


@pytest.mark.parametrize("microversion", [MICROVERSION, "2.1"])
def test_server_diagnostics_match_reality(
    microversion: str, real: Any, sim: Any, fleet: Any, simulator: SimulatorServer
) -> None:
    real_response = _diagnostics(real.project, fleet.servers["cmp1"], microversion)
    sim_response = _diagnostics(sim.project, _sim_server(simulator), microversion)
    assert real_response.status_code == 200, real_response.text[:300]
    assert sim_response.status_code == 200, sim_response.text[:300]
    real_body, sim_body = real_response.json(), sim_response.json()
    # before 2.48 the body is the virt driver's own dict: keys name its devices
    open_objects = ("$",) if microversion == "2.1" else ()
    problems = differences(shape_of(real_body), shape_of(sim_body), open_objects=open_objects)
    assert not problems, "\n".join(problems)
    # and StackFleet reads both the same way
    for body in (real_body, sim_body):
        reading = parse_diagnostics("x", body, 0.0)
        assert reading.cpu_time_seconds is not None and reading.cpu_time_seconds > 0
        assert reading.num_cpus and reading.disk_write_bytes is not None
        assert reading.net_rx_bytes is not None


def test_diagnostics_of_an_unknown_server_are_a_404_alike(real: Any, sim: Any) -> None:
    missing = str(uuid.uuid4())
    responses = [_diagnostics(side.project, missing, MICROVERSION) for side in (real, sim)]
    assert [r.status_code for r in responses] == [404, 404]
    problems = differences(shape_of(responses[0].json()), shape_of(responses[1].json()))
    assert not problems, "\n".join(problems)


def _sim_member(simulator: SimulatorServer, server_id: str) -> Any:
    """A member (not admin) of the project that owns `server_id` in the simulated cloud."""
    project_id = simulator.state.regions["RegionOne"].servers[server_id]["tenant_id"]
    user = next(
        u
        for u in simulator.state.users.values()
        if u.get("default_project_id") == project_id and u["name"].endswith("-user")
    )
    kwargs = simulator.connect_kwargs()
    kwargs.update(
        username=user["name"],
        password=simulator.state.passwords[user["id"]],
        project_name=simulator.state.projects[project_id]["name"],
    )
    return openstack.connect(**kwargs)


def test_a_member_is_refused_diagnostics_of_a_server_of_the_project_alike(
    testbed: Any, fleet: Any, simulator: SimulatorServer
) -> None:
    """Diagnostics are admin-only by default: a member of the server's own project gets
    403 (of another project, 404: Nova reads the server project-scoped first)."""
    sim_server = _sim_server(simulator)
    real = _diagnostics(testbed.connect(testbed.member_cloud), fleet.servers["cmp1"], "2.48")
    simulated = _diagnostics(_sim_member(simulator, sim_server), sim_server, "2.48")
    assert [real.status_code, simulated.status_code] == [403, 403], (real.text, simulated.text)
    problems = differences(shape_of(real.json()), shape_of(simulated.json()))
    assert not problems, "\n".join(problems)
