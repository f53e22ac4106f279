"""The simulated Keystone through the clients operators use: openstacksdk, keystoneauth,
plain HTTP, and the openstack CLI reading the clouds.yaml the simulator writes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest
import requests
import yaml
from keystoneauth1 import exceptions as ks_exceptions

from stackfleet.simulator.server import SimulatorServer

OPENSTACK_CLI = Path(sys.executable).with_name("openstack")


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer() as running:
        yield running


def _password_auth(
    server: SimulatorServer,
    scope: dict[str, Any] | None,
    user: str = "admin",
    password: str = "secret",
) -> requests.Response:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"id": "default"}, "password": password}
                },
            }
        }
    }
    if scope is not None:
        body["auth"]["scope"] = scope
    return requests.post(f"{server.auth_url}/v3/auth/tokens", json=body, timeout=10)


def _admin_project_scope() -> dict[str, Any]:
    return {"project": {"name": "admin", "domain": {"name": "Default"}}}


# -- openstacksdk -----------------------------------------------------------------------------


def test_openstacksdk_authenticates_and_finds_every_service(server: SimulatorServer) -> None:
    conn = openstack.connect(**server.connect_kwargs())
    admin_project = next(p for p in server.state.projects.values() if p["name"] == "admin")
    assert conn.current_project_id == admin_project["id"]
    types = {entry["type"] for entry in conn.service_catalog}
    assert types >= {"identity", "compute", "placement", "network", "block-storage", "image"}
    assert conn.compute.get_endpoint() == f"{server.base_url}/RegionOne/compute/v2.1"
    assert conn.block_storage.get_endpoint() == (
        f"{server.base_url}/RegionOne/volume/v3/{admin_project['id']}"
    )


def test_openstacksdk_lists_projects_as_admin(server: SimulatorServer) -> None:
    conn = openstack.connect(**server.connect_kwargs())
    names = {project.name for project in conn.identity.projects()}  # type: ignore[union-attr]
    assert names == {p["name"] for p in server.state.projects.values()}


def test_system_scope_catalog_leaves_out_project_bound_endpoints(server: SimulatorServer) -> None:
    conn = openstack.connect(**server.connect_kwargs(system_scope=True))
    types = {entry["type"] for entry in conn.service_catalog}
    assert "baremetal" in types and "compute" in types
    # Keystone drops endpoints whose URL needs a project id it does not have.
    assert "block-storage" not in types


def test_wrong_password_is_a_keystoneauth_401(server: SimulatorServer) -> None:
    kwargs = {**server.connect_kwargs(), "password": "not-the-password"}
    conn = openstack.connect(**kwargs)
    with pytest.raises(ks_exceptions.Unauthorized) as raised:
        conn.session.get_token()
    assert raised.value.http_status == 401
    assert "requires authentication" in str(raised.value)
    with pytest.raises(openstack.exceptions.SDKException, match=r"HTTP 401"):
        conn.authorize()


# -- the token API ------------------------------------------------------------------------------


def test_root_answers_with_version_choices(server: SimulatorServer) -> None:
    response = requests.get(server.auth_url, timeout=10, allow_redirects=False)
    assert response.status_code == 300
    [version] = response.json()["versions"]["values"]
    assert version["status"] == "stable"
    assert version["links"][0]["href"] == f"{server.auth_url}/v3/"


def test_project_token_carries_roles_catalog_and_expiry(server: SimulatorServer) -> None:
    response = _password_auth(server, _admin_project_scope())
    assert response.status_code == 201
    assert response.headers["X-Subject-Token"]
    token = response.json()["token"]
    assert token["project"]["name"] == "admin"
    assert {"admin", "member", "reader"} <= {role["name"] for role in token["roles"]}
    assert token["expires_at"] > token["issued_at"]
    endpoints = [e for entry in token["catalog"] for e in entry["endpoints"]]
    assert {e["interface"] for e in endpoints} == {"public", "internal", "admin"}


def test_unscoped_token_has_no_catalog(server: SimulatorServer) -> None:
    response = _password_auth(server, None)
    assert response.status_code == 201
    token = response.json()["token"]
    assert "catalog" not in token and "project" not in token


def test_wrong_password_answers_keystones_error_body(server: SimulatorServer) -> None:
    response = _password_auth(server, _admin_project_scope(), password="nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert response.json()["error"]["title"] == "Unauthorized"


def test_validate_then_revoke_a_token(server: SimulatorServer) -> None:
    token_id = _password_auth(server, _admin_project_scope()).headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token_id, "X-Subject-Token": token_id}
    url = f"{server.auth_url}/v3/auth/tokens"
    validated = requests.get(url, headers=headers, timeout=10)
    assert validated.status_code == 200
    assert validated.headers["X-Subject-Token"] == token_id
    assert requests.delete(url, headers=headers, timeout=10).status_code == 204
    other = _password_auth(server, _admin_project_scope()).headers["X-Subject-Token"]
    after = requests.get(
        url, headers={"X-Auth-Token": other, "X-Subject-Token": token_id}, timeout=10
    )
    assert after.status_code == 404
    revoked_use = requests.get(
        f"{server.auth_url}/v3/projects", headers={"X-Auth-Token": token_id}, timeout=10
    )
    assert revoked_use.status_code == 401


def test_member_cannot_list_all_projects_but_sees_its_own(server: SimulatorServer) -> None:
    response = _password_auth(
        server,
        {"project": {"name": "alpha-01", "domain": {"id": "default"}}},
        "alpha-01-user",
        "password",
    )
    assert response.status_code == 201
    headers = {"X-Auth-Token": response.headers["X-Subject-Token"]}
    listing = requests.get(f"{server.auth_url}/v3/projects", headers=headers, timeout=10)
    assert listing.status_code == 403
    mine = requests.get(f"{server.auth_url}/v3/auth/projects", headers=headers, timeout=10)
    assert [p["name"] for p in mine.json()["projects"]] == ["alpha-01"]


def test_user_without_a_role_on_the_project_is_refused(server: SimulatorServer) -> None:
    response = _password_auth(
        server,
        {"project": {"name": "bravo-01", "domain": {"id": "default"}}},
        "alpha-01-user",
        "password",
    )
    assert response.status_code == 401


def test_expired_token_is_refused() -> None:
    with SimulatorServer(token_ttl=1) as short_lived:
        token_id = _password_auth(short_lived, _admin_project_scope()).headers["X-Subject-Token"]
        headers = {"X-Auth-Token": token_id}
        url = f"{short_lived.auth_url}/v3/projects"
        assert requests.get(url, headers=headers, timeout=10).status_code == 200
        time.sleep(1.1)
        assert requests.get(url, headers=headers, timeout=10).status_code == 401
        fresh = _password_auth(short_lived, _admin_project_scope()).headers["X-Subject-Token"]
        validate = requests.get(
            f"{short_lived.auth_url}/v3/auth/tokens",
            headers={"X-Auth-Token": fresh, "X-Subject-Token": token_id},
            timeout=10,
        )
        assert validate.status_code == 404


# -- clouds.yaml and the openstack CLI ---------------------------------------------------------


def test_clouds_yaml_keeps_other_clouds_and_is_private(
    server: SimulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"production": {"auth": {"auth_url": "x"}}}}))
    server.write_clouds_yaml(path)
    clouds = yaml.safe_load(path.read_text())["clouds"]
    assert set(clouds) == {"production", "stackfleet-sim", "stackfleet-sim-system"}
    assert clouds["stackfleet-sim"]["auth"]["auth_url"] == server.auth_url
    assert clouds["stackfleet-sim-system"]["auth"]["system_scope"] == "all"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _cli(clouds_yaml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds_yaml)}
    env = {k: v for k, v in env.items() if not k.startswith("OS_") or k == "OS_CLIENT_CONFIG_FILE"}
    return subprocess.run(
        [str(OPENSTACK_CLI), "--os-cloud", "stackfleet-sim", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_openstack_cli_issues_a_token_and_lists_projects(
    server: SimulatorServer, tmp_path: Path
) -> None:
    clouds_yaml = server.write_clouds_yaml(tmp_path / "clouds.yaml")
    token = _cli(clouds_yaml, "token", "issue", "-f", "value", "-c", "project_id")
    assert token.returncode == 0, token.stderr
    admin_project = next(p for p in server.state.projects.values() if p["name"] == "admin")
    assert token.stdout.strip() == admin_project["id"]
    projects = _cli(clouds_yaml, "project", "list", "-f", "value", "-c", "Name")
    assert projects.returncode == 0, projects.stderr
    assert set(projects.stdout.split()) == {p["name"] for p in server.state.projects.values()}


def test_openstack_cli_reports_a_wrong_password(server: SimulatorServer, tmp_path: Path) -> None:
    clouds_yaml = server.write_clouds_yaml(tmp_path / "clouds.yaml")
    result = _cli(clouds_yaml, "--os-password", "wrong", "token", "issue")
    assert result.returncode != 0
    assert "HTTP 401" in result.stderr


def test_serve_writes_clouds_yaml_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    clouds_yaml = tmp_path / "clouds.yaml"
    program = (
        "import sys\n"
        "from stackfleet.simulator.server import serve\n"
        "serve(clouds_yaml_path=sys.argv[1], on_ready=lambda e, p: print('ready', flush=True))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", program, str(clouds_yaml)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        result = _cli(clouds_yaml, "token", "issue", "-f", "value", "-c", "user_id")
        assert result.returncode == 0, result.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_openstack_cli_registers_a_service_and_its_endpoint_in_the_catalog(
    tmp_path: Path,
) -> None:
    """`openstack service create` / `endpoint create`, as an operator registers a new
    service (StackFleet's `fleet`): later tokens carry it, and openstacksdk finds its URL."""
    with SimulatorServer() as own:
        clouds_yaml = own.write_clouds_yaml(tmp_path / "clouds.yaml")
        made = _cli(clouds_yaml, "service", "create", "--name", "stackfleet", "fleet",
                    "-f", "value", "-c", "id")  # fmt: skip
        assert made.returncode == 0, made.stderr
        service_id = made.stdout.strip()
        endpoint = _cli(clouds_yaml, "endpoint", "create", "--region", "RegionOne",
                        service_id, "public", "http://127.0.0.1:9/fleet")  # fmt: skip
        assert endpoint.returncode == 0, endpoint.stderr
        shown = _cli(clouds_yaml, "catalog", "show", "fleet", "-f", "json")
        assert shown.returncode == 0, shown.stderr
        assert "http://127.0.0.1:9/fleet" in shown.stdout
        conn = openstack.connect(**own.connect_kwargs())
        assert (
            conn.session.get_endpoint(service_type="fleet", interface="public")
            == "http://127.0.0.1:9/fleet"
        )
        # an unknown service is Keystone's 400, not a dangling endpoint
        dangling = _cli(clouds_yaml, "endpoint", "create", "--region", "RegionOne",
                        "no-such-service", "public", "http://x")  # fmt: skip
        assert dangling.returncode != 0


def test_a_member_cannot_register_a_service(server: SimulatorServer) -> None:
    state = server.state
    # a user with a password and a role on a project, admin nowhere
    user_id, project_id = next(
        (uid, target)
        for (uid, target), roles in state.assignments.items()
        if target in state.projects
        and uid in state.passwords
        and not any("admin" in r for (u, _t), r in state.assignments.items() if u == uid)
    )
    token = _password_auth(
        server,
        {"project": {"id": project_id}},
        user=state.users[user_id]["name"],
        password=state.passwords[user_id],
    ).headers["X-Subject-Token"]
    refused = requests.post(
        f"{server.auth_url}/v3/services",
        json={"service": {"type": "fleet"}},
        headers={"X-Auth-Token": token},
        timeout=10,
    )
    assert refused.status_code == 403
