"""`stackfleet workload ...` against the simulated cloud: list and show by labels, each
changing verb dry-run first then through the gate and the audit log (the member re-read
before acting), console URL and logs; approvals carried out by `stackfleet approve`;
workloads in the inventory and in the API (plan and apply with a spec body)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from stackfleet.api.app import create_app
from stackfleet.cli.main import app
from stackfleet.core.errors import StackFleetError
from stackfleet.provision.manage import UnsupportedVerb, WorkloadManager, WorkloadView
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store
from stackfleet.store.audit import AuditLog

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

SPEC = """workloads:
  - name: web
    count: 2
    project: alpha-01
    image: IMAGE
    size: m1.tiny
    networks: [alpha-01-net]
    timeout: 20s
"""


class Outcome:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


@pytest.fixture
def cloud(tmp_path, monkeypatch) -> Iterator[tuple[SimulatorServer, Path]]:
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", "sim")
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        monkeypatch.setenv("OS_CLOUD", "sim")
        monkeypatch.delenv("OS_AUTH_URL", raising=False)
        monkeypatch.delenv("STACKFLEET_CONFIG", raising=False)
        monkeypatch.setenv("STACKFLEET_CONFIG_DIR", str(tmp_path))
        yield server, tmp_path


def region(server: SimulatorServer):
    return server.state.regions["RegionOne"]


def images(server: SimulatorServer) -> list[str]:
    return sorted(
        i["name"]
        for i in region(server).images.values()
        if i["status"] == "active" and i.get("visibility") == "public"
    )


def spec_text(server: SimulatorServer) -> str:
    return SPEC.replace("IMAGE", images(server)[0])


def cli(tmp: Path, *args: str) -> Outcome:
    result = CliRunner().invoke(app, ["--db-url", f"sqlite:///{tmp / 'store.db'}", *args])
    if result.exception and not isinstance(result.exception, (StackFleetError, SystemExit)):
        import traceback

        traceback.print_exception(result.exception)
    if isinstance(result.exception, StackFleetError):
        return Outcome(result.exception.exit_code, result.output + f"Error: {result.exception}")
    return Outcome(result.exit_code, result.output)


def members(server: SimulatorServer) -> dict[str, dict]:
    return {
        s["name"]: s
        for s in region(server).servers.values()
        if s.get("metadata", {}).get("stackfleet-workload") == "web"
    }


def applied(server: SimulatorServer, tmp: Path) -> None:
    spec = tmp / "web.yaml"
    spec.write_text(spec_text(server))
    done = cli(tmp, "provision", "apply", str(spec), "--execute")
    assert done.exit_code == 0, done.output


def test_list_and_show_find_workloads_by_their_labels_only(cloud):
    server, tmp = cloud
    applied(server, tmp)
    listed = cli(tmp, "workload", "list", "--project", "alpha-01", "-f", "json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["workload"], r["members"], r["active"]) for r in rows] == [("web", 2, 2)]
    shown = cli(tmp, "workload", "show", "web", "--project", "alpha-01", "-f", "json")
    assert [r["member"] for r in json.loads(shown.output)] == ["web-1", "web-2"]
    missing = cli(tmp, "workload", "show", "wbe", "--project", "alpha-01")
    assert missing.exit_code == 4 and "closest: web" in missing.output


def test_stop_is_a_dry_run_then_acts_through_the_gate_and_audit(cloud):
    server, tmp = cloud
    applied(server, tmp)
    dry = cli(tmp, "workload", "stop", "web", "--project", "alpha-01")
    assert dry.exit_code == 0 and "dry-run" in dry.output
    assert all(s["status"] == "ACTIVE" for s in members(server).values())
    done = cli(
        tmp, "workload", "stop", "web", "--project", "alpha-01", "--member", "web-1",
        "--execute", "-f", "json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert [(r["member"], r["status"]) for r in json.loads(done.output)] == [("web-1", "succeeded")]
    assert members(server)["web-1"]["status"] == "SHUTOFF"
    assert members(server)["web-2"]["status"] == "ACTIVE"
    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    events = [e["event"] for e in AuditLog(store).list(policy="provision/web", limit=100)[0]]
    assert "action.started" in events and "action.completed" in events
    again = cli(tmp, "workload", "start", "web", "--project", "alpha-01", "--execute", "-f", "json")
    statuses = {r["member"]: r["status"] for r in json.loads(again.output)}
    assert statuses == {"web-1": "succeeded", "web-2": "unchanged"}
    assert members(server)["web-1"]["status"] == "ACTIVE"


def test_a_member_excluded_since_it_was_listed_is_left_alone(cloud):
    server, tmp = cloud
    applied(server, tmp)
    members(server)["web-2"]["tags"].append("stackfleet-exclude")
    done = cli(tmp, "workload", "reboot", "web", "--project", "alpha-01", "--execute", "-f", "json")
    statuses = {r["member"]: r["status"] for r in json.loads(done.output)}
    assert statuses == {"web-1": "succeeded", "web-2": "excluded"}


def test_resize_rebuild_console_url_and_logs(cloud):
    server, tmp = cloud
    applied(server, tmp)
    resized = cli(
        tmp, "workload", "resize", "web", "--project", "alpha-01", "--size", "m1.small",
        "--member", "2", "--execute",
    )  # fmt: skip
    assert resized.exit_code == 0, resized.output
    assert members(server)["web-2"]["flavor"]["original_name"] == "m1.small"
    assert members(server)["web-2"]["status"] == "ACTIVE", "the resize was confirmed"
    bad = cli(tmp, "workload", "resize", "web", "--project", "alpha-01", "--size", "m1.smal")
    assert bad.exit_code == 2 and "closest: m1.small" in bad.output
    image = images(server)[-1]
    rebuilt = cli(
        tmp, "workload", "rebuild", "web", "--project", "alpha-01", "--image", image,
        "--member", "web-1", "--execute",
    )  # fmt: skip
    assert rebuilt.exit_code == 0, rebuilt.output
    image_id = next(i["id"] for i in region(server).images.values() if i["name"] == image)
    assert members(server)["web-1"]["image"]["id"] == image_id
    urls = cli(tmp, "workload", "console-url", "web", "--project", "alpha-01", "-f", "json")
    assert all("token" in r["url"] for r in json.loads(urls.output))
    logs = cli(tmp, "workload", "logs", "web", "--project", "alpha-01", "--member", "1")
    assert logs.exit_code == 0 and "web-1 login:" in logs.output


def test_delete_verb_deletes_only_members(cloud):
    server, tmp = cloud
    applied(server, tmp)
    done = cli(tmp, "workload", "delete", "web", "--project", "alpha-01", "--execute")
    assert done.exit_code == 0, done.output
    assert not members(server)


def test_a_verb_the_backend_cannot_do_says_so():
    view = WorkloadView("rack", "some-backend", "p")
    with pytest.raises(UnsupportedVerb, match="some-backend workload .*: it has no resize"):
        WorkloadManager.check_verb(view, "resize")


def test_approvals_queue_creates_and_approve_carries_them_out(cloud, monkeypatch):
    server, tmp = cloud
    monkeypatch.setenv("STACKFLEET_CONFIG", str(tmp / "stackfleet.yaml"))
    (tmp / "stackfleet.yaml").write_text("provision:\n  require_approval: true\n")
    spec = tmp / "web.yaml"
    spec.write_text(spec_text(server))
    queued = cli(tmp, "provision", "apply", str(spec), "--execute", "-f", "json")
    assert queued.exit_code == 0, queued.output
    rows = json.loads(queued.output)
    assert {r["status"] for r in rows} == {"awaiting-approval"}
    assert not members(server), "nothing created before approval"
    again = cli(tmp, "provision", "apply", str(spec), "--execute", "-f", "json")
    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    from stackfleet.store import action_records

    waiting, total = action_records.list_actions(store, "awaiting-approval")
    assert total == 2, "a second apply queues nothing twice"
    assert again.exit_code == 0
    first = min(r["id"] for r in waiting)
    approved = cli(tmp, "approve", str(first), "--as", "ops")
    assert approved.exit_code == 0, approved.output
    assert "succeeded" in approved.output
    assert len(members(server)) == 1
    assert action_records.get(store, first)["status"] == "succeeded"


def test_workloads_in_the_inventory_and_the_api(cloud):
    server, tmp = cloud
    applied(server, tmp)
    collected = cli(tmp, "collect", "--os-cloud", "sim", "--kind", "server")
    assert collected.exit_code == 0, collected.output
    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    client = TestClient(create_app(store))
    listed = client.get("/v1/workloads").json()
    assert [(w["name"], w["member_count"], w["status"]) for w in listed["items"]] == [
        ("web", 2, "ACTIVE")
    ]
    one = client.get("/v1/workloads/web")
    assert one.status_code == 200, one.text
    assert sorted(r["name"] for r in one.json()["relations"]["members"]) == ["web-1", "web-2"]
    assert client.get("/v1/workloads/nope").status_code == 404


def test_api_plan_and_apply_take_a_spec_body(cloud):
    server, tmp = cloud
    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    client = TestClient(create_app(store))
    body = {"spec": spec_text(server)}
    plan = client.post("/v1/workloads/plan", json=body)
    assert plan.status_code == 200, plan.text
    assert plan.json()["workloads"][0]["counts"]["create"] == 2
    dry = client.post("/v1/workloads/apply", json=body).json()
    assert not dry["executed"] and not members(server)
    done = client.post("/v1/workloads/apply", json={**body, "execute": True})
    assert done.status_code == 200, done.text
    assert sorted(o["status"] for o in done.json()["outcomes"]) == ["active", "active"]
    assert sorted(members(server)) == ["web-1", "web-2"]
    bad = client.post(
        "/v1/workloads/plan", json={"spec": "workloads:\n  - name: x\n    flavour: 1\n"}
    )
    assert bad.status_code == 400 and "<request body>:3" in bad.json()["error"]["message"]


def test_api_apply_goes_through_approvals_and_the_api_approve_carries_it_out(cloud, monkeypatch):
    server, tmp = cloud
    (tmp / "stackfleet.yaml").write_text("provision:\n  require_approval: true\n")
    monkeypatch.setenv("STACKFLEET_CONFIG", str(tmp / "stackfleet.yaml"))
    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    client = TestClient(create_app(store))
    queued = client.post("/v1/workloads/apply", json={"spec": spec_text(server), "execute": True})
    assert queued.status_code == 200, queued.text
    assert {o["status"] for o in queued.json()["outcomes"]} == {"awaiting-approval"}
    assert not members(server)
    waiting = client.get("/v1/actions", params={"status": "awaiting-approval"}).json()["items"]
    assert len(waiting) == 2
    approved = client.post(f"/v1/actions/{waiting[0]['id']}/approve", json={"actor": "ops"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "succeeded"
    assert len(members(server)) == 1
