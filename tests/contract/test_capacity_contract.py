"""Contract tests for the calls of the quota sweep (not part of a pass, so not in the
generated list of test_api_contract): each service's quota set of a project, read on the
real testbed and on the simulator, answers alike. The calls the sweep makes are
recorded against the simulator, so a new one without a check here fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openstack
import pytest
from contract_calls import _recording, template
from contract_shapes import differences, shape_of

from stackfleet.engine.loop import CloudSpec
from stackfleet.engine.quota_sweep import sweep_cloud
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack.quotas import QUOTA_SOURCES, QuotaSource, label
from stackfleet.store import open_store

pytestmark = pytest.mark.contract

# label -> JSON paths whose keys depend on the deployment (Cinder adds three quotas per
# volume type, named after the type)
QUOTA_CONTRACTS: dict[str, tuple[str, ...]] = {
    "compute GET /os-quota-sets/{uuid}": (),
    "block-storage GET /os-quota-sets/{uuid}": ("$.quota_set",),
    "network GET /quotas/{uuid}": (),
}


def _get(side: Any, source: QuotaSource, project_id: str) -> Any:
    proxy = side.proxy(source.service)
    return proxy.get(
        source.path.format(project_id=project_id),
        microversion=source.microversion,
        raise_exc=False,
    )


def test_every_call_of_the_quota_sweep_has_a_contract_check(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    clouds = simulator.write_clouds_yaml(tmp_path / "clouds.yaml", "quota-sim")
    store = open_store(f"sqlite:///{tmp_path / 'quota.db'}")
    project = next(iter(simulator.state.projects))
    calls: dict[str, Any] = {}
    try:
        with _recording(calls):
            [result] = sweep_cloud(
                store, CloudSpec("quota-sim", config_files=[str(clouds)]), projects=[project]
            )
    finally:
        store.close()
    assert result.failed == []
    # Keystone project ids are 32 hex digits, not uuids
    made = {
        f"{c.service} {c.method} {template(c.path.replace(project, '{uuid}'))}"
        for c in calls.values()
    }
    made -= {"identity POST /auth/tokens"}
    assert made == set(QUOTA_CONTRACTS)
    assert {label(s) for s in QUOTA_SOURCES} == set(QUOTA_CONTRACTS)


@pytest.mark.parametrize("source", QUOTA_SOURCES, ids=label)
def test_quota_set_matches_reality(source: QuotaSource, real: Any, sim: Any) -> None:
    real_response = _get(real, source, real.project.current_project_id)
    sim_response = _get(sim, source, sim.project.current_project_id)
    assert real_response.status_code == 200, real_response.text[:300]
    assert sim_response.status_code == 200, sim_response.text[:300]
    real_body, sim_body = real_response.json(), sim_response.json()
    for body in (real_body, sim_body):
        quota_set = body[source.body_key]
        assert all(isinstance(quota_set[key], int) for key in source.keys), quota_set
    problems = differences(
        shape_of(real_body), shape_of(sim_body), open_objects=QUOTA_CONTRACTS[label(source)]
    )
    assert not problems, "\n".join(problems)


def _sim_member(simulator: SimulatorServer) -> Any:
    """A member (not admin) of the first tenant project of the simulated cloud."""
    user = next(u for u in simulator.state.users.values() if u["name"].endswith("-user"))
    project = simulator.state.projects[user["default_project_id"]]
    kwargs = simulator.connect_kwargs()
    kwargs.update(
        username=user["name"],
        password=simulator.state.passwords[user["id"]],
        project_name=project["name"],
    )
    return openstack.connect(**kwargs)


@pytest.mark.parametrize("source", QUOTA_SOURCES, ids=label)
def test_a_member_reading_another_projects_quota_is_refused_alike(
    source: QuotaSource, testbed: Any, real: Any, sim: Any, simulator: SimulatorServer
) -> None:
    statuses = []
    for member, other in (
        (testbed.connect(testbed.member_cloud), real.project.current_project_id),
        (_sim_member(simulator), sim.project.current_project_id),
    ):
        proxy = getattr(member, source.proxy)
        response = proxy.get(
            source.path.format(project_id=other),
            microversion=source.microversion,
            raise_exc=False,
        )
        statuses.append(response.status_code)
    assert statuses == [403, 403]
