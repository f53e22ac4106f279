"""The API's policy table (api/rbac.py) covers every route, and the middleware enforces
it: every route of the OpenAPI document is tried with every kind of caller (tokens
standing for operator, fleet-operator, system reader, project member, project reader,
a token without a known role, and none). A new route without a rule fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from api_records import record
from fastapi.testclient import TestClient

from stackfleet.api import rbac
from stackfleet.api.app import create_app
from stackfleet.api.auth import (
    Identity,
    LocalAuth,
    MetricsAccess,
    ReadMode,
    check_metrics_token_file,
    write_local_token,
)
from stackfleet.core.errors import ConfigError
from stackfleet.store.db import Store

ROOT = Path(__file__).resolve().parents[2]
OWN, OTHER = "p-own", "p-other"


def identity(name: str, roles: set[str], project: str | None, system: bool = False) -> Identity:
    return Identity(name, name, project, frozenset(roles), system, None)


CALLERS: dict[str, tuple[Identity, rbac.Role]] = {
    "admin": (identity("admin", {"admin", "member", "reader"}, "p-admin"), rbac.Role.OPERATOR),
    "fleet-operator": (identity("fo", {"fleet-operator"}, OWN), rbac.Role.OPERATOR),
    "system-admin": (identity("sa", {"admin"}, None, system=True), rbac.Role.OPERATOR),
    "system-reader": (identity("sr", {"reader"}, None, system=True), rbac.Role.SYSTEM_READER),
    "member": (identity("m", {"member", "reader"}, OWN), rbac.Role.PROJECT_MEMBER),
    "reader": (identity("r", {"reader"}, OWN), rbac.Role.PROJECT_READER),
    "no-role": (identity("n", {"service"}, OWN), rbac.Role.NONE),
}


class StubAuth:
    """Tokens are the CALLERS' names."""

    def __init__(self, read: ReadMode) -> None:
        self.read: ReadMode = read
        self.operator_role = rbac.DEFAULT_OPERATOR_ROLE

    def identify(self, token: str) -> Identity | None:
        found = CALLERS.get(token)
        return found[0] if found else None


def routes() -> list[tuple[str, str]]:
    app = create_app(Store("sqlite://"))
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]


ROUTES = routes()
SAMPLE_PARAMETERS = {"kind": "server", "resource_id": "vm-a", "resource": "vm-a"}


def url(template: str) -> str:
    """The template with sample path parameters (ids 1, names x)."""
    filled = re.sub(
        r"\{([^}]+)\}",
        lambda m: SAMPLE_PARAMETERS.get(
            m.group(1), "1" if m.group(1).endswith("_id") or m.group(1) == "seq" else "x"
        ),
        template,
    )
    return filled + ("?kind=server" if template == "/v1/resources" else "")


def call(client: TestClient, method: str, template: str, token: str | None) -> int:
    headers = {"X-Auth-Token": token} if token else {}
    body: Any = None if method in ("GET", "DELETE") else {}
    return client.request(method, url(template), headers=headers, json=body).status_code


@pytest.fixture
def client(store: Store) -> TestClient:
    record(store, server=[{"id": "a", "name": "vm-a", "project_id": OWN, "status": "ACTIVE"}])
    return TestClient(create_app(store, StubAuth("authenticated")), raise_server_exceptions=False)


def test_every_route_has_one_rule() -> None:
    missing = [route for route in ROUTES if route not in rbac.RULES]
    assert not missing, f"routes without a rule in api/rbac.py RULES: {missing}"
    documented_elsewhere = {
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/openapi.json"),
        ("GET", "/redoc"),
        # the dashboard (web/): its shell and assets, outside the OpenAPI document
        ("GET", "/"),
        ("GET", "/ui"),
        ("GET", "/ui/{path}"),
    }
    stale = set(rbac.RULES) - set(ROUTES) - documented_elsewhere
    assert not stale, f"rules for routes that do not exist: {stale}"


