"""POST /v1/campaigns/{name}/approve and /rollback: the batch approval and the rollback
the CLI has, over HTTP — audited as the caller, 409 when the campaign's state does not
allow it, 400 naming the field for a bad body, and a rollback is a dry-run unless asked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stackfleet.api import create_app
from stackfleet.patching.spec import CampaignSpec
from stackfleet.store import Store, open_store
from stackfleet.store import patching as records

HOSTS = ["cmp-001", "cmp-002", "cmp-003"]
SERVICE = "nova-compute"
STEPS = ["pre-check", "drain", "apply", "restart", "gate", "undrain"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'stackfleet.db'}")
    yield opened
    opened.close()


@pytest.fixture
def client(store: Store) -> TestClient:
    return TestClient(create_app(store))


def campaign(store: Store, name: str, status: str, waiting_batch: int | None = None) -> None:
    """A campaign in `status`: the canary (cmp-001) done, the next batch not started."""
    spec = CampaignSpec.model_validate(
        {
            "name": name,
            "cloud": "sim",
            "targets": {"hosts": {"names": HOSTS}, "services": [SERVICE]},
        }
    ).model_dump(mode="json")
    batches = [HOSTS[:1], HOSTS[1:]]
    plan: dict[str, Any] = {"name": name, "cloud": "sim", "batches": batches}
    if waiting_batch is not None:
        plan["waiting_batch"] = waiting_batch
    steps = [(h, b, i, s) for b, hs in enumerate(batches) for h in hs for i, s in enumerate(STEPS)]
    now = datetime.now(UTC)
    cid = records.create_campaign(store, name, spec, plan, "", steps, now, status=status)
    for step in records.steps_of(store, cid):
        if step["host"] == HOSTS[0]:
            records.set_step(store, step["id"], status="done")


def record_tested_revision(store: Store, host: str, digest: str) -> None:
    now = datetime.now(UTC)
    records.save_revision(store, host, SERVICE, digest, {"nova.conf": {}}, now)
    records.mark_tested(store, host, SERVICE, digest, now, "earlier-campaign")


def conflict(client: TestClient, path: str, body: dict[str, Any] | None = None) -> str:
    """POST `path`, expecting a 409; its message."""
    answer = client.post(path, json=body)
    assert answer.status_code == 409, answer.text
    message: str = answer.json()["error"]["message"]
    return message


def audit_events(client: TestClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/v1/audit", params={"limit": 50}).json()["items"]
    return items


def test_approving_the_waiting_batch_sets_the_campaign_running_audited(
    store: Store, client: TestClient
) -> None:
    campaign(store, "k1", "awaiting-approval", waiting_batch=1)
    answer = client.post("/v1/campaigns/k1/approve", json={"actor": "alice"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "running"
    assert answer.json()["approved_batches"] == [1]
    [entry] = [e for e in audit_events(client) if e["event"] == "campaign.batch-approved"]
    assert entry["actor"] == "alice"


def test_approving_a_campaign_no_batch_waits_on_is_a_conflict(
    store: Store, client: TestClient
) -> None:
    campaign(store, "k1", "running")
    assert "no batch waits" in conflict(client, "/v1/campaigns/k1/approve")


def test_a_rollback_is_a_dry_run_naming_the_revisions_it_would_put_back(
    store: Store, client: TestClient
) -> None:
    campaign(store, "k1", "halted")
    record_tested_revision(store, HOSTS[0], "a" * 64)
    answer = client.post("/v1/campaigns/k1/rollback", json={})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["execute"] is False and body["results"] is None
    assert [(t["host"], t["service"], t["digest"]) for t in body["targets"]] == [
        (HOSTS[0], SERVICE, "a" * 64)
    ]
    assert not [e for e in audit_events(client) if "roll" in e["event"]]


def test_a_rollback_of_a_host_without_a_tested_revision_is_refused(
    store: Store, client: TestClient
) -> None:
    campaign(store, "k1", "halted")
    said = conflict(client, "/v1/campaigns/k1/rollback", {"hosts": [HOSTS[0]]})
    assert f"{SERVICE} on {HOSTS[0]}" in said


def test_a_running_campaign_is_not_rolled_back_under_its_runner(
    store: Store, client: TestClient
) -> None:
    campaign(store, "k1", "running")
    record_tested_revision(store, HOSTS[0], "a" * 64)
    assert "pause or abort it" in conflict(client, "/v1/campaigns/k1/rollback", {"execute": True})


def test_a_paused_campaign_whose_process_still_holds_it_is_not_rolled_back(
    store: Store, client: TestClient
) -> None:
    campaign(store, "k1", "paused")
    record_tested_revision(store, HOSTS[0], "a" * 64)
    now = datetime.now(UTC)
    cid = records.get_campaign(store, "k1")["id"]
    assert records.claim_campaign(store, cid, "other-node:4242", now, now)
    # the dry-run still answers; the rollback waits until the process lets go
    assert client.post("/v1/campaigns/k1/rollback", json={}).status_code == 200
    said = conflict(client, "/v1/campaigns/k1/rollback", {"execute": True})
    assert "still being carried out by other-node:4242" in said


@pytest.mark.parametrize(
    ("body", "field", "said"),
    [
        ({"hosts": ["cmp-01"]}, "hosts", "not in campaign k1"),
        ({"hosts": [""]}, "hosts.0", "at least 1 character"),
        ({"hosts": []}, "hosts", "at least 1 item"),
        ({"hosts": [f"h{i}" for i in range(1001)]}, "hosts", "at most 1000 items"),
        ({"host": ["cmp-001"]}, "host", "Extra inputs"),
        ({"execute": "perhaps"}, "execute", "boolean"),
    ],
)
def test_a_bad_rollback_body_is_a_400_naming_the_field(
    store: Store, client: TestClient, body: dict[str, Any], field: str, said: str
) -> None:
    campaign(store, "k1", "halted")
    answer = client.post("/v1/campaigns/k1/rollback", json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["field"] == field
    assert said in error["message"]
