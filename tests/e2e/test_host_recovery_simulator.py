"""Host failure and recovery against the simulated cloud, its simulated BMCs and its
per-host management listeners: a failed host is detected, fenced, its compute service
forced down, its servers evacuated and running again elsewhere, every step audited; a
process failure evacuates nothing; a fence that cannot be confirmed stops the recovery
with an alert; too many hosts down at once freezes everything; a recovery interrupted
half-way resumes without repeating a step."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from health_rig import CLOUD, REGION, Rig, detect, opt_in_two, running_rig

from stackfleet.engine.recovery import RecoveryReconciler
from stackfleet.store import action_records, recoveries
from stackfleet.store.audit import AuditLog

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from running_rig(tmp_path)


def test_a_failed_host_is_fenced_evacuated_and_its_servers_run_elsewhere(rig: Rig) -> None:
    """Two small servers of the host opt in by tag (the others are left on the host and
    said so): both are evacuated and end as they were (ACTIVE / SHUTOFF) elsewhere."""
    monitor, reconciler = rig.parts(rig.settings(opt_in={"tags": ["ha"]}))
    victim = rig.healthy_hosts()[0]
    on_host = rig.servers_on(victim)
    before = opt_in_two(rig, victim)
    left = set(on_host) - set(before)
    assert monitor.run_once().host(CLOUD, REGION, victim).state == "healthy"

    rig.server.sim.hosts.fail(REGION, victim, "host")
    assessment = detect(monitor, victim, "host")
    assert rig.bmcs.bmc(victim).power_state == "On"  # a kernel panic leaves it on

    reconciler.run_once(assessment)

    [recovery] = recoveries.list_recoveries(rig.store)
    shown = recoveries.get(rig.store, recovery["id"])
    assert recovery["status"] == "succeeded", (shown["error"], shown["steps"])
    assert rig.bmcs.bmc(victim).power_state == "Off"
    service = next(
        s
        for s in rig.region.compute_services.values()
        if s["host"] == victim and s["binary"] == "nova-compute"
    )
    assert service["forced_down"] and service["status"] == "disabled"
    assert service["disabled_reason"].startswith(f"stackfleet recovery {recovery['id']}: done")
    for sid, old in before.items():
        now = rig.region.servers[sid]
        assert now["OS-EXT-SRV-ATTR:host"] != victim
        assert now["status"] == old["status"], (sid, old["status"], now["status"])
    assert left <= set(rig.servers_on(victim))
    steps = recoveries.get(rig.store, recovery["id"])["steps"]
    names = [s["name"] for s in steps]
    assert names[:2] == ["fence", "force-down"]
    assert names.count("evacuate") == len(before)
    assert all(s["status"] == "done" for s in steps)
    audited = {e["event"] for e in AuditLog(rig.store).list(limit=1000)[0]}
    assert {
        "recovery.started",
        "action.started",
        "action.completed",
        "recovery.succeeded",
    } <= audited


def test_a_process_failure_evacuates_nothing(rig: Rig) -> None:
    monitor, reconciler = rig.parts(rig.settings())
    victim = rig.healthy_hosts()[0]
    before = rig.servers_on(victim)

    rig.server.sim.hosts.fail(REGION, victim, "process")
    assessment = detect(monitor, victim, "process")
    reconciler.run_once(assessment)

    assert recoveries.list_recoveries(rig.store) == []
    assert rig.bmcs.bmc(victim).power_state == "On"
    assert set(rig.servers_on(victim)) == set(before)
    assert action_records.list_actions(rig.store)[1] == 0


def test_a_fence_that_cannot_be_confirmed_evacuates_nothing_and_alerts(rig: Rig) -> None:
    monitor, reconciler = rig.parts(rig.settings())
    victim = rig.healthy_hosts()[0]
    before = rig.servers_on(victim)
    # the BMC refuses the power off: it answers but stays On
    rig.bmcs.bmc(victim).set(power_state="On")
    bmc = rig.bmcs.bmc(victim)
    bmc.reset = lambda reset_type: True  # type: ignore[method-assign]

    rig.server.sim.hosts.fail(REGION, victim, "host")
    assessment = detect(monitor, victim, "host")
    reconciler.run_once(assessment)

    [recovery] = recoveries.list_recoveries(rig.store)
    assert recovery["status"] == "failed"
    assert "fence not confirmed" in recovery["error"]
    assert set(rig.servers_on(victim)) == set(before)
    service = next(
        s
        for s in rig.region.compute_services.values()
        if s["host"] == victim and s["binary"] == "nova-compute"
    )
    assert not service.get("forced_down")
    from stackfleet.store import alerts as alert_store

    names = {
        a["alertname"] for a in alert_store.firing_by_fingerprint(rig.store, "health").values()
    }
    assert "HealthRecoveryFailed" in names


def test_more_than_half_the_hosts_down_freezes_every_recovery(rig: Rig) -> None:
    monitor, reconciler = rig.parts(rig.settings())
    hosts = rig.healthy_hosts()
    for host in hosts:
        rig.server.sim.hosts.fail(REGION, host, "host")
    deadline = time.monotonic() + 15
    while True:
        assessment = monitor.run_once()
        if assessment.fleet.frozen or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert assessment.fleet.frozen and "look down at once" in assessment.fleet.frozen

    reconciler.run_once(assessment)

    assert recoveries.list_recoveries(rig.store) == []
    assert all(rig.bmcs.bmc(h).power_state == "On" for h in hosts)
    from stackfleet.store import alerts as alert_store

    names = {
        a["alertname"] for a in alert_store.firing_by_fingerprint(rig.store, "health").values()
    }
    assert "HealthRecoveryFrozen" in names


def test_an_interrupted_recovery_resumes_without_repeating_a_step(rig: Rig) -> None:
    """The crash is made in-process: the recovery's driver stops after the fence and the
    force-down (as a kill -9 would leave it: steps and action records written, the
    driver gone); a second reconciler with another owner takes it over."""
    settings = rig.settings(takeover_after="0s", opt_in={"tags": ["ha"]})
    monitor, first = rig.parts(settings)
    victim = rig.healthy_hosts()[0]
    before = opt_in_two(rig, victim)
    rig.server.sim.hosts.fail(REGION, victim, "host")
    assessment = detect(monitor, victim, "host")

    class Crash(BaseException):
        pass

    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise Crash

    first._evacuate = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        first.run_once(assessment)
    [recovery] = recoveries.list_recoveries(rig.store)
    assert recovery["status"] == "running"

    second = RecoveryReconciler(
        rig.store, settings, first.connections, monitor, owner="second-process"
    )
    second.run_once(monitor.run_once())

    done = recoveries.get(rig.store, recovery["id"])
    assert done["status"] == "succeeded", done
    fences = [a for a in action_records.list_actions(rig.store)[0] if a["action"] == "fence"]
    assert len(fences) == 1
    evacuations = [
        a for a in action_records.list_actions(rig.store)[0] if a["action"] == "evacuate"
    ]
    assert len(evacuations) == len(before)
    for sid in before:
        assert rig.region.servers[sid]["OS-EXT-SRV-ATTR:host"] != victim


def test_every_evacuation_is_requested_before_any_is_waited_for(rig: Rig) -> None:
    """Each evacuation takes Nova 1 s here (the simulator's action delay): the recovery
    asks for all of them first and then watches them together, so no evacuation waits
    for another to finish."""
    rig.server.sim.action_delay = 1.0
    monitor, reconciler = rig.parts(rig.settings(opt_in={"tags": ["ha"]}))
    victim = rig.healthy_hosts()[0]
    opt_in_two(rig, victim)
    rig.server.sim.hosts.fail(REGION, victim, "host")
    reconciler.run_once(detect(monitor, victim, "host"))

    [recovery] = recoveries.list_recoveries(rig.store)
    shown = recoveries.get(rig.store, recovery["id"])
    steps = shown["steps"]
    asked = [s for s in steps if s["name"] == "evacuate"]
    verified = [s for s in steps if s["name"] == "verify"]
    assert len(asked) == 2
    assert {s["status"] for s in verified} == {"done"}, [
        (s["name"], s["status"], s["error"], s["details"]) for s in steps if s["status"] != "done"
    ]
    assert len(verified) == len(asked)
    assert max(s["finished_at"] for s in asked) < min(s["finished_at"] for s in verified)
    for server in verified:
        assert rig.region.servers[server["target"]]["OS-EXT-SRV-ATTR:host"] != victim