@pytest.mark.parametrize("caller", [*CALLERS, None])
def test_every_route_with_every_caller(client: TestClient, caller: str | None) -> None:
    """Denied is 403 (401 without a token); allowed and filtered get past the check
    (whatever the route then answers: 200, 400 for the sample body, 404, 503)."""
    wrong = []
    for method, template in ROUTES:
        rule = rbac.RULES[(method, template)]
        status = call(client, method, template, caller)
        if caller is None:
            expected_denied = rule is not rbac.Rule.PUBLIC
            denied_status = 401
        else:
            decision = rbac.decide(rule, CALLERS[caller][1])
            expected_denied = decision is rbac.Decision.DENY
            denied_status = 403
        if expected_denied and status != denied_status:
            wrong.append(f"{method} {template}: {status}, expected {denied_status}")
        if not expected_denied and status in (401, 403):
            wrong.append(f"{method} {template}: {status}, expected to pass")
    assert not wrong, "\n".join(wrong)


def test_the_roles_of_tokens() -> None:
    for name, (ident, role) in CALLERS.items():
        assert rbac.role_of(ident) is role, name
    assert rbac.role_of(CALLERS["fleet-operator"][0], "other-role") is rbac.Role.NONE


def test_project_tokens_see_only_project_kinds(client: TestClient) -> None:
    reader = {"X-Auth-Token": "reader"}
    own = client.get("/v1/resources", params={"kind": "server"}, headers=reader)
    assert [r["id"] for r in own.json()["items"]] == ["a"]
    fleet = client.get("/v1/resources", params={"kind": "hypervisor"}, headers=reader)
    assert fleet.status_code == 403
    assert "system-scoped" in fleet.json()["error"]["message"]
    assert client.get("/v1/summary", headers=reader).status_code == 403
    system = client.get(
        "/v1/resources", params={"kind": "hypervisor"}, headers={"X-Auth-Token": "system-reader"}
    )
    assert system.status_code == 200


def test_reads_stay_open_without_a_token_when_so_configured(store: Store) -> None:
    client = TestClient(create_app(store, StubAuth("open")))
    assert client.get("/v1/summary").status_code == 200
    assert client.post("/v1/silences", json={"matchers": ["a=b"]}).status_code == 401
    # a token on an open read is still checked and applied
    assert client.get("/v1/summary", headers={"X-Auth-Token": "reader"}).status_code == 403
    assert client.get("/v1/summary", headers={"X-Auth-Token": "bogus"}).status_code == 401


