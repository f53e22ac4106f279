"""Orphans and project purge against the simulated cloud: the waste pack's orphan rules
find the resources of a project deleted from Keystone (and nothing of living projects);
`stackfleet project purge` plans first, then deletes in dependency order through the
gate and the audit log, stops after a failing phase and resumes on the next run, and
backs volumes up on request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
from typer.testing import CliRunner

from stackfleet.cli.main import app
from stackfleet.core.errors import StackFleetError
from stackfleet.provision.teardown import TEARDOWN
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store
from stackfleet.store.audit import AuditLog

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

OWNED = (
    ("servers", "tenant_id"),
    ("floatingips", "project_id"),
    ("routers", "project_id"),
    ("networks", "project_id"),
    ("security_groups", "project_id"),
    ("snapshots", "os-extended-snapshot-attributes:project_id"),
    ("volumes", "os-vol-tenant-attr:tenant_id"),
)


class Outcome:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


@pytest.fixture
def cloud(tmp_path, monkeypatch) -> Iterator[tuple[SimulatorServer, Path]]:
    with SimulatorServer(preset("small"), zun=True) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", "sim")
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        monkeypatch.setenv("OS_CLOUD", "sim")
        monkeypatch.delenv("OS_AUTH_URL", raising=False)
        monkeypatch.delenv("STACKFLEET_CONFIG", raising=False)
        monkeypatch.setenv("STACKFLEET_CONFIG_DIR", str(tmp_path))
        yield server, tmp_path


def cli(tmp: Path, *args: str) -> Outcome:
    result = CliRunner().invoke(app, ["--db-url", f"sqlite:///{tmp / 'store.db'}", *args])
    if isinstance(result.exception, StackFleetError):
        return Outcome(result.exception.exit_code, result.output + f"Error: {result.exception}")
    return Outcome(result.exit_code, result.output)


def region(server: SimulatorServer):
    return server.state.regions["RegionOne"]


def project_id(server: SimulatorServer, name: str) -> str:
    return next(p["id"] for p in server.state.projects.values() if p["name"] == name)


def owned(server: SimulatorServer, pid: str) -> dict[str, int]:
    counts = {
        attr: sum(1 for o in getattr(region(server), attr).values() if o.get(key) == pid)
        for attr, key in OWNED
    }
    counts["ports"] = sum(
        1
        for p in region(server).ports.values()
        if p.get("project_id") == pid and p.get("device_owner") != "network:dhcp"
    )
    return counts


def delete_project(server: SimulatorServer, pid: str) -> None:
    conn = openstack.connect(**server.connect_kwargs())
    conn.identity.delete_project(pid)
    conn.close()


def test_orphan_rules_find_what_a_deleted_project_left(cloud):
    server, tmp = cloud
    alpha = project_id(server, "alpha-01")
    delete_project(server, alpha)
    assert alpha not in server.state.projects
    assert cli(tmp, "collect", "--os-cloud", "sim").exit_code in (0, 1)
    run = cli(tmp, "policy", "run", "--pack", "waste", "-f", "json")
    assert run.exit_code == 0, run.output
    found = cli(tmp, "findings", "list", "--limit", "1000", "-f", "json")
    rows = [r for r in json.loads(found.output) if r["policy"].startswith("orphaned-")]
    assert rows, found.output
    from stackfleet.store.findings import list_findings

    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    stored, _total = list_findings(store, status="open", limit=1000)
    projects = {f["project_id"] for f in stored if f["policy"].startswith("orphaned-")}
    assert projects == {alpha}, "only the deleted project's"
    policies = {r["policy"] for r in rows}
    assert {"orphaned-servers", "orphaned-volumes", "orphaned-networks", "orphaned-routers",
            "orphaned-security-groups", "orphaned-floating-ips",
            "orphaned-volume-snapshots"} <= policies  # fmt: skip
    servers = [r for r in rows if r["policy"] == "orphaned-servers"]
    assert len(servers) == owned(server, alpha)["servers"]


def test_purge_plans_first_then_deletes_in_order_and_audits(cloud):
    server, tmp = cloud
    alpha, bravo = project_id(server, "alpha-01"), project_id(server, "bravo-01")
    before_bravo = owned(server, bravo)
    plan = cli(tmp, "project", "purge", "alpha-01", "-f", "json")
    assert plan.exit_code == 0, plan.output
    rows = json.loads(plan.output)
    phases = [r["phase"] for r in rows]
    assert phases == sorted(phases, key=[p.name for p in TEARDOWN].index)
    assert "project" not in phases, "the project is deleted only when asked"
    assert phases.count("servers") == owned(server, alpha)["servers"]
    assert any(owned(server, alpha).values()), "the plan deleted nothing"
    done = cli(tmp, "project", "purge", "alpha-01", "--execute", "-f", "json")
    assert done.exit_code == 0, done.output
    assert not any(owned(server, alpha).values()), owned(server, alpha)
    assert owned(server, bravo) == before_bravo, "another project untouched"
    assert alpha in server.state.projects, "the project itself is kept"
    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    events = [e["event"] for e in AuditLog(store).list(policy=f"purge/{alpha}", limit=1000)[0]]
    assert "purge.started" in events and "purge.finished" in events
    assert events.count("action.completed") == len(rows)
    again = cli(tmp, "project", "purge", "alpha-01", "--execute")
    assert again.exit_code == 0 and "owns nothing" in again.output


def test_a_failing_phase_stops_the_purge_and_a_second_run_resumes(cloud):
    server, tmp = cloud
    alpha, bravo = project_id(server, "alpha-01"), project_id(server, "bravo-01")
    delete_project(server, alpha)
    network = next(n for n in region(server).networks.values() if n["project_id"] == alpha)
    # another project's port on the purged project's network: Neutron refuses the delete
    blocker = {
        "id": "blocker-port", "name": "blocker", "project_id": bravo, "tenant_id": bravo,
        "network_id": network["id"], "device_id": "", "device_owner": "", "fixed_ips": [],
        "status": "DOWN", "admin_state_up": True, "security_groups": [],
        "mac_address": "fa:16:3e:00:00:01",
    }  # fmt: skip
    region(server).ports["blocker-port"] = blocker
    first = cli(tmp, "project", "purge", alpha, "--execute", "-f", "json")
    assert first.exit_code == 5, first.output
    assert "stopped after networks" in first.output
    assert owned(server, alpha)["servers"] == 0
    assert owned(server, alpha)["volumes"] > 0, "later phases not started"
    del region(server).ports["blocker-port"]
    second = cli(tmp, "project", "purge", alpha, "--execute", "-f", "json")
    assert second.exit_code == 0, second.output
    assert not any(owned(server, alpha).values())
    assert {r["phase"] for r in json.loads(second.output)} >= {"networks", "volumes"}


def test_backup_backs_volumes_up_before_deleting_them(cloud):
    """The simulated project has volumes in `error` (no backup possible) and more
    volume data than its backup quota: those volumes are kept, the others are backed
    up, then deleted; the purge says it stopped."""
    server, tmp = cloud
    done = cli(
        tmp, "project", "purge", "alpha-01", "--execute", "--backup", "--timeout", "30",
        "-f", "json",
    )  # fmt: skip
    volumes = [r for r in json.loads(done.output.split("Error:")[0]) if r["kind"] == "volume"]
    deleted = [r["id"] for r in volumes if r["status"] == "succeeded"]
    kept = [r["id"] for r in volumes if r["status"] == "failed"]
    assert deleted and kept
    backed_up = {b.get("volume_id") for b in region(server).backups.values()}
    assert set(deleted) <= backed_up, "every deleted volume was backed up first"
    assert all(v in region(server).volumes for v in kept), "no backup, no deletion"
    assert done.exit_code == 5 and "stopped after volumes" in done.output


def test_an_unknown_name_is_purged_as_nothing(cloud):
    server, tmp = cloud
    plan = cli(tmp, "project", "purge", "no-such-project", "-f", "json")
    assert plan.exit_code == 0 and json.loads(plan.output) == []


def test_purge_takes_containers_and_key_pairs_and_last_the_project_when_asked(cloud):
    server, tmp = cloud
    alpha = project_id(server, "alpha-01")
    container_id = "6f5c2b4e-0000-4000-8000-000000000001"
    region(server).containers[container_id] = {
        "uuid": container_id, "name": "leftover", "image": "nginx", "status": "Running",
        "project_id": alpha, "labels": {}, "cpu": 1.0, "memory": "512", "disk": 0,
        "host": "cmp-1", "task_state": None, "_seq": 0, "_logs": [],
    }  # fmt: skip
    plan = cli(tmp, "project", "purge", "alpha-01", "--delete-project", "-f", "json")
    assert plan.exit_code == 0, plan.output
    rows = json.loads(plan.output)
    phases = [r["phase"] for r in rows]
    assert phases == sorted(phases, key=[p.name for p in TEARDOWN].index)
    assert phases[0] == "containers" and phases[-1] == "project"
    assert [r["name"] for r in rows if r["phase"] == "key pairs"] == ["alpha-01-key"]
    done = cli(tmp, "project", "purge", "alpha-01", "--delete-project", "--execute",
               "--timeout", "20")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert alpha not in server.state.projects
    assert not region(server).containers
    names = {k["name"] for k in region(server).keypairs.values()}
    assert "alpha-01-key" not in names
    assert {"admin-key", "bravo-01-key"} <= names, "other users' key pairs are kept"
    store = open_store(f"sqlite:///{tmp / 'store.db'}")
    finished = next(
        e for e in AuditLog(store).list(policy=f"purge/{alpha}", limit=1000)[0]
        if e["event"] == "purge.finished"
    )  # fmt: skip
    assert finished["details"]["project_deleted"] is True
