"""Keystone users and role assignments end to end against the simulated cloud: the
simulator answers GET /v3/role_assignments as Keystone does, a pass records users and
grants (or skips them for a non-admin cloud), and `stackfleet policy run --pack
security` finds the admin grant the generator made outside the allowed list (its
ground truth) and none of the allowed ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest
import yaml
from fastapi.testclient import TestClient
from support import run_cli

from stackfleet.api.app import create_app
from stackfleet.engine.collect import collect
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
RULE = "admin-role-outside-allowed-list"
ALLOWED = {"admin", "nova", "neutron", "glance", "cinder", "placement", "ironic", "keystone"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorServer, dict]]:
    """The small simulated cloud, collected once through the CLI."""
    workdir = tmp_path_factory.mktemp("roles")
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        (workdir / "none.yaml").write_text("{}\n")
        env = {
            "STACKFLEET_DB_URL": f"sqlite:///{workdir / 'store.db'}",
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_CONFIG": str(workdir / "none.yaml"),
        }
        result = run_cli("collect", "--os-cloud", CLOUD, env=env, timeout=300)
        assert result.code == 0, result.stdout + result.stderr
        yield server, env


@pytest.fixture(scope="module")
def identity(cloud: tuple[SimulatorServer, dict]) -> Any:
    server, _env = cloud
    return openstack.connect(**server.connect_kwargs()).identity


def assignments(identity: Any, **params: str) -> list[dict[str, Any]]:
    response = identity.get("/role_assignments", params=params or None)
    assert response.status_code == 200, response.text
    return list(response.json()["role_assignments"])


def truth(server: SimulatorServer) -> list[str]:
    return server.state.ground_truth["RegionOne"]["admin_outside_allowed_list"]


# -- the simulated Keystone ---------------------------------------------------------------


def test_include_names_adds_user_project_and_role_names(identity: Any) -> None:
    bare = assignments(identity)
    named = assignments(identity, include_names="1")
    assert len(bare) == len(named) > 10
    assert all("name" not in a["user"] and "name" not in a["role"] for a in bare)
    project_grant = next(a for a in named if "project" in a["scope"])
    assert set(project_grant["user"]) == {"id", "name", "domain"}
    assert set(project_grant["scope"]["project"]) == {"id", "name", "domain"}
    assert project_grant["links"]["assignment"].endswith(
        f"/v3/projects/{project_grant['scope']['project']['id']}/users/"
        f"{project_grant['user']['id']}/roles/{project_grant['role']['id']}"
    )
    # Keystone's flags are true unless "0"
    assert "name" in assignments(identity, include_names="false")[0]["user"]
    # project grants come first, then the system grant
    assert [list(a["scope"]) for a in named][-1] == ["system"]


def test_filters_by_project_user_and_role(identity: Any, cloud: Any) -> None:
    server, _env = cloud
    named = assignments(identity, include_names="1")
    mallory = next(a for a in named if a["user"]["name"] == "mallory")
    project_id = mallory["scope"]["project"]["id"]
    on_project = assignments(identity, **{"scope.project.id": project_id})
    assert on_project and {a["scope"]["project"]["id"] for a in on_project} == {project_id}
    assert all("system" not in a["scope"] for a in on_project)
    by_user = assignments(identity, **{"user.id": mallory["user"]["id"]})
    assert [a["role"]["id"] for a in by_user] == [mallory["role"]["id"]]
    by_role = assignments(identity, **{"role.id": mallory["role"]["id"]})
    assert {a["role"]["id"] for a in by_role} == {mallory["role"]["id"]}
    assert len(by_role) < len(named)
    system = assignments(identity, **{"scope.system": "all"})
    assert [list(a["scope"]) for a in system] == [["system"]]


def test_project_and_system_filters_together_are_a_400(identity: Any) -> None:
    response = identity.get(
        "/role_assignments", params={"scope.project.id": "x", "scope.system": "all"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Specify system or project, not both"


def test_effective_lists_implied_roles_with_their_prior_role_and_no_system_grant(
    identity: Any,
) -> None:
    effective = assignments(identity, effective="1", include_names="1")
    assert all("system" not in a["scope"] for a in effective)
    mallory = [a for a in effective if a["user"]["name"] == "mallory"]
    assert [a["role"]["name"] for a in mallory] == ["admin", "member", "reader"]
    member = mallory[1]
    assert member["links"]["prior_role"].endswith(
        f"/prior_role/{member['role']['id']}/implies/{mallory[0]['role']['id']}"
    )


def test_users_are_listed_for_admins_only(identity: Any, cloud: Any) -> None:
    server, _env = cloud
    users = identity.get("/users").json()["users"]
    assert {u["name"] for u in users} >= {"admin", "nova", "mallory"}
    assert [u["id"] for u in users] == sorted(u["id"] for u in users)


# -- StackFleet ---------------------------------------------------------------------------


def test_a_pass_records_users_and_role_assignments(cloud: Any) -> None:
    server, env = cloud
    grants = run_cli(
        "resources", "list", "role_assignment", "--limit", "10000", "-f", "json", env=env
    )
    assert grants.code == 0, grants.stderr
    ids = {row["id"] for row in grants.json()}
    assert set(truth(server)) <= ids
    expected = sum(len(roles) for roles in server.state.assignments.values())
    assert len(ids) == expected
    users = run_cli("resources", "list", "user", "--limit", "10000", "-f", "json", env=env)
    assert {row["name"] for row in users.json()} == {u["name"] for u in server.state.users.values()}


def test_security_pack_finds_the_admin_outside_the_allowed_list_and_not_the_allowed(
    cloud: Any,
) -> None:
    server, env = cloud
    result = run_cli("policy", "run", "--pack", "security", "--policy", RULE, "-f", "json", env=env)
    assert result.code == 0, result.stdout + result.stderr
    [policy] = result.json()["policies"]
    assert sorted(m["id"] for m in policy["matches"]) == truth(server)
    # the allowed admins hold admin too (admin everywhere, service users on service)
    grants = run_cli(
        "resources", "list", "role_assignment", "--limit", "10000", "-f", "json", env=env
    ).json()
    admins = {row["id"] for row in grants if row["name"].split(": ")[1].startswith("admin ")}
    allowed = {row["id"] for row in grants if row["name"].split(":")[0] in ALLOWED} & admins
    assert len(allowed) > 5
    assert not allowed & {m["id"] for m in policy["matches"]}


def test_compliance_report_shows_the_rule_failing(cloud: Any) -> None:
    server, env = cloud
    report = run_cli("compliance", "report", "-f", "json", env=env)
    assert report.code == 0, report.stdout + report.stderr
    [rule] = [r for r in report.json() if r["policy"] == RULE]
    assert rule["failing"] == len(truth(server))
    assert rule["checked"] == sum(len(r) for r in server.state.assignments.values())


def test_a_cloud_without_the_admin_role_skips_users_and_role_assignments(
    cloud: Any, tmp_path: Path
) -> None:
    """A member's token gets 403 from Keystone: the kinds are skipped (the pass stays
    complete), and grants recorded by an admin's pass are not marked gone."""
    server, env = cloud
    clouds = yaml.safe_load(Path(env["OS_CLIENT_CONFIG_FILE"]).read_text())
    member = clouds["clouds"][CLOUD]
    member["auth"].update(username="alpha-01-user", password="password", project_name="alpha-01")
    member_file = tmp_path / "clouds.yaml"
    member_file.write_text(yaml.safe_dump({"clouds": {CLOUD: member}}))
    store = open_store(env["STACKFLEET_DB_URL"])
    try:
        [result] = collect(
            store, CLOUD, config_files=[str(member_file)], kinds=["user", "role_assignment"]
        )
        assert result.status == "complete", result.error
        for kind in ("user", "role_assignment"):
            listing = result.listings[kind]
            assert listing.skipped and not listing.complete
            assert "HTTP 403" in str(listing.error) and "admin role" in str(listing.error)
        rows, _ = store.list_resources("role_assignment", cloud=CLOUD, limit=10_000)
        assert set(truth(server)) <= {row["id"] for row in rows}
    finally:
        store.close()


def test_the_api_serves_a_grant_with_its_user_and_project(cloud: Any) -> None:
    server, env = cloud
    [grant_id] = truth(server)
    store = open_store(env["STACKFLEET_DB_URL"])
    try:
        client = TestClient(create_app(store))
        response = client.get(f"/v1/resources/role_assignment/{grant_id}")
        assert response.status_code == 200, response.text
        grant = response.json()
        assert (grant["user_name"], grant["role_name"]) == ("mallory", "admin")
        assert [u["name"] for u in grant["relations"]["user"]] == ["mallory"]
        assert [p["id"] for p in grant["relations"]["project"]] == [grant["scope_project_id"]]
        page = client.get(
            "/v1/resources", params={"kind": "role_assignment", "user_name": "mallory"}
        )
        assert [item["id"] for item in page.json()["items"]] == [grant_id]
    finally:
        store.close()
