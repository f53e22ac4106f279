"""Contract tests for the API's token validation (not part of a pass, so not in the
generated list of test_api_contract): ``GET /v3/auth/tokens`` with ``X-Subject-Token``,
asked with the admin's connection, answers alike on the real testbed and on the
simulator — the validated token's shape, and 404 for a token Keystone does not know —
and StackFleet reads user, project and roles from both the same way. The calls
`KeystoneAuth` makes are recorded against the simulator, so a new one without a check
here fails."""

from __future__ import annotations

from typing import Any

import openstack
import pytest
from contract_calls import _recording, template
from contract_shapes import differences, shape_of

from stackfleet.api.auth import KeystoneAuth, identity_from_token
from stackfleet.simulator.server import SimulatorServer

pytestmark = pytest.mark.contract

AUTH_CALLS = {"identity GET /auth/tokens"}


def _validate(admin: Any, token: str) -> Any:
    return admin.identity.get(
        "/auth/tokens",
        headers={"X-Subject-Token": token},
        params={"nocatalog": "1"},
        raise_exc=False,
    )


def _sim_member(simulator: SimulatorServer) -> Any:
    """alpha-01-user, a member of project alpha-01 in the simulated cloud."""
    kwargs = simulator.connect_kwargs()
    kwargs.update(username="alpha-01-user", password="password", project_name="alpha-01")
    return openstack.connect(**kwargs)


def test_every_call_of_token_validation_has_a_contract_check(simulator: SimulatorServer) -> None:
    admin = openstack.connect(**simulator.connect_kwargs())
    member_token = _sim_member(simulator).auth_token
    admin.authorize()
    calls: dict[str, Any] = {}
    with _recording(calls):
        identity = KeystoneAuth(admin).identify(member_token)
    assert identity is not None and identity.user_name == "alpha-01-user"
    made = {f"{c.service} {c.method} {template(c.path)}" for c in calls.values()}
    made -= {"identity POST /auth/tokens"}
    assert made == AUTH_CALLS


def test_validating_a_members_token_matches_reality(
    real: Any, sim: Any, testbed: Any, simulator: SimulatorServer
) -> None:
    real_token = testbed.connect(testbed.member_cloud).auth_token
    sim_token = _sim_member(simulator).auth_token
    real_response, sim_response = (
        _validate(real.project, real_token),
        _validate(sim.project, sim_token),
    )
    assert real_response.status_code == 200, real_response.text[:300]
    assert sim_response.status_code == 200, sim_response.text[:300]
    assert sim_response.headers.get("X-Subject-Token") == sim_token
    problems = differences(shape_of(real_response.json()), shape_of(sim_response.json()))
    assert not problems, "\n".join(problems)
    for body in (real_response.json(), sim_response.json()):
        identity = identity_from_token(body)
        assert identity.member and not identity.operator
        assert identity.user_name and identity.project_id and identity.expires_at


def test_validating_an_admins_token_shows_the_admin_role_alike(real: Any, sim: Any) -> None:
    for side in (real, sim):
        response = _validate(side.project, side.project.auth_token)
        assert response.status_code == 200, response.text[:300]
        assert identity_from_token(response.json()).operator, side.name


def test_an_unknown_token_is_a_404_alike(real: Any, sim: Any) -> None:
    responses = [_validate(side.project, "gAAAAABnot-a-real-token") for side in (real, sim)]
    assert [r.status_code for r in responses] == [404, 404], [r.text[:200] for r in responses]
    problems = differences(shape_of(responses[0].json()), shape_of(responses[1].json()))
    assert not problems, "\n".join(problems)


def test_validating_a_system_scoped_token_matches_reality(real: Any, sim: Any) -> None:
    """The API's policy table (api/rbac.py) tells system-scoped tokens by `system` in
    the validated token: the shape and that reading agree on both sides (the admin's
    system-scoped token: an operator with system scope, no project)."""
    responses = [_validate(side.project, side.system.auth_token) for side in (real, sim)]
    assert [r.status_code for r in responses] == [200, 200], [r.text[:200] for r in responses]
    problems = differences(shape_of(responses[0].json()), shape_of(responses[1].json()))
    assert not problems, "\n".join(problems)
    for response in responses:
        identity = identity_from_token(response.json())
        assert identity.system and identity.project_id is None and identity.operator
        assert {"admin", "member", "reader"} <= identity.roles
