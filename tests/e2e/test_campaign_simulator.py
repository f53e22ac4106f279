"""Campaigns end to end on the simulated cloud, with the local connector: each host is a
directory (its /etc/nova/nova.conf under it) and its service manager a command that
restarts the host's Nova services in the simulator (POST /_sim/hosts/{host}/restart),
reporting them down when nova.conf holds `broken = true` — as a nova-compute that
cannot start with a broken option would."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.patching.campaign import CampaignRunner
from stackfleet.patching.spec import load_spec
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import Store, open_store
from stackfleet.store import alerts as alert_records
from stackfleet.store import patching as records
from stackfleet.store.audit import AuditLog

CLOUD = "sim"
HOSTS = ["cmp0002", "cmp0003", "cmp0004"]
NOVA_CONF = "[DEFAULT]\ndebug = false\n"

RESTART = """\
if grep -q '^broken = true' etc/nova/nova.conf; then up=false; else up=true; fi
curl -sf -X POST -H 'Content-Type: application/json' -d "{\\"up\\": $up}" \\
  "$SIM/_sim/hosts/$STACKFLEET_HOST/restart" >/dev/null
"""


@dataclass
class Cloud:
    sim: SimulatorServer
    clouds: Path
    store: Store
    db: Path
    work: Path

    @property
    def region(self):  # type: ignore[no-untyped-def]
        return self.sim.state.regions["RegionOne"]

    def spec(
        self,
        name: str,
        apply: str,
        extra: str = "",
        hosts: list[str] = HOSTS,
        region: str | None = "RegionOne",
        connector: str = "{type: local, root: hosts}",
        services: str | None = None,
    ) -> Path:
        """A campaign spec over `hosts`; by default each host a directory under hosts/
        and nova-compute restarted by a script that tells the simulator (`services`: a
        `services:` block of one's own)."""
        if services is None:
            script = self.work / "restart.sh"
            script.write_text(f"SIM={self.sim.base_url}\n{RESTART}")
            services = f"""\
  services:
    nova-compute:
      config_files: [/etc/nova/nova.conf]
      restart: "sh {script}\""""
        host_list = ", ".join(hosts)
        text = f"""\
campaign:
  name: {name}
  cloud: {CLOUD}
{f"  region: {region}" if region else ""}
  connector: {connector}
{services}
  targets:
    hosts: {{names: [{host_list}]}}
    services: [nova-compute]
  steps:
    apply:
{apply}
    gate:
      heartbeat_max_age: 60s
      wait: 3s
      canary: {{flavor: m1.tiny, image: cirros-0.6.2-x86_64-disk, timeout: 30s}}
  rollout: {{canary_hosts: 1, batch_size: 2}}
  poll_interval: 0.1s
{extra}"""
        path = self.work / f"{name}.yaml"
        path.write_text(text)
        return path

    def service(self, host: str) -> dict:
        return next(
            s
            for s in self.region.compute_services.values()
            if s["host"] == host and s["binary"] == "nova-compute"
        )

    def servers_on(self, host: str) -> set[str]:
        return {
            sid
            for sid, s in self.region.servers.items()
            if s.get("OS-EXT-SRV-ATTR:host") == host and s["status"] != "ERROR"
        }

    def runner(self) -> CampaignRunner:
        return CampaignRunner(self.store, connections=Connections([str(self.clouds)]))


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with running_cloud(tmp_path) as running:
        yield running


@contextmanager
def running_cloud(tmp_path: Path) -> Iterator[Cloud]:
    """The simulated cloud, collected once, each host a directory with its nova.conf."""
    with SimulatorServer(preset("small")) as sim:
        clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        db = tmp_path / "store.db"
        store = open_store(f"sqlite:///{db}")
        collect(store, CLOUD, config_files=[str(clouds)])
        hosts = sorted(
            {s["host"] for s in sim.state.regions["RegionOne"].compute_services.values()}
        )
        for host in hosts:
            conf = tmp_path / "hosts" / host / "etc/nova/nova.conf"
            conf.parent.mkdir(parents=True)
            conf.write_text(NOVA_CONF)
            # the hosts' services start (and report) as on booted hosts
            requests.post(f"{sim.base_url}/_sim/hosts/{host}/restart", json={}, timeout=10)
        yield Cloud(sim, clouds, store, db, tmp_path)
        store.close()


RATIO = "      - config: {file: /etc/nova/nova.conf, set: {DEFAULT: {cpu_allocation_ratio: 4.0}}}"
BROKEN = "      - config: {file: /etc/nova/nova.conf, set: {DEFAULT: {broken: true}}}"


def test_a_campaign_drains_patches_gates_and_undrains_each_host(cloud: Cloud):
    before = {host: cloud.servers_on(host) for host in HOSTS}
    assert all(before.values())
    spec = cloud.spec("ratio", RATIO)
    runner = cloud.runner()
    runner.start(load_spec(spec))
    result = runner.run("ratio")
    assert result["status"] == "completed", result["error"]
    for host in HOSTS:
        conf = (cloud.work / "hosts" / host / "etc/nova/nova.conf").read_text()
        assert "cpu_allocation_ratio = 4.0" in conf
        # re-enabled, with no reason left behind
        service = cloud.service(host)
        assert service["status"] == "enabled" and not service["disabled_reason"]
        # what ran there was moved off (and nothing moved back)
        assert not before[host] & cloud.servers_on(host)
    # one migration per moved server: nothing was moved twice
    # each server moved once: the batch's two hosts are both disabled before either is
    # emptied, and the canary host's servers go to cmp0010 (more free memory than the
    # later batch's hosts); a migration under way at the kill is waited for, not redone
    migrations = Counter(m["instance_uuid"] for m in cloud.region.migrations.values())
    moved = set().union(*before.values())
    assert {sid: migrations[sid] for sid in moved} == dict.fromkeys(moved, 1)
    # anti-affinity groups still spread
    for group in cloud.region.server_groups.values():
        if group["policy"] == "anti-affinity":
            hosts = [cloud.region.servers[m]["OS-EXT-SRV-ATTR:host"] for m in group["members"]]
            assert len(hosts) == len(set(hosts))
    # the canary servers were deleted
    assert not [s for s in cloud.region.servers.values() if "canary" in s["name"]]
    # each host's service: disabled with the campaign's reason before any move, enabled
    # only while its canary booted (Nova places nothing on a disabled host, a forced
    # canary included), disabled again, enabled by the undrain
    entries = AuditLog(cloud.store).list(limit=100000)[0]
    started = sorted((e for e in entries if e["event"] == "action.started"), key=lambda e: e["seq"])
    for host in HOSTS:
        target = f"{CLOUD}/RegionOne/compute_service/{cloud.service(host)['id']}"
        service = [e for e in started if e["target"] == target]
        assert [e["details"]["action"] for e in service] == [
            "disable-service",
            "enable-service",
            "disable-service",
            "enable-service",
        ]
        assert all(
            e["details"]["options"]["reason"].startswith("stackfleet campaign ratio")
            for e in service
        )
        moves = [
            e["seq"]
            for e in started
            if e["details"]["action"] == "live-migrate"
            and e["target"].rsplit("/", 1)[-1] in before[host]
        ]
        assert moves and service[0]["seq"] < min(moves) and max(moves) < service[1]["seq"]
    # each host's revision was tested before (pre-check) and after (gate) the change
    history = [e["event"] for e in records.history(cloud.store, "cmp0002", "nova-compute")]
    assert history == ["tested", "applied", "tested", "captured"]
    applied = [e for e in entries if e["event"] == "campaign.applied"]
    assert len(applied) == 3
    assert all(e["details"]["before"] != e["details"]["after"] for e in applied)


def test_a_failing_gate_rolls_the_host_back_and_halts_with_an_alert(cloud: Cloud):
    spec = cloud.spec("broken", BROKEN, hosts=["cmp0002", "cmp0003"])
    runner = cloud.runner()
    runner.start(load_spec(spec))
    result = runner.run("broken")
    assert result["status"] == "halted"
    assert "cmp0002" in result["error"]
    steps = {(s["host"], s["step"]): s for s in records.steps_of(cloud.store, result["id"])}
    assert steps[("cmp0002", "gate")]["status"] == "failed"
    # a service that fails to start stops reporting: Nova still says up until its
    # service_down_time has passed, so the gate sees the missing heartbeat first
    gate_error = steps[("cmp0002", "gate")]["error"]
    assert (
        "nova-compute@cmp0002 has not reported since its restart" in gate_error
        or "nova-compute@cmp0002 is down" in gate_error
    ), gate_error
    assert steps[("cmp0002", "rollback")]["status"] == "done"
    # the host runs its tested revision again, its service is back up and enabled
    conf = cloud.work / "hosts" / "cmp0002" / "etc/nova/nova.conf"
    assert conf.read_text() == NOVA_CONF
    assert cloud.service("cmp0002")["state"] == "up"
    assert cloud.service("cmp0002")["status"] == "enabled"
    events = [e["event"] for e in records.history(cloud.store, "cmp0002", "nova-compute")]
    assert events[0] == "rolled-back"
    # the next batch never started
    assert all(s["status"] == "pending" for (h, _), s in steps.items() if h == "cmp0003")
    assert (cloud.work / "hosts" / "cmp0003" / "etc/nova/nova.conf").read_text() == NOVA_CONF
    # an alert says so, through the patching pack
    firing = alert_records.list_alerts(cloud.store, "firing")
    halted = [a for a in firing if a["alertname"] == "patching/campaign-halted"]
    assert len(halted) == 1 and halted[0]["labels"]["campaign"] == "broken"
    audit = [e["event"] for e in AuditLog(cloud.store).list(limit=100000)[0]]
    assert "campaign.rolled-back" in audit and "campaign.halted" in audit


def test_a_host_someone_else_disabled_is_neither_opened_for_a_canary_nor_changed(
    cloud: Cloud,
):
    other = HOSTS[0]
    service = cloud.service(other)
    service.update(status="disabled", disabled_reason="maintenance: DIMM replacement")
    spec = cloud.spec("theirs", RATIO, hosts=[other])
    runner = cloud.runner()
    runner.start(load_spec(spec))
    result = runner.run("theirs")
    assert result["status"] == "halted"
    steps = {s["step"]: s for s in records.steps_of(cloud.store, result["id"])}
    assert steps["pre-check"]["status"] == "failed"
    assert (
        "disabled by someone else (reason: maintenance: DIMM replacement)"
        in (steps["pre-check"]["error"])
    )
    assert (service["status"], service["disabled_reason"]) == (
        "disabled",
        "maintenance: DIMM replacement",
    )
    started = [
        e for e in AuditLog(cloud.store).list(limit=100000)[0] if e["event"] == "action.started"
    ]
    assert started == []
    conf = cloud.work / "hosts" / other / "etc/nova/nova.conf"
    assert conf.read_text() == NOVA_CONF


def test_a_spec_without_a_region_acts_in_the_clouds_configured_region(cloud: Cloud):
    """A spec naming no region (the clouds.yaml entry has one): the actions carry that
    region, so the safety gate counts the cloud region's stored servers — a cold
    migration (destructive: a blast-radius check) of a shut-off server was blocked as
    "1 of 0 servers" on the real testbed before."""
    host = HOSTS[0]
    admin = cloud.runner().connections.connection(CLOUD, "RegionOne")
    server_id = sorted(cloud.servers_on(host))[0]
    admin.compute.post(f"/servers/{server_id}/action", json={"os-stop": None})
    assert cloud.region.servers[server_id]["status"] == "SHUTOFF"
    collect(cloud.store, CLOUD, config_files=[str(cloud.clouds)])
    spec = cloud.spec("no-region", RATIO, hosts=[host], region=None)
    assert "region:" not in spec.read_text()
    runner = cloud.runner()
    runner.start(load_spec(spec))
    result = runner.run("no-region")
    assert result["status"] == "completed", result["error"]
    moved = cloud.region.servers[server_id]
    assert moved["OS-EXT-SRV-ATTR:host"] != host and moved["status"] == "SHUTOFF"
    entries = AuditLog(cloud.store).list(limit=100000)[0]
    migrate = [
        e
        for e in entries
        if e["event"] == "action.completed" and e["details"]["action"] == "migrate"
    ]
    assert [e["target"] for e in migrate] == [f"{CLOUD}/RegionOne/server/{server_id}"]


def test_the_canary_waits_for_placement_to_drop_the_disabled_trait(cloud: Cloud):
    """Enabling a service asks its nova-compute to drop COMPUTE_STATUS_DISABLED in
    Placement; on the real testbed that call failed once (a provider generation
    conflict) and the trait stayed until the periodic resync, so a canary booted at once
    got NoValidHost. Here Placement lags 2 s behind every service change: the gate
    waits for the trait to go before it boots the canary."""
    cloud.sim.sim.trait_sync_delay = 2.0  # type: ignore[attr-defined]
    # the apply outlasts the lag: the drain's trait is in Placement by the gate
    spec = cloud.spec("lag", RATIO + "\n      - command: sleep 2.5", hosts=[HOSTS[0]])
    runner = cloud.runner()
    runner.start(load_spec(spec))
    result = runner.run("lag")
    assert result["status"] == "completed", result["error"]
    gate = next(s for s in records.steps_of(cloud.store, result["id"]) if s["step"] == "gate")
    assert gate["seconds"] >= 1.5
    assert cloud.service(HOSTS[0])["status"] == "enabled"


def test_rollback_of_a_host_without_a_tested_revision_is_refused(cloud: Cloud):
    from stackfleet.core.errors import ConfigError

    spec = cloud.spec("nothing", RATIO, extra="", hosts=["cmp0002"])
    runner = cloud.runner()
    runner.start(load_spec(spec))
    with pytest.raises(ConfigError, match="no tested revision .* nothing was rolled back"):
        runner.rollback("nothing", ["cmp0002"])


def _cli(cloud: Cloud, *args: str, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "STACKFLEET_DB_URL": f"sqlite:///{cloud.db}",
        "STACKFLEET_CONFIG": str(cloud.work / "settings.yaml"),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "stackfleet.cli.main", *args, "--clouds-yaml", str(cloud.clouds)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _step_status(db: Path, host: str, step: str) -> str | None:
    with sqlite3.connect(db) as connection:
        row = connection.execute(
            "SELECT status FROM campaign_steps WHERE host = ? AND step = ?", (host, step)
        ).fetchone()
    return row[0] if row else None


def test_killed_mid_campaign_it_resumes_without_doing_a_step_twice(cloud: Cloud):
    (cloud.work / "settings.yaml").write_text("{}\n")
    # migrations take a while, so that the kill may land while some are under way
    cloud.sim.sim.action_delay = 0.3  # type: ignore[attr-defined]
    apply = (
        "      - command: printf 'patched = %s\\n' \"$(date +%s%N)\" >> etc/nova/nova.conf;"
        " echo once >> applied.log; sleep 4"
    )
    spec = cloud.spec("crash", apply)
    with (cloud.work / "first.log").open("wb") as log:
        first = _cli(cloud, "campaign", "start", str(spec), "--execute", log=log)
        deadline = time.monotonic() + 120
        marker = cloud.work / "hosts" / "cmp0003" / "applied.log"
        while not marker.exists():
            assert first.poll() is None, (cloud.work / "first.log").read_text()
            assert time.monotonic() < deadline, "the second batch's apply never started"
            time.sleep(0.05)
        assert _step_status(cloud.db, "cmp0003", "apply") == "running"
        first.send_signal(signal.SIGKILL)
        first.wait()
    with (cloud.work / "second.log").open("wb") as log:
        second = _cli(cloud, "campaign", "resume", "crash", log=log)
        assert second.wait(timeout=180) == 0, (cloud.work / "second.log").read_text()
    output = (cloud.work / "second.log").read_text()
    assert "campaign crash: completed" in output
    for host in HOSTS:
        assert (cloud.work / "hosts" / host / "applied.log").read_text() == "once\n"
    done = Counter(
        (e["target"], e["details"]["step"])
        for e in AuditLog(cloud.store).list(limit=100000)[0]
        if e["event"] == "campaign.step.done"
    )
    assert len(done) == 3 * 6 and set(done.values()) == {1}
    migrations = Counter(m["instance_uuid"] for m in cloud.region.migrations.values())
    assert max(migrations.values()) == 1, [
        (m["instance_uuid"][:8], m["source_compute"], m["dest_compute"], m["status"])
        for m in sorted(cloud.region.migrations.values(), key=lambda m: m["created_at"])
    ]
    for host in HOSTS:
        assert cloud.service(host)["status"] == "enabled"


def test_a_spec_naming_an_unknown_host_starts_nothing(cloud: Cloud):
    (cloud.work / "settings.yaml").write_text("{}\n")
    spec = cloud.spec("typo", RATIO, hosts=["cmp0002", "cmp002"])
    with (cloud.work / "typo.log").open("wb") as log:
        code = _cli(cloud, "campaign", "start", str(spec), "--execute", log=log).wait(timeout=60)
    output = (cloud.work / "typo.log").read_text()
    assert code == 2, output
    assert f"{spec}:11: campaign.targets.hosts.names[1]: unknown host 'cmp002'" in output
    assert "did you mean" in output and "nothing was started" in output
    assert records.list_campaigns(cloud.store) == []
    assert cloud.service("cmp0002")["status"] == "enabled"


def test_drift_from_the_applied_revision_is_a_finding_until_it_is_undone(cloud: Cloud):
    from stackfleet.engine.settings import Settings
    from stackfleet.patching.connectors import ConnectorSpec, LocalConnector
    from stackfleet.patching.drift import applied_targets, check_drift
    from stackfleet.patching.services import ServiceDefinition
    from stackfleet.store.findings import open_findings

    runner = cloud.runner()
    runner.start(load_spec(cloud.spec("ratio", RATIO, hosts=["cmp0002"])))
    assert runner.run("ratio")["status"] == "completed"
    connector = LocalConnector(ConnectorSpec(type="local", root=str(cloud.work / "hosts")))
    services = {"nova-compute": ServiceDefinition(config_files=["/etc/nova/nova.conf"])}
    targets = applied_targets(cloud.store)
    assert targets == [("cmp0002", "nova-compute")]

    def drift() -> list[str]:
        check_drift(cloud.store, Settings(), connector, targets, services, CLOUD, "RegionOne")
        return [f.resource_id for f in open_findings(cloud.store, "patching/config-drift")]

    assert drift() == []
    conf = cloud.work / "hosts" / "cmp0002" / "etc/nova/nova.conf"
    applied = conf.read_text()
    conf.write_text(applied + "debug = true\n")  # changed by hand
    assert drift() == ["cmp0002/nova-compute"]
    firing = alert_records.list_alerts(cloud.store, "firing")
    assert [a["labels"].get("host") for a in firing if "config-drift" in a["alertname"]] == [
        "cmp0002"
    ]
    conf.write_text(applied)
    assert drift() == []


def test_rolling_back_a_completed_campaign_puts_back_what_ran_before_it(cloud: Cloud):
    runner = cloud.runner()
    runner.start(load_spec(cloud.spec("undo", RATIO, hosts=["cmp0002"])))
    assert runner.run("undo")["status"] == "completed"
    conf = cloud.work / "hosts" / "cmp0002" / "etc/nova/nova.conf"
    assert "cpu_allocation_ratio" in conf.read_text()
    assert runner.rollback("undo", ["cmp0002"]) == [{"host": "cmp0002", "status": "rolled-back"}]
    assert conf.read_text() == NOVA_CONF
    history = records.history(cloud.store, "cmp0002", "nova-compute")
    assert history[0]["event"] == "rolled-back"
    assert history[0]["digest"] == history[-1]["digest"]  # the revision first captured
    assert cloud.service("cmp0002")["status"] == "enabled"


def test_a_rollback_over_the_api_is_a_dry_run_until_executed_and_audited_as_the_caller(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
):
    from fastapi.testclient import TestClient

    from stackfleet.api import create_app

    # the API's runner finds the cloud as `stackfleet serve` does: the default clouds.yaml
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(cloud.clouds))
    runner = cloud.runner()
    runner.start(load_spec(cloud.spec("undo-api", RATIO, hosts=["cmp0002"])))
    assert runner.run("undo-api")["status"] == "completed"
    conf = cloud.work / "hosts" / "cmp0002" / "etc/nova/nova.conf"
    client = TestClient(create_app(cloud.store))
    path = "/v1/campaigns/undo-api/rollback"
    dry = client.post(path, json={"hosts": ["cmp0002"]}).json()
    assert dry["results"] is None and [t["host"] for t in dry["targets"]] == ["cmp0002"]
    assert "cpu_allocation_ratio" in conf.read_text()  # a dry-run changes nothing
    done = client.post(path, json={"hosts": ["cmp0002"], "execute": True, "actor": "bob"})
    assert done.status_code == 200, done.text
    assert done.json()["results"] == [{"host": "cmp0002", "status": "rolled-back", "error": None}]
    assert conf.read_text() == NOVA_CONF
    entries, _ = AuditLog(cloud.store).list(limit=20)
    assert any(e["actor"] == "bob" and "undo-api" in (e["policy"] or "") for e in entries)


def test_a_batch_waits_for_approval_when_the_spec_asks_for_it(cloud: Cloud):
    extra = "  approvals: {per_batch: true}\n"
    runner = cloud.runner()
    runner.start(load_spec(cloud.spec("approved", RATIO, extra, hosts=["cmp0002", "cmp0003"])))
    waiting = runner.run("approved")
    assert waiting["status"] == "awaiting-approval"
    assert "batch 0 (cmp0002)" in waiting["error"]
    assert cloud.service("cmp0002")["status"] == "enabled"  # nothing touched yet
    runner.approve("approved")
    waiting = runner.run("approved")
    assert waiting["status"] == "awaiting-approval" and "batch 1 (cmp0003)" in waiting["error"]
    conf = cloud.work / "hosts" / "cmp0003" / "etc/nova/nova.conf"
    assert conf.read_text() == NOVA_CONF
    runner.approve("approved")
    assert runner.run("approved")["status"] == "completed"
    assert "cpu_allocation_ratio" in conf.read_text()


def test_a_detached_campaign_is_carried_out_by_the_daemon_job(cloud: Cloud):
    from stackfleet.engine.settings import Settings
    from stackfleet.patching.jobs import campaign_jobs

    runner = cloud.runner()
    runner.start(load_spec(cloud.spec("detached", RATIO, hosts=["cmp0002"])))
    jobs = {j.name: j for j in campaign_jobs(cloud.store, Settings(), [str(cloud.clouds)])}
    assert jobs["campaigns"].leader_only and jobs["drift"].leader_only
    jobs["campaigns"].run()
    assert records.get_campaign(cloud.store, "detached")["status"] == "completed"
    jobs["drift"].run()  # nothing drifted: no finding
    assert not [
        a for a in alert_records.list_alerts(cloud.store, "firing") if "drift" in a["alertname"]
    ]


def test_a_halted_campaign_retried_after_the_fix_runs_the_host_again(cloud: Cloud):
    block = cloud.work / "hosts" / "block"
    block.write_text("the package mirror is down\n")
    apply = RATIO + "\n      - {command: '[ ! -f ../block ]', idempotent: true}"
    runner = cloud.runner()
    runner.start(load_spec(cloud.spec("retry", apply, hosts=["cmp0002"])))
    halted = runner.run("retry")
    assert halted["status"] == "halted"
    conf = cloud.work / "hosts" / "cmp0002" / "etc/nova/nova.conf"
    assert conf.read_text() == NOVA_CONF  # rolled back: the config change undone
    block.unlink()
    runner.resume("retry", retry=True)
    assert runner.run("retry")["status"] == "completed"
    assert "cpu_allocation_ratio = 4.0" in conf.read_text()
    steps = {s["step"]: s["status"] for s in records.steps_of(cloud.store, halted["id"])}
    assert steps == {
        "pre-check": "done",
        "drain": "done",
        "apply": "done",
        "restart": "done",
        "gate": "done",
        "undrain": "done",
        "rollback": "skipped",
    }
