"""Keystone authentication of the REST API's writes, against the simulator's Keystone:
no or a bad token is 401, a project member may extend only its own project's leases
(and is recorded as the audit actor), everything else needs the admin role."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from api_records import APPROVAL_POLICY, lease, record
from fastapi.testclient import TestClient

from stackfleet.api.app import create_app
from stackfleet.api.auth import KeystoneAuth
from stackfleet.engine.policies import PolicyRunner
from stackfleet.policy import load_text
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack.connection import connect
from stackfleet.store.db import Store

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The small simulated cloud, an admin connection and a member token of alpha-01."""
    workdir = tmp_path_factory.mktemp("auth")
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        entry = yaml.safe_load(clouds.read_text())["clouds"][CLOUD]
        entry["auth"].update(username="alpha-01-user", password="password", project_name="alpha-01")
        member_file = workdir / "member.yaml"
        member_file.write_text(yaml.safe_dump({"clouds": {CLOUD: entry}}))
        projects = {p["name"]: p["id"] for p in server.state.projects.values()}
        admin = connect(CLOUD, config_files=[str(clouds)])[0].conn
        member = connect(CLOUD, config_files=[str(member_file)])[0].conn
        yield {
            "admin": admin,
            "admin_token": admin.auth_token,
            "member_token": member.auth_token,
            "own": projects["alpha-01"],
            "other": next(i for n, i in projects.items() if n != "alpha-01"),
            "clouds": Path(clouds),
            "server": server,
            "member_file": member_file,
        }


@pytest.fixture
def client(store: Store, cloud: dict[str, Any]) -> TestClient:
    """The API with auth on, a lease in the member's project and one in another, and an
    action awaiting approval."""
    record(
        store,
        server=[
            {"id": "a", "name": "vm-a", "project_id": cloud["own"], "status": "ERROR"},
            {"id": "b", "name": "vm-b", "project_id": cloud["other"], "status": "ACTIVE"},
        ],
    )
    lease(store, "a", cloud["own"])
    lease(store, "b", cloud["other"])
    PolicyRunner(store).run(load_text(APPROVAL_POLICY), execute=True)
    return TestClient(create_app(store, KeystoneAuth(cloud["admin"], cloud=CLOUD)))


def fresh_member_token(cloud: dict[str, Any]) -> str:
    token = connect(CLOUD, config_files=[str(cloud["member_file"])])[0].conn.auth_token
    assert token
    return str(token)


def waiting_action(client: TestClient) -> int:
    [action] = client.get("/v1/actions", params={"status": "awaiting-approval"}).json()["items"]
    return int(action["id"])


def test_writes_without_a_valid_token_are_401(client: TestClient) -> None:
    action = waiting_action(client)  # reads stay open by default
    missing = client.post(f"/v1/actions/{action}/approve")
    assert missing.status_code == 401
    assert "X-Auth-Token" in missing.json()["error"]["message"]
    garbage = client.post(
        "/v1/leases/vm-a/extend", json={"days": 1}, headers={"X-Auth-Token": "not-a-token"}
    )
    assert garbage.status_code == 401
    assert garbage.json()["error"]["code"] == 401
    assert client.get("/v1/leases").json()["items"][0]["extended_days"] == 0


def test_a_member_extends_its_own_projects_lease_only(
    client: TestClient, cloud: dict[str, Any]
) -> None:
    member = {"X-Auth-Token": cloud["member_token"]}
    own = client.post(
        "/v1/leases/vm-a/extend", json={"days": 2, "actor": "someone-else"}, headers=member
    )
    assert own.status_code == 200, own.text
    assert own.json()["items"][0]["extended_days"] == 2
    [entry] = client.get("/v1/audit", params={"event": "lease.extended"}).json()["items"]
    assert entry["actor"] == "alpha-01-user"

    other = client.post("/v1/leases/vm-b/extend", json={"days": 2}, headers=member)
    assert other.status_code == 403
    assert "another project" in other.json()["error"]["message"]
    leases = {r["resource_id"]: r for r in client.get("/v1/leases").json()["items"]}
    assert leases["b"]["extended_days"] == 0


def test_approving_needs_the_admin_role(client: TestClient, cloud: dict[str, Any]) -> None:
    action = waiting_action(client)
    denied = client.post(
        f"/v1/actions/{action}/approve", headers={"X-Auth-Token": cloud["member_token"]}
    )
    assert denied.status_code == 403
    assert "admin role" in denied.json()["error"]["message"]
    assert waiting_action(client) == action

    approved = client.post(
        f"/v1/actions/{action}/approve",
        json={"actor": "mallory"},
        headers={"X-Auth-Token": cloud["admin_token"]},
    )
    assert approved.status_code == 200, approved.text
    admin_name = yaml.safe_load(cloud["clouds"].read_text())["clouds"][CLOUD]["auth"]["username"]
    assert approved.json()["approved_by"] == admin_name


def test_reads_can_require_a_token(store: Store, cloud: dict[str, Any]) -> None:
    app = create_app(store, KeystoneAuth(cloud["admin"], read="authenticated"))
    client = TestClient(app)
    assert client.get("/v1/leases").status_code == 401
    listed = client.get("/v1/leases", headers={"X-Auth-Token": cloud["member_token"]})
    assert listed.status_code == 200
    assert client.get("/healthz").status_code == 200


