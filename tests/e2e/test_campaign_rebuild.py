"""VM patching by rebuild on the simulated cloud: snapshot → rebuild onto the new
image → health check → on failure rebuild back from the snapshot; k of n kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_campaign_simulator import CLOUD, Cloud, _cli, _step_status, running_cloud

from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.health_settings import HealthSettings, Workload
from stackfleet.engine.settings import Settings
from stackfleet.patching.campaign import CampaignRunner
from stackfleet.patching.spec import CampaignError, load_spec
from stackfleet.store import patching as records
from stackfleet.store.audit import AuditLog

OLD = "ubuntu-22.04-server-cloudimg"
NEW = "ubuntu-24.04-server-cloudimg"
TAG = "patch-web"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with running_cloud(tmp_path) as running:
        yield running


def _image_id(cloud: Cloud, name: str) -> str:
    return next(i["id"] for i in cloud.region.images.values() if i["name"] == name)


def _tagged(cloud: Cloud, count: int = 3) -> list[str]:
    """`count` ACTIVE servers running OLD, tagged TAG (and collected)."""
    old = _image_id(cloud, OLD)
    chosen = sorted(
        sid
        for sid, s in cloud.region.servers.items()
        if s["status"] == "ACTIVE" and (s.get("image") or {}).get("id") == old
    )[:count]
    for sid in chosen:
        server = cloud.region.servers[sid]
        server["tags"] = [*(server.get("tags") or []), TAG]
    collect(cloud.store, CLOUD, config_files=[str(cloud.clouds)])
    return chosen


def _spec(cloud: Cloud, name: str, checks: str = "[]", targets: str = f"{{tags: [{TAG}]}}") -> Path:
    path = cloud.work / f"{name}.yaml"
    path.write_text(
        f"""\
campaign:
  name: {name}
  cloud: {CLOUD}
  region: RegionOne
  targets:
    instances: {targets}
  steps:
    apply:
      - image: {NEW}
    rebuild: {{snapshot: true, timeout: 30s, checks: {checks}}}
  poll_interval: 0.1s
