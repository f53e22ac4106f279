"""The API's policy table with real tokens from the simulator's Keystone: project
readers and members read only their project's resources, findings, actions, leases,
alerts and audit entries and get 403 on fleet-wide routes; a system reader reads the
whole fleet but writes nothing; a user with the operator role (`fleet-operator`, not
admin) approves. Users and role grants are added to the simulated Keystone the way an
operator would (`openstack role create`, `role add --system all`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from api_records import APPROVAL_POLICY, add_user, keystone_token, lease, record
from fastapi.testclient import TestClient

from stackfleet.alerts.lifecycle import ingest
from stackfleet.api.app import create_app
from stackfleet.api.auth import KeystoneAuth
from stackfleet.engine.policies import PolicyRunner
from stackfleet.policy import load_text
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack.connection import connect
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("rbac")
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        projects = {p["name"]: p["id"] for p in server.state.projects.values()}
        own, other = (
            projects["alpha-01"],
            next(i for n, i in projects.items() if n not in ("alpha-01", "admin", "service")),
        )
        add_user(server, "fleet-auditor", "system", "reader")
        add_user(server, "night-shift", other, "fleet-operator")
        admin = connect(CLOUD, config_files=[str(clouds)])[0].conn
        yield {
            "admin": admin,
            "own": own,
            "other": other,
            "tokens": {
                "admin": admin.auth_token,
                "member": keystone_token(server, "alpha-01-user", "alpha-01"),
                "reader": keystone_token(server, "alpha-01-viewer", "alpha-01"),
                "system-reader": keystone_token(server, "fleet-auditor", None),
                "fleet-operator": keystone_token(
                    server, "night-shift", server.state.projects[other]["name"]
                ),
            },
        }


@pytest.fixture
def client(store: Store, cloud: dict[str, Any]) -> TestClient:
    """Two servers in ERROR, one in the readers' project (a) and one in another (b),
    each with a finding, an action awaiting approval, a lease, an audit entry and an
    alert labelled with its project; plus a hypervisor."""
    record(
        store,
        server=[
            {"id": "a", "name": "vm-a", "project_id": cloud["own"], "status": "ERROR"},
            {"id": "b", "name": "vm-b", "project_id": cloud["other"], "status": "ERROR"},
        ],
        hypervisor=[
            {
                "id": "h1",
                "name": "cmp1",
                "project_id": None,
                "status": "enabled",
                "hypervisor_hostname": "cmp1",
            }
        ],
    )
    lease(store, "a", cloud["own"])
    lease(store, "b", cloud["other"])
    PolicyRunner(store).run(load_text(APPROVAL_POLICY), execute=True)
    for resource in ("a", "b"):
        AuditLog(store).append("note", {}, actor="t", target=f"c/r/server/{resource}")
    ingest(
        store,
        [
            {"labels": {"alertname": "Down", "project_id": cloud["own"]}},
            {"labels": {"alertname": "Down", "project_id": cloud["other"]}},
            {"labels": {"alertname": "DiskFull", "host": "cmp1"}},
        ],
        "api",
        NOW,
    )
    auth = KeystoneAuth(cloud["admin"], read="authenticated", cloud=CLOUD)
    return TestClient(create_app(store, auth))


def get(client: TestClient, cloud: dict[str, Any], who: str, path: str, **params: Any) -> Any:
    answer = client.get(path, params=params, headers={"X-Auth-Token": cloud["tokens"][who]})
    return answer


def resource_ids(client: TestClient, cloud: dict[str, Any], who: str) -> dict[str, set[str]]:
    """What `who` sees of each project-bound listing: resource ids."""

    def items(path: str, **params: Any) -> list[dict[str, Any]]:
        answer = get(client, cloud, who, path, **params)
        assert answer.status_code == 200, (who, path, answer.text)
        return list(answer.json()["items"])

    return {
        "resources": {r["id"] for r in items("/v1/resources", kind="server")},
        "findings": {f["resource_id"] for f in items("/v1/findings")},
        "actions": {a["resource_id"] for a in items("/v1/actions")},
        "leases": {lease["resource_id"] for lease in items("/v1/leases")},
        "audit": {
            e["target"].rsplit("/", 1)[1] for e in items("/v1/audit", event="note") if e["target"]
        },
        "alerts": {a["labels"].get("project_id", "-") for a in items("/v1/alerts")},
    }


@pytest.mark.parametrize("who", ["member", "reader"])
def test_project_tokens_read_only_their_project(
    client: TestClient, cloud: dict[str, Any], who: str
) -> None:
    seen = resource_ids(client, cloud, who)
    assert seen == {
        "resources": {"a"},
        "findings": {"a"},
        "actions": {"a"},
        "leases": {"a"},
        "audit": {"a"},
        "alerts": {cloud["own"]},
    }
    # another project's objects are not found (not confirmed to exist), as in Nova
    assert get(client, cloud, who, "/v1/resources/server/b").status_code == 404
    assert get(client, cloud, who, "/v1/resources/server/a").status_code == 200
    [other_finding] = [
        f
        for f in get(client, cloud, "admin", "/v1/findings").json()["items"]
        if f["resource_id"] == "b"
    ]
    assert get(client, cloud, who, f"/v1/findings/{other_finding['id']}").status_code == 404
    assert get(client, cloud, who, "/v1/usage/servers/b").status_code == 404
    # fleet-wide data: 403
    for path in ("/v1/summary", "/v1/hypervisors", "/v1/jobs", "/v1/capacity", "/v1/passes"):
        if path == "/v1/hypervisors":
            answer = get(client, cloud, who, "/v1/resources", kind="hypervisor")
        else:
            answer = get(client, cloud, who, path)
        assert answer.status_code == 403, (path, answer.text)


def test_a_system_reader_reads_the_fleet_and_writes_nothing(
    client: TestClient, cloud: dict[str, Any]
) -> None:
    seen = resource_ids(client, cloud, "system-reader")
    assert seen["resources"] == seen["findings"] == seen["actions"] == {"a", "b"}
    assert seen["leases"] == seen["audit"] == {"a", "b"}
    assert seen["alerts"] == {cloud["own"], cloud["other"], "-"}
    hypervisors = get(client, cloud, "system-reader", "/v1/resources", kind="hypervisor")
    assert [h["id"] for h in hypervisors.json()["items"]] == ["h1"]
    assert get(client, cloud, "system-reader", "/v1/summary").status_code == 200
    [action] = get(client, cloud, "system-reader", "/v1/actions").json()["items"][:1]
    headers = {"X-Auth-Token": cloud["tokens"]["system-reader"]}
    denied = client.post(f"/v1/actions/{action['id']}/approve", headers=headers)
    assert denied.status_code == 403
    extend = client.post("/v1/leases/vm-a/extend", json={"days": 1}, headers=headers)
    assert extend.status_code == 403


def test_the_operator_role_acts_like_admin(client: TestClient, cloud: dict[str, Any]) -> None:
    """night-shift holds fleet-operator (not admin) on a project: an operator, which
    sees and approves everything."""
    seen = resource_ids(client, cloud, "fleet-operator")
    assert seen["resources"] == {"a", "b"}
    actions = get(client, cloud, "fleet-operator", "/v1/actions").json()["items"]
    headers = {"X-Auth-Token": cloud["tokens"]["fleet-operator"]}
    approved = client.post(f"/v1/actions/{actions[0]['id']}/approve", headers=headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"] == "night-shift"
    # the member of the readers' project cannot
    member = {"X-Auth-Token": cloud["tokens"]["member"]}
    denied = client.post(f"/v1/actions/{actions[1]['id']}/approve", headers=member)
    assert denied.status_code == 403


def test_a_member_extends_its_own_lease_and_a_reader_cannot(
    client: TestClient, cloud: dict[str, Any]
) -> None:
    member = {"X-Auth-Token": cloud["tokens"]["member"]}
    reader = {"X-Auth-Token": cloud["tokens"]["reader"]}
    own = client.post("/v1/leases/vm-a/extend", json={"days": 1}, headers=member)
    assert own.status_code == 200, own.text
    other = client.post("/v1/leases/vm-b/extend", json={"days": 1}, headers=member)
    assert other.status_code == 403
    assert (
        client.post("/v1/leases/vm-a/extend", json={"days": 1}, headers=reader).status_code == 403
    )


def test_a_project_view_of_a_resource_names_no_fleet_resource(
    store: Store, client: TestClient, cloud: dict[str, Any]
) -> None:
    """vm-a runs on hypervisor cmp1: operators see the relation and the host, the
    project neither."""
    record(
        store,
        complete=False,
        server=[
            {
                "id": "a",
                "name": "vm-a",
                "project_id": cloud["own"],
                "status": "ERROR",
                "host": "cmp1",
                "hypervisor_hostname": "cmp1",
            }
        ],
    )
    admin_view = get(client, cloud, "admin", "/v1/resources/server/a").json()
    member_view = get(client, cloud, "member", "/v1/resources/server/a").json()
    # nor the host it runs on (Nova's OS-EXT-SRV-ATTR:host is admin-only)
    assert admin_view["host"] == "cmp1"
    assert "host" not in member_view and "hypervisor_hostname" not in member_view
    admin, member = admin_view["relations"], member_view["relations"]
    admin_kinds = {r["kind"] for related in admin.values() for r in related}
    member_kinds = {r["kind"] for related in member.values() for r in related}
    assert "hypervisor" not in member_kinds
    assert "hypervisor" in admin_kinds, admin