def test_the_local_operator_token(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "data" / "api-token"
    token = write_local_token(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().strip() == token
    assert write_local_token(path) != token  # a new one at each start
    token = path.read_text().strip()
    client = TestClient(create_app(store, LocalAuth(token)))
    silence = {"matchers": ["alertname=x"], "duration": "1h"}
    assert client.post("/v1/silences", json=silence).status_code == 401
    assert (
        client.post("/v1/silences", json=silence, headers={"X-Auth-Token": "x"}).status_code == 401
    )
    made = client.post("/v1/silences", json=silence, headers={"X-Auth-Token": token})
    assert made.status_code == 200, made.text
    assert made.json()["created_by"] == "local-operator"
    bearer = client.post("/v1/silences", json=silence, headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200
    assert client.get("/v1/silences").status_code == 200  # reads open by default


def test_the_api_docs_are_public(store: Store) -> None:
    client = TestClient(create_app(store, StubAuth("authenticated")))
    for path in ("/docs", "/redoc", "/openapi.json", "/healthz"):
        assert client.get(path).status_code == 200, path
    assert client.get("/v1/kinds").status_code == 401


METRICS_STATUS = {
    "admin": 200,
    "fleet-operator": 200,
    "system-admin": 200,
    "system-reader": 200,
    "member": 403,
    "reader": 403,
    "no-role": 403,
    None: 401,
}


@pytest.mark.parametrize("read", ["open", "authenticated"])
@pytest.mark.parametrize("caller", list(METRICS_STATUS))
def test_metrics_are_for_operators_and_system_readers(
    store: Store, read: ReadMode, caller: str | None
) -> None:
    """/metrics is fleet-wide: operators and system readers; no anonymous scrape, even
    with reads open."""
    client = TestClient(create_app(store, StubAuth(read)))
    headers = {"X-Auth-Token": caller} if caller else {}
    assert client.get("/metrics", headers=headers).status_code == METRICS_STATUS[caller]


def test_the_scrape_token_opens_the_metrics_only(store: Store, tmp_path: Path) -> None:
    """The token of --metrics-token-file (the file Prometheus sends with
    authorization.credentials_file) reads /metrics and nothing else; a new token in
    the file is taken without a restart."""
    path = tmp_path / "scrape.token"
    path.write_text("first-scrape-token-0123456789\n")
    client = TestClient(create_app(store, StubAuth("open"), metrics=MetricsAccess(token_file=path)))

    def scrape(token: str) -> int:
        return client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code

    assert scrape("first-scrape-token-0123456789") == 200
    assert scrape("wrong-token") == 401
    assert client.get("/metrics").status_code == 401
    bearer = {"Authorization": "Bearer first-scrape-token-0123456789"}
    assert (
        client.post("/v1/silences", json={"matchers": ["a=b"]}, headers=bearer).status_code == 401
    )
    path.write_text("second-scrape-token-0123456789-rotated\n")
    assert scrape("first-scrape-token-0123456789") == 401
    assert scrape("second-scrape-token-0123456789-rotated") == 200


def test_metrics_public_lets_anyone_scrape(store: Store) -> None:
    client = TestClient(
        create_app(store, StubAuth("authenticated"), metrics=MetricsAccess(public=True))
    )
    assert client.get("/metrics").status_code == 200
    assert client.get("/v1/summary").status_code == 401  # nothing else opens


def test_a_scrape_token_file_others_may_write_or_empty_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scrape.token"
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="at least 16"):
        check_metrics_token_file(path)
    path.write_text("long-enough-scrape-token-0123\n")
    path.chmod(0o666)
    with pytest.raises(ConfigError, match="written by others"):
        check_metrics_token_file(path)
    path.chmod(0o640)
    check_metrics_token_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        check_metrics_token_file(tmp_path / "missing")


@pytest.fixture
def shared_client(store: Store) -> TestClient:
    """Networks, subnets, images and flavors of the reader's project and of another,
    private and shared in each way OpenStack shares them."""
    record(
        store,
        network=[
            {"id": "net-own", "project_id": OWN, "shared": False, "external": False},
            {"id": "net-private", "project_id": OTHER, "shared": False, "external": False},
            {"id": "net-shared", "project_id": OTHER, "shared": True, "external": False},
            {"id": "net-public", "project_id": OTHER, "shared": False, "external": True,
             "network_type": "flat", "segmentation_id": None},
        ],
    )  # fmt: skip
    record(
        store,
        subnet=[
            {"id": "sub-own", "project_id": OWN, "network_id": "net-own"},
            {"id": "sub-private", "project_id": OTHER, "network_id": "net-private"},
            {"id": "sub-shared", "project_id": OTHER, "network_id": "net-shared"},
            # Neutron shows no other project's subnet of an external network
            {"id": "sub-public", "project_id": OTHER, "network_id": "net-public"},
        ],
    )
    record(
        store,
        image=[
            {"id": "img-own", "project_id": OWN, "visibility": "private"},
            {"id": "img-private", "project_id": OTHER, "visibility": "private"},
            {"id": "img-shared", "project_id": OTHER, "visibility": "shared"},
            {"id": "img-public", "project_id": OTHER, "visibility": "public"},
            {"id": "img-community", "project_id": OTHER, "visibility": "community"},
        ],
    )
    record(
        store,
        flavor=[
            {"id": "m1.small", "project_id": None, "is_public": True},
            {"id": "gpu.private", "project_id": None, "is_public": False},
        ],
    )
    record(
        store,
        server=[
            {"id": "vm-own", "project_id": OWN, "status": "ACTIVE", "host": "cmp7",
             "hypervisor_hostname": "cmp7.example", "availability_zone": "nova"},
        ],
    )  # fmt: skip
    return TestClient(create_app(store, StubAuth("authenticated")))


def listed(client: TestClient, caller: str, kind: str) -> set[str]:
    answer = client.get("/v1/resources", params={"kind": kind}, headers={"X-Auth-Token": caller})
    assert answer.status_code == 200, answer.text
    return {r["id"] for r in answer.json()["items"]}


SHARED_VIEW = {
    "network": {"net-own", "net-shared", "net-public"},
    "subnet": {"sub-own", "sub-shared"},
    "image": {"img-own", "img-public", "img-community"},
    "flavor": {"m1.small"},
}


@pytest.mark.parametrize("caller", ["member", "reader"])
@pytest.mark.parametrize("kind", list(SHARED_VIEW))
def test_project_tokens_see_what_openstack_shares_with_them(
    shared_client: TestClient, caller: str, kind: str
) -> None:
    """Shared and external networks, subnets of shared networks, public and community
    images, public flavors: what Neutron, Glance and Nova show a project; never another
    project's private resource."""
    assert listed(shared_client, caller, kind) == SHARED_VIEW[kind]
    every = listed(shared_client, "system-reader", kind)
    headers = {"X-Auth-Token": caller}
    for resource in every:
        status = shared_client.get(f"/v1/resources/{kind}/{resource}", headers=headers)
        expected = 200 if resource in SHARED_VIEW[kind] else 404
        assert status.status_code == expected, (resource, status.text)


def test_a_shared_networks_detail_shows_a_project_no_other_projects_port(
    store: Store, shared_client: TestClient
) -> None:
    record(
        store,
        port=[
            {"id": "port-own", "project_id": OWN, "network_id": "net-shared"},
            {"id": "port-other", "project_id": OTHER, "network_id": "net-shared"},
        ],
    )

    def ports(caller: str) -> set[str]:
        answer = shared_client.get(
            "/v1/resources/network/net-shared", headers={"X-Auth-Token": caller}
        )
        return {r["id"] for r in answer.json()["relations"].get("ports", [])}

    assert ports("reader") == {"port-own"}
    assert ports("system-reader") == {"port-own", "port-other"}


@pytest.mark.parametrize("caller", ["member", "reader"])
def test_project_tokens_never_see_host_fields(shared_client: TestClient, caller: str) -> None:
    """As Nova's policy hides OS-EXT-SRV-ATTR:* (and Neutron binding:* and provider:*)
    from a project: no host in listings, details or history, and no filtering by it."""
    headers = {"X-Auth-Token": caller}
    [own] = shared_client.get("/v1/resources", params={"kind": "server"}, headers=headers).json()[
        "items"
    ]
    assert "host" not in own and "hypervisor_hostname" not in own
    assert own["availability_zone"] == "nova"  # Nova shows the zone to everyone
    detail = shared_client.get("/v1/resources/server/vm-own", headers=headers).json()
    assert "host" not in detail and "hypervisor_hostname" not in detail
    assert not [c for c in detail["changes"] if c["field"] == "host"]
    by_host = shared_client.get(
        "/v1/resources", params={"kind": "server", "host": "cmp7"}, headers=headers
    )
    assert by_host.status_code == 403 and "administrators only" in by_host.text
    network = shared_client.get("/v1/resources/network/net-public", headers=headers).json()
    assert "network_type" not in network and "segmentation_id" not in network
    # a system reader sees them
    system = {"X-Auth-Token": "system-reader"}
    assert shared_client.get("/v1/resources/server/vm-own", headers=system).json()["host"] == "cmp7"


def test_docs_security_has_the_policy_table() -> None:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert rbac.policy_table() in text, "regenerate the table: rbac.policy_table()"


@pytest.mark.parametrize("path", ["/ui/", "/ui/hosts/cmp1", "/ui/static/app/main.js", "/docs"])
def test_the_dashboard_shell_needs_no_token_even_when_reads_do(client: TestClient, path: str):
    """The page must load to ask for a token: its shell and scripts are public, while
    the data it reads is not (reads authenticated here)."""
    assert client.get(path).status_code == 200
    assert client.get("/v1/overview").status_code == 401