"""
    )
    return path


def _image_of(cloud: Cloud, server_id: str) -> str:
    return str(cloud.region.servers[server_id]["image"]["id"])


def _entries(cloud: Cloud) -> list[dict]:
    return sorted(AuditLog(cloud.store).list(limit=100000)[0], key=lambda e: e["seq"])


def _runner(cloud: Cloud, settings: Settings | None = None) -> CampaignRunner:
    return CampaignRunner(cloud.store, settings, Connections([str(cloud.clouds)]))


def test_each_server_is_snapshotted_then_rebuilt_onto_the_new_image_one_at_a_time(
    cloud: Cloud,
):
    servers = _tagged(cloud)
    runner = _runner(cloud)
    plan = runner.start(load_spec(_spec(cloud, "web-patch")))
    assert plan.unit == "server" and [len(b) for b in plan.batches] == [1, 1, 1]
    result = runner.run("web-patch")
    assert result["status"] == "completed", result["error"]
    new = _image_id(cloud, NEW)
    assert {_image_of(cloud, sid) for sid in servers} == {new}
    assert all(cloud.region.servers[sid]["status"] == "ACTIVE" for sid in servers)
    # a snapshot of each, taken before its rebuild
    snapshots = {
        i["instance_uuid"]
        for i in cloud.region.images.values()
        if i.get("image_type") == "snapshot"
    }
    assert set(servers) <= snapshots
    started = [
        (e["details"]["action"], e["target"].rsplit("/", 1)[-1])
        for e in _entries(cloud)
        if e["event"] == "action.started"
    ]
    # one server after the other: snapshot, rebuild; never two at once
    assert started == [
        (a, sid)
        for sid in sorted(servers, key=lambda s: cloud.region.servers[s]["name"])
        for a in ("snapshot", "rebuild")
    ]
    steps = records.steps_of(cloud.store, result["id"])
    assert {s["step"] for s in steps} == {"pre-check", "snapshot", "rebuild", "health-check"}
    assert all(s["status"] == "done" for s in steps)


def test_a_server_failing_its_check_after_the_rebuild_is_rebuilt_back_from_its_snapshot(
    cloud: Cloud,
):
    servers = _tagged(cloud)
    new = _image_id(cloud, NEW)
    # the guest check fails on the new image (a broken release)
    checks = f"[{{command: 'test \"$STACKFLEET_IMAGE_ID\" != {new}'}}]"
    runner = _runner(cloud)
    runner.start(load_spec(_spec(cloud, "broken-image", checks)))
    result = runner.run("broken-image")
    assert result["status"] == "halted"
    steps = records.steps_of(cloud.store, result["id"])
    by = {(s["host"], s["step"]): s for s in steps}
    first = next(s["host"] for s in steps if s["step"] == "rollback")
    assert by[(first, "health-check")]["status"] == "failed"
    assert "guest check" in by[(first, "health-check")]["error"]
    assert by[(first, "rollback")]["status"] == "done"
    # back on its snapshot (of the tested image), running
    snapshot = by[(first, "snapshot")]["detail"]["snapshot"]
    assert _image_of(cloud, first) == snapshot
    assert cloud.region.images[snapshot]["instance_uuid"] == first
    assert cloud.region.servers[first]["status"] == "ACTIVE"
    rolled = [e for e in _entries(cloud) if e["event"] == "campaign.rolled-back"]
    assert [
        (e["details"]["before"], e["details"]["after"], e["details"]["from"]) for e in rolled
    ] == [(new, snapshot, "snapshot")]
    # the other servers were never touched
    old = _image_id(cloud, OLD)
    assert [_image_of(cloud, sid) for sid in servers if sid != first] == [old, old]


def test_a_rebuild_that_would_take_a_workload_below_k_is_refused(cloud: Cloud):
    servers = _tagged(cloud)
    workload = Workload(name="web", tag=TAG, min_healthy=3)
    runner = _runner(cloud, Settings(health=HealthSettings(workloads=[workload])))
    runner.start(load_spec(_spec(cloud, "keep-all")))
    result = runner.run("keep-all")
    assert result["status"] == "halted"
    steps = records.steps_of(cloud.store, result["id"])
    rebuild = next(s for s in steps if s["step"] == "rebuild" and s["status"] == "failed")
    assert (
        "(nothing was changed): workload 'web' (tag=patch-web) would keep 2 of 3"
        in (rebuild["error"])
    )
    old = _image_id(cloud, OLD)
    assert [_image_of(cloud, sid) for sid in servers] == [old] * 3
    rollback = next(s for s in steps if s["step"] == "rollback")
    assert rollback["status"] == "done" and rollback["detail"]["rebuilt"] is False
    assert not [
        e
        for e in _entries(cloud)
        if e["event"] == "action.started" and e["details"]["action"] == "rebuild"
    ]


def test_an_instance_campaign_naming_an_unknown_server_and_image_starts_nothing(cloud: Cloud):
    _tagged(cloud)
    spec = _spec(cloud, "typo", targets="{names: [web-nope]}")
    spec.write_text(spec.read_text().replace(NEW, "ubuntu-99"))
    with pytest.raises(CampaignError) as caught:
        _runner(cloud).start(load_spec(spec))
    text = str(caught.value)
    assert f"{spec}:6: campaign.targets.instances.names[0]: unknown server 'web-nope'" in text
    assert f"{spec}:9: campaign.steps.apply[0].image: unknown image 'ubuntu-99'" in text
    assert records.list_campaigns(cloud.store) == []


def test_the_cli_carries_out_an_instance_campaign_and_shows_each_servers_steps(cloud: Cloud):
    (cloud.work / "settings.yaml").write_text("{}\n")
    servers = _tagged(cloud, count=2)
    spec = _spec(cloud, "web-cli")
    with (cloud.work / "start.log").open("wb") as log:
        code = _cli(cloud, "campaign", "start", str(spec), "--execute", log=log).wait(timeout=120)
    output = (cloud.work / "start.log").read_text()
    assert code == 0, output
    assert "2 server(s) in 2 batch(es)" in output
    assert "steps: pre-check → snapshot → rebuild → health-check" in output
    status_run = subprocess.run(
        [sys.executable, "-m", "stackfleet.cli.main", "campaign", "status", "web-cli"],
        env={
            **os.environ,
            "STACKFLEET_DB_URL": f"sqlite:///{cloud.db}",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    code, status = status_run.returncode, status_run.stdout + status_run.stderr
    assert code == 0 and "completed" in status, status
    assert "server" in status and "health-check" in status and "drain" not in status
    new = _image_id(cloud, NEW)
    assert [_image_of(cloud, sid) for sid in servers] == [new, new]


def test_rolling_back_a_completed_instance_campaign_rebuilds_servers_from_their_snapshots(
    cloud: Cloud,
):
    [server] = _tagged(cloud, count=1)
    runner = _runner(cloud)
    runner.start(load_spec(_spec(cloud, "undo-image")))
    assert runner.run("undo-image")["status"] == "completed"
    assert _image_of(cloud, server) == _image_id(cloud, NEW)
    assert runner.rollback("undo-image") == [{"host": server, "status": "rolled-back"}]
    snapshot = next(
        i["id"] for i in cloud.region.images.values() if i.get("instance_uuid") == server
    )
    assert _image_of(cloud, server) == snapshot
    assert cloud.region.servers[server]["status"] == "ACTIVE"


@pytest.mark.parametrize("step, task", [("snapshot", "image_snapshot"), ("rebuild", "rebuilding")])
def test_killed_mid_instance_campaign_it_resumes_with_one_snapshot_and_one_rebuild_per_server(
    cloud: Cloud, step: str, task: str
):
    (cloud.work / "settings.yaml").write_text("{}\n")
    # snapshots and rebuilds take a while, so that the kill lands while one is under way
    cloud.sim.sim.action_delay = 1.0  # type: ignore[attr-defined]
    servers = sorted(_tagged(cloud), key=lambda s: cloud.region.servers[s]["name"])
    second = servers[1]
    spec = _spec(cloud, "web-crash")
    with (cloud.work / "first.log").open("wb") as log:
        first = _cli(cloud, "campaign", "start", str(spec), "--execute", log=log)
        deadline = time.monotonic() + 120
        while not (
            _step_status(cloud.db, second, step) == "running"
            and cloud.region.servers[second].get("OS-EXT-STS:task_state") == task
        ):
            assert first.poll() is None, (cloud.work / "first.log").read_text()
            assert time.monotonic() < deadline, f"the second server's {step} never started"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
    with (cloud.work / "second.log").open("wb") as log:
        second_run = _cli(cloud, "campaign", "resume", "web-crash", log=log)
        assert second_run.wait(timeout=180) == 0, (cloud.work / "second.log").read_text()
    assert "campaign web-crash: completed" in (cloud.work / "second.log").read_text()
    new = _image_id(cloud, NEW)
    assert [_image_of(cloud, sid) for sid in servers] == [new, new, new]
    # one snapshot of each server in Glance: the interrupted one was used, not taken again
    snapshots = Counter(
        i["instance_uuid"]
        for i in cloud.region.images.values()
        if i.get("image_type") == "snapshot"
    )
    assert {sid: snapshots[sid] for sid in servers} == {sid: 1 for sid in servers}
    rebuilds = Counter(
        e["target"].rsplit("/", 1)[-1]
        for e in _entries(cloud)
        if e["event"] == "action.started" and e["details"]["action"] == "rebuild"
    )
    assert {sid: rebuilds[sid] for sid in servers} == {sid: 1 for sid in servers}
    # the rollback target is the snapshot that exists
    steps = records.steps_of(cloud.store, records.get_campaign(cloud.store, "web-crash")["id"])
    kept = next(s for s in steps if s["host"] == second and s["step"] == "snapshot")
    assert cloud.region.images[kept["detail"]["snapshot"]]["instance_uuid"] == second
