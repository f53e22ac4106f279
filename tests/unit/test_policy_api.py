"""The policy endpoints of the REST API: findings, validation, the audit log, approvals
and leases."""

from __future__ import annotations

import pytest
from api_records import APPROVAL_POLICY, lease, record
from fastapi.testclient import TestClient
from sinks import Capture

from stackfleet.api.app import create_app
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy import load_text


@pytest.fixture
def client(store):
    record(
        store,
        server=[
            {"id": "a", "name": "vm-a", "project_id": "p1", "status": "ERROR", "tags": []},
            {"id": "b", "name": "vm-b", "project_id": "p1", "status": "ACTIVE", "tags": []},
        ],
    )
    return TestClient(create_app(store))


POLICY = APPROVAL_POLICY


def test_findings_are_listed_and_shown(store, client):
    PolicyRunner(store).run(load_text(POLICY))
    page = client.get("/v1/findings", params={"status": "open"}).json()
    assert page["total"] == 1
    [finding] = page["items"]
    assert (finding["policy"], finding["resource_id"], finding["status"]) == ("errors", "a", "open")
    assert client.get(f"/v1/findings/{finding['id']}").json()["resource_name"] == "vm-a"
    assert client.get("/v1/findings/999").status_code == 404


def test_validate_answers_valid_policies_and_located_problems(client):
    good = client.post("/v1/policies/validate", json={"text": POLICY}).json()
    assert good["valid"] is True
    assert good["policies"] == [
        {
            "name": "errors",
            "resource": "server",
            "filters": 1,
            "actions": ["notify"],
            "mode": "periodic",
        }
    ]
    bad = client.post(
        "/v1/policies/validate",
        json={
            "text": "policies:\n  - name: x\n    resource: server\n    actions: [release]\n",
            "source": "x.yaml",
        },
    ).json()
    assert bad["valid"] is False
    [problem] = bad["problems"]
    assert (problem["file"], problem["line"], problem["field"]) == (
        "x.yaml",
        4,
        "policy 'x' actions[0].type",
    )


def test_the_approvals_queue_through_the_api(store, client):
    hook = Capture()  # the approved notice must reach someone to count as done
    runner = PolicyRunner(store, Settings.model_validate({"notify": {"webhook": hook.url}}))
    runner.run(load_text(POLICY), execute=True)
    [waiting] = client.get("/v1/actions", params={"status": "awaiting-approval"}).json()["items"]
    approved = client.post(f"/v1/actions/{waiting['id']}/approve", json={"actor": "carol"})
    assert approved.json()["status"] == "approved" and approved.json()["approved_by"] == "carol"
    assert client.post(f"/v1/actions/{waiting['id']}/approve").status_code == 409
    runner.run(load_text(POLICY), execute=True)
    assert client.get(f"/v1/actions/{waiting['id']}/approve").status_code == 405
    assert client.get("/v1/actions", params={"status": "succeeded"}).json()["total"] == 1
    assert len(hook.posts) == 1
    hook.close()


def test_a_cross_site_browser_form_cannot_approve_an_action(store, client):
    runner = PolicyRunner(store)
    runner.run(load_text(POLICY), execute=True)
    [waiting] = client.get("/v1/actions", params={"status": "awaiting-approval"}).json()["items"]
    url = f"/v1/actions/{waiting['id']}/approve"
    # what a browser sends with a form posted from another site to 127.0.0.1
    forged = client.post(
        url,
        data={"actor": "mallory"},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status_code == 403 and "cross-site" in forged.json()["error"]["message"]
    # older browsers send only Origin
    assert client.post(url, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post(url, headers={"Origin": "null"}).status_code == 403
    still = client.get("/v1/actions", params={"status": "awaiting-approval"}).json()
    assert still["total"] == 1
    # the API's own pages (same origin) and non-browser clients may write
    same = client.post(
        url,
        json={"actor": "carol"},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 200 and same.json()["approved_by"] == "carol"


def test_the_audit_log_through_the_api(store, client):
    runner = PolicyRunner(store)
    runner.run(load_text(POLICY), execute=True)
    entries = client.get("/v1/audit").json()
    assert entries["total"] == 1 and entries["items"][0]["event"] == "approval.requested"
    assert client.get("/v1/audit/1").json()["hash"] == entries["items"][0]["hash"]
    assert client.get("/v1/audit/verify").json()["ok"] is True
    assert client.get("/v1/audit/42").status_code == 404


def test_an_owner_extends_a_lease_through_the_api(store, client):
    lease(store, "a", "p1")
    extended = client.post("/v1/leases/vm-a/extend", json={"days": 4, "actor": "owner"})
    assert extended.status_code == 200
    [extended_lease] = extended.json()["items"]
    assert extended_lease["extended_days"] == 4
    over = client.post("/v1/leases/a/extend", json={"days": 7})
    assert over.status_code == 409
    assert "6 days are left" in over.json()["error"]["message"]
    assert client.post("/v1/leases/nothing/extend", json={"days": 1}).status_code == 404
    unknown = client.post("/v1/leases/a/extend", json={"days": 1, "by": "owner"})
    assert unknown.status_code == 400 and "'by'" in unknown.json()["error"]["message"]
    assert client.get("/v1/leases").json()["items"][0]["resource_id"] == "a"


def test_the_openapi_document_lists_the_policy_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/findings",
        "/v1/policies/validate",
        "/v1/audit/verify",
        "/v1/alerts",
        "/v1/silences",
    ):
        assert path in paths