def test_an_expired_token_is_401_and_a_valid_one_is_remembered(
    client: TestClient, cloud: dict[str, Any]
) -> None:
    """Tokens are fresh member logins, expired or revoked in the simulator's Keystone."""
    server: SimulatorServer = cloud["server"]
    extend = "/v1/leases/vm-a/extend"

    expired = fresh_member_token(cloud)
    server.state.tokens[expired]["expires_at"] = "2000-01-01T00:00:00.000000Z"
    refused = client.post(extend, json={"days": 1}, headers={"X-Auth-Token": expired})
    assert refused.status_code == 401
    assert "expired" in refused.json()["error"]["message"]

    revoked = fresh_member_token(cloud)
    first = client.post(extend, json={"days": 1}, headers={"X-Auth-Token": revoked})
    assert first.status_code == 200
    del server.state.tokens[revoked]
    # validated once, kept (at most 5 minutes) without asking Keystone again
    again = client.post(extend, json={"days": 1}, headers={"X-Auth-Token": revoked})
    assert again.status_code == 200
    assert again.json()["items"][0]["extended_days"] == 2


def run_serve(
    cloud: dict[str, Any],
    tmp_path: Path,
    options: list[str],
    check: Any,
    scheme: str = "http",
    verify: Any = True,
) -> tuple[str, Any]:
    """Run `stackfleet serve` with `options` on a free port, call `check(base_url)` once
    it answers, stop it with SIGINT; its output and what `check` returned."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "none.yaml").write_text("{}\n")
    command = [
        sys.executable,
        "-m",
        "stackfleet.cli.main",
        "--db-url",
        f"sqlite:///{tmp_path / 'serve.db'}",
        "serve",
        "--os-cloud",
        CLOUD,
        *options,
        "--interval",
        "3600",
        "--port",
        str(port),
        "--config",
        str(tmp_path / "none.yaml"),
        "--infra-config",
        os.devnull,
    ]
    env = {
        **os.environ,
        "OS_CLIENT_CONFIG_FILE": str(cloud["clouds"]),
        "STACKFLEET_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "400",
    }
    env.pop("STACKFLEET_INFRA_CONFIG", None)
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=2, verify=verify).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        result = check(base)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert "Traceback" not in output, output
    return output, result


def test_serve_with_auth_cloud_requires_tokens(cloud: dict[str, Any], tmp_path: Path) -> None:
    """`stackfleet serve --auth-cloud` end to end: its startup line says auth is on and
    its writes need a token with the right role."""

    def check(base: str) -> None:
        approve = f"{base}/v1/actions/999/approve"
        assert requests.post(approve, timeout=10).status_code == 401
        member = {"X-Auth-Token": cloud["member_token"]}
        assert requests.post(approve, headers=member, timeout=10).status_code == 403
        admin = {"X-Auth-Token": cloud["admin_token"]}
        # past authentication: the action does not exist
        assert requests.post(approve, headers=admin, timeout=10).status_code == 404

    output, _ = run_serve(cloud, tmp_path, ["--auth-cloud", CLOUD], check)
    assert f"API auth: Keystone tokens via {CLOUD}" in output, output


def test_serve_without_auth_cloud_takes_a_local_token(
    cloud: dict[str, Any], tmp_path: Path
) -> None:
    """Without --auth-cloud, serve writes a fresh operator token (0600) where it says,
    accepts it (X-Auth-Token or Bearer) for writes, and removes it when it stops;
    --no-auth leaves writes open and says so."""
    token_file = tmp_path / "token"

    def check(base: str) -> None:
        approve = f"{base}/v1/actions/999/approve"
        assert requests.post(approve, timeout=10).status_code == 401
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.post(approve, headers=headers, timeout=10).status_code == 404
        assert requests.get(f"{base}/v1/leases", timeout=10).status_code == 200

    output, _ = run_serve(cloud, tmp_path, ["--token-file", str(token_file)], check)
    assert f"API auth: local operator token in {token_file}" in output, output
    assert not token_file.exists()

    def open_writes(base: str) -> int:
        return requests.post(f"{base}/v1/actions/999/approve", timeout=10).status_code

    output, status = run_serve(cloud, tmp_path / "open", ["--no-auth"], open_writes)
    assert status == 404
    assert "--no-auth" in output, output


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "api.crt", tmp_path / "api.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_serve_speaks_https_with_a_certificate(cloud: dict[str, Any], tmp_path: Path) -> None:
    """--tls-cert/--tls-key: the API answers over HTTPS (verified against the
    certificate), and plain HTTP gets no answer from it."""
    cert, key = _self_signed(tmp_path)

    def check(base: str) -> tuple[int, bool]:
        secure = requests.get(f"{base}/healthz", timeout=10, verify=str(cert)).status_code
        try:
            requests.get(base.replace("https://", "http://") + "/healthz", timeout=5)
            plain_refused = False
        except requests.ConnectionError:
            plain_refused = True
        return secure, plain_refused

    options = ["--tls-cert", str(cert), "--tls-key", str(key)]
    output, (status, plain_refused) = run_serve(
        cloud, tmp_path, options, check, scheme="https", verify=str(cert)
    )
    assert status == 200 and plain_refused
    assert "StackFleet API on https://127.0.0.1" in output, output


def test_serve_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    from support import run_cli

    half = run_cli("serve", "--os-cloud", "x", "--tls-cert", str(tmp_path / "a.crt"))
    assert half.code != 0 and "--tls-cert and --tls-key go together" in half.stderr
