"""The waste lifecycle of `available` volumes against the simulated cloud, with the clock
moved forward: notice, grace period, then a Cinder backup and the delete (`--execute`);
the backup is `available` before the volume goes, a second run does nothing, and a
volume whose backup fails is kept and the failure audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sinks import SmtpSink
from support import run_openstack

from stackfleet.core.delivery import NotifySettings
from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy import load_files
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import leases, open_store
from stackfleet.store.audit import AuditLog

# openstacksdk warns about its own internals on every call
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
NOW = datetime.now(UTC)
DAY = timedelta(days=1)


@pytest.fixture
def fleet(tmp_path):
    sink = SmtpSink()
    with SimulatorServer(preset("small", now=NOW)) as server:
        # backups stay `creating` (the volume `backing-up`) for a moment, as in Cinder
        server.sim.action_delay = 0.3
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        names = {p["id"]: p["name"] for p in server.state.projects.values()}
        settings = Settings(
            notify=NotifySettings(
                smtp_host="127.0.0.1",
                smtp_port=sink.port,
                owners={name: [f"owner@{name}.example"] for name in names.values()},
                keystone_email=False,
            )
        )
        [policy] = [p for p in load_files(["pack:waste"]) if p.name == "available-volumes"]
        runner = PolicyRunner(store, settings, Connections([str(clouds)]))

        def step(days: float, collect_first: bool = True) -> None:
            if collect_first:
                collect(store, CLOUD, config_files=[str(clouds)])
            runner.run([policy], execute=True, now=NOW + days * DAY)

        yield server, store, step
        store.close()
    sink.close()


def stages(store, only: list[str]) -> dict[str, str]:
    return {
        row["resource_id"]: row["stage"]
        for row in leases.list_leases(store)
        if row["resource_id"] in only
    }


def audit_of(store, volume_id: str) -> list[dict]:
    entries = AuditLog(store).list(limit=1000)[0]
    return [e for e in reversed(entries) if str(e.get("target") or "").endswith(volume_id)]


def test_an_available_volume_is_backed_up_then_deleted_after_the_grace_period(
    fleet, tmp_path
) -> None:
    server, store, step = fleet
    region = server.state.regions["RegionOne"]
    targets = server.state.ground_truth["RegionOne"]["long_available_volumes"]
    assert targets, "the small preset has long-available volumes"
    sizes = {vid: region.volumes[vid]["size"] for vid in targets}

    step(0)
    assert stages(store, targets) == dict.fromkeys(targets, "marked")
    step(3)  # inside the grace period: nothing is backed up or deleted
    assert all(vid in region.volumes for vid in targets)
    assert region.backups == {}

    step(7.5)
    assert stages(store, targets) == dict.fromkeys(targets, "done")
    for vid in targets:
        assert vid not in region.volumes
        [backup] = [b for b in region.backups.values() if b["volume_id"] == vid]
        assert backup["status"] == "available"
        assert backup["size"] == sizes[vid]
        # the backup stays `creating` for 0.3 s, with the volume `backing-up`, which
        # Cinder refuses to delete: the delete succeeded because the action waited
        events = [e for e in audit_of(store, vid) if e["details"].get("action") == "delete"]
        [started] = [e for e in events if e["event"] == "action.started"]
        [completed] = [e for e in events if e["event"] == "action.completed"]
        assert "backup" in "\n".join(started["details"]["diff"])
        assert started["details"]["before"]["status"] == "available"
        assert completed["details"]["verified"]
        assert completed["details"]["after"] == {"gone": True}
        assert completed["details"]["result"]["backup_id"] == backup["id"]
    assert AuditLog(store).verify().ok

    # a second run changes nothing: no second backup, no new action, no new notice —
    # neither before the next pass (the inventory still lists the deleted volumes) nor
    # after it
    backups_before = dict(region.backups)
    for collect_first in (False, True):
        entries_before = AuditLog(store).list(limit=1)[1]
        step(8, collect_first=collect_first)
        assert region.backups.keys() == backups_before.keys()
        entries, total = AuditLog(store).list(limit=1000)
        new_events = [e["event"] for e in entries[: total - entries_before]]
        assert not [e for e in new_events if e.startswith(("action.", "lifecycle."))], (
            collect_first,
            new_events,
        )

    # python-openstackclient lists the backups the simulator keeps
    rows = run_openstack(server, tmp_path, "volume", "backup", "list", "--all-projects")
    assert {row[0] for row in rows} == set(backups_before)


def test_a_volume_whose_backup_fails_is_kept_and_the_failure_audited(fleet) -> None:
    server, store, step = fleet
    region = server.state.regions["RegionOne"]
    targets = server.state.ground_truth["RegionOne"]["long_available_volumes"]
    step(0)
    # Cinder answers 500 to every backup request
    rule = {"method": "POST", "path": r"/volume/v3/[^/]+/backups$", "fail_always": True,
            "error_status": 500}  # fmt: skip
    added = httpx.post(f"{server.base_url}/_sim/faults", json=rule, timeout=10)
    assert added.status_code < 300, added.text
    step(7.5)
    assert region.backups == {}
    for vid in targets:
        assert region.volumes[vid]["status"] == "available"
        entries = audit_of(store, vid)
        deletes = [e["event"] for e in entries if e["details"].get("action") == "delete"]
        assert deletes == ["action.started", "action.failed"]
        [failed] = [e for e in entries if e["event"] == "action.failed"]
        assert "backup of volume" in failed["details"]["error"]
        assert "lifecycle.delete" not in [e["event"] for e in entries]
    # the step is tried again at the next run, and completes once backups work
    assert stages(store, targets) == dict.fromkeys(targets, "marked")
    httpx.delete(f"{server.base_url}/_sim/faults", timeout=10)
    step(8)
    assert stages(store, targets) == dict.fromkeys(targets, "done")
    assert all(vid not in region.volumes for vid in targets)


def test_a_retry_after_a_failed_delete_uses_the_backup_already_made(fleet) -> None:
    server, store, step = fleet
    region = server.state.regions["RegionOne"]
    targets = server.state.ground_truth["RegionOne"]["long_available_volumes"]
    step(0)
    # the backups are made, then Cinder answers 503 to every volume delete
    rule = {"method": "DELETE", "path": r"/volume/v3/[^/]+/volumes/", "fail_always": True}
    assert httpx.post(f"{server.base_url}/_sim/faults", json=rule, timeout=10).is_success
    step(7.5)
    assert all(vid in region.volumes for vid in targets)
    first = {b["volume_id"]: b["id"] for b in region.backups.values()}
    assert set(first) == set(targets)
    httpx.delete(f"{server.base_url}/_sim/faults", timeout=10)
    step(8.5)  # another day: the backup name would differ, the backup is still reused
    assert all(vid not in region.volumes for vid in targets)
    assert {b["volume_id"]: b["id"] for b in region.backups.values()} == first
    for vid in targets:
        [completed] = [
            e
            for e in audit_of(store, vid)
            if e["event"] == "action.completed" and e["details"].get("action") == "delete"
        ]
        assert completed["details"]["result"]["backup_id"] == first[vid]


def test_a_backup_fails_without_a_cinder_backup_service_and_the_volume_is_kept(fleet) -> None:
    server, store, step = fleet
    region = server.state.regions["RegionOne"]
    targets = server.state.ground_truth["RegionOne"]["long_available_volumes"]
    for service in region.volume_services:
        if service["binary"] == "cinder-backup":
            service["state"] = "down"
    step(0)
    step(7.5)
    for vid in targets:
        assert region.volumes[vid]["status"] == "available"
        [backup] = [b for b in region.backups.values() if b["volume_id"] == vid]
        assert backup["status"] == "error"
        assert backup["fail_reason"] == "Service not found for creating backup."
        [failed] = [e for e in audit_of(store, vid) if e["event"] == "action.failed"]
        assert "failed" in failed["details"]["error"]
