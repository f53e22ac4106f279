"""The waste lifecycle against the simulated cloud, with the clock moved forward: mark
and tell the owner, stop and lock after the grace period, snapshot and delete after the
second; cancel when the resource is used again; owners extend within the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sinks import SmtpSink
from support import run_cli

from stackfleet.core.delivery import NotifySettings
from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.loop import CloudSpec, CollectionLoop
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.schedule import PolicySchedule
from stackfleet.engine.settings import Settings
from stackfleet.policy import load_files
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import leases, open_store
from stackfleet.store.audit import AuditLog
from stackfleet.store.findings import list_findings

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
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        url = f"sqlite:///{tmp_path / 'store.db'}"
        store = open_store(url)
        names = {p["id"]: p["name"] for p in server.state.projects.values()}
        settings = Settings(
            notify=NotifySettings(
                smtp_host="127.0.0.1",
                smtp_port=sink.port,
                owners={name: [f"owner@{name}.example"] for name in names.values()},
                keystone_email=False,
            )
        )
        [policy] = [p for p in load_files(["pack:waste"]) if p.name == "shutoff-servers"]
        runner = PolicyRunner(store, settings, Connections([str(clouds)]))

        def step(days: float) -> None:
            collect(store, CLOUD, config_files=[str(clouds)])
            runner.run([policy], execute=True, now=NOW + days * DAY)

        yield (
            server,
            store,
            step,
            sink,
            {"STACKFLEET_DB_URL": url, "OS_CLIENT_CONFIG_FILE": str(clouds)},
        )
        store.close()
    sink.close()


def stages(store, only: list[str] | None = None) -> dict[str, str]:
    return {
        row["resource_id"]: row["stage"]
        for row in leases.list_leases(store)
        if only is None or row["resource_id"] in only
    }


def test_a_long_shutoff_server_is_marked_locked_then_snapshotted_and_deleted(fleet):
    server, store, step, sink, _env = fleet
    region = server.state.regions["RegionOne"]
    targets = server.state.ground_truth["RegionOne"]["long_shutoff_servers"]

    step(0)
    assert stages(store, targets) == dict.fromkeys(targets, "marked")
    for sid in targets:
        assert "will be stopped after" in region.servers[sid]["metadata"]["stackfleet-lifecycle"]
        assert not region.servers[sid]["locked"]
    assert len(sink.messages) == len(targets)  # one notice per owner
    assert all("will be stopped after" in m for m in sink.messages)

    step(3)  # inside the grace period: nothing happens
    assert stages(store, targets) == dict.fromkeys(targets, "marked")

    step(7.5)
    assert stages(store, targets) == dict.fromkeys(targets, "stopped")
    for sid in targets:
        assert region.servers[sid]["locked"]
        assert "will be deleted after" in region.servers[sid]["metadata"]["stackfleet-lifecycle"]

    step(13)
    assert stages(store, targets) == dict.fromkeys(targets, "done")
    for sid in targets:
        assert sid not in region.servers
    snapshots = [i for i in region.images.values() if i.get("instance_uuid") in targets]
    assert len(snapshots) == len(targets) and {i["status"] for i in snapshots} == {"active"}
    events = [e["event"] for e in AuditLog(store).list(limit=500)[0]]
    assert {"lifecycle.mark", "lifecycle.stop", "lifecycle.delete"} <= set(events)
    assert AuditLog(store).verify().ok
    step(14)
    # the findings stayed open while StackFleet marked and locked the servers, and
    # resolved once a pass saw the servers gone
    assert {f["resource_id"] for f in list_findings(store, status="resolved")[0]} == set(targets)


def test_owners_are_reminded_once_before_each_step(fleet):
    server, _store, step, sink, _env = fleet
    targets = server.state.ground_truth["RegionOne"]["long_shutoff_servers"]

    def told(*words: str) -> int:
        """Messages about the target servers containing every one of `words`
        (quoted-printable soft line breaks removed); other servers reach 30 days
        SHUTOFF as the clock moves, and get notices of their own."""
        texts = [m.replace("=\r\n", "") for m in sink.messages]
        return sum(
            1 for t in texts if all(w in t for w in words) and any(sid in t for sid in targets)
        )

    step(0)
    assert told("reminder:") == 0 and told("will be stopped after") == len(targets)
    step(4)  # more than remind_before (2 days) ahead of the stop at day 7
    assert told("reminder:") == 0
    step(5.5)
    assert told("reminder: server") == len(targets)
    step(6)  # once per step, not at every run
    assert told("reminder: server") == len(targets)
    step(7.5)  # stopped and locked; deletion due at day 12.5
    step(10.5)  # inside the 2 days before the deletion
    assert told("reminder: server", "will be deleted after") == len(targets)


def test_the_lifecycle_is_cancelled_and_unmarked_when_the_server_is_used_again(fleet):
    server, store, step, _sink, _env = fleet
    region = server.state.regions["RegionOne"]
    [first, *_rest] = server.state.ground_truth["RegionOne"]["long_shutoff_servers"]
    step(0)
    # the owner starts it again
    region.servers[first].update(
        {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1}
    )
    step(1)
    assert stages(store)[first] == "cancelled"
    assert "stackfleet-lifecycle" not in region.servers[first]["metadata"]


def test_an_owner_extends_a_lease_within_the_cap(fleet):
    server, store, step, _sink, env = fleet
    region = server.state.regions["RegionOne"]
    [first, *_rest] = server.state.ground_truth["RegionOne"]["long_shutoff_servers"]
    step(0)
    extended = run_cli("lease", "extend", first, "--days", "3", env=env)
    assert extended.code == 0, extended.stderr
    assert "3 of 30 days of extension used" in extended.stdout
    step(8)  # would have been locked at day 7, now due at day 10
    assert stages(store)[first] == "marked"
    assert "will be stopped after" in region.servers[first]["metadata"]["stackfleet-lifecycle"]
    assert (NOW + 10 * DAY).strftime("%Y-%m-%d") in region.servers[first]["metadata"][
        "stackfleet-lifecycle"
    ]
    too_long = run_cli("lease", "extend", first, "--days", "28", env=env)
    assert too_long.code != 0
    assert "27 days are left" in too_long.stderr
    step(10.5)
    assert stages(store)[first] == "stopped"


def test_the_daemon_runs_periodic_policies_after_each_pass(tmp_path):
    with SimulatorServer(preset("small", now=NOW)) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        policies = [
            p
            for p in load_files(["pack:waste"])
            if p.name in ("shutoff-servers", "available-volumes")
        ]
        schedule = PolicySchedule(PolicyRunner(store, Settings()), policies, execute=False)
        loop = CollectionLoop(
            store, [CloudSpec(CLOUD, config_files=[str(clouds)])], after_pass=schedule.after_pass
        )
        loop.run_once()
        found = {f["policy"] for f in list_findings(store)[0]}
        assert found == {"shutoff-servers", "available-volumes"}
        assert schedule.due(datetime.now(UTC)) == []  # hourly: not due again yet
        assert leases.list_leases(store) == []  # dry-run: no lifecycle started
        store.close()
