"""Instance recovery against the simulated cloud: an opted-in server in ERROR (or stuck
in a task) is reset, then rebooted, then rebuilt, only as far as it takes to run again,
within the per-instance and per-hour limits, planned only unless execute is on, every
step audited. Servers are broken through the simulator's /_sim/servers/.../break route:
a reset leaves an ERROR server's guest off, a hard reboot starts it, unless its disk is
broken too (fixed only by a rebuild)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from health_rig import REGION, Rig, running_rig

from stackfleet.store import action_records, recoveries
from stackfleet.store import alerts as alert_store
from stackfleet.store.audit import AuditLog

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from running_rig(tmp_path)


def broken(rig: Rig, mode: str = "error", fixed_by: str = "reboot", tag: str = "ha") -> str:
    """Break an ACTIVE server booted from an image (through the /_sim route), tag it,
    and let the inventory see it."""
    server_id = next(
        sid
        for sid, s in sorted(rig.region.servers.items())
        if s["status"] == "ACTIVE" and isinstance(s.get("image"), dict) and s["image"].get("id")
    )
    rig.region.servers[server_id]["tags"] = [tag]
    answer = requests.post(
        f"{rig.server.base_url}/_sim/servers/{REGION}/{server_id}/break",
        json={"mode": mode, "fixed_by": fixed_by},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    rig.collect()
    return server_id


def recover(rig: Rig, execute: bool = True, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    """One assessment and one reconciler turn; the (first) recovery with its steps."""
    settings = rig.settings(
        execute=execute,
        opt_in={"tags": ["ha"]},
        instances={"enabled": True, **(limits or {})},
    )
    monitor, reconciler = rig.parts(settings)
    reconciler.run_once(monitor.run_once())
    found = recoveries.list_recoveries(rig.store)
    return recoveries.get(rig.store, found[0]["id"]) if found else {}


def state_of(rig: Rig, server_id: str) -> tuple[str, int | None]:
    server = rig.region.servers[server_id]
    return server["status"], server.get("OS-EXT-STS:power_state")


@pytest.mark.parametrize(
    ("mode", "fixed_by", "steps"),
    [
        ("stuck", "reboot", ["reset-state"]),
        ("error", "reboot", ["reset-state", "reboot"]),
        ("error", "rebuild", ["reset-state", "reboot", "rebuild"]),
    ],
)
def test_a_broken_instance_is_escalated_only_as_far_as_it_takes(
    rig: Rig, mode: str, fixed_by: str, steps: list[str]
) -> None:
    server_id = broken(rig, mode, fixed_by)

    recovery = recover(rig)

    assert recovery["kind"] == "instance" and recovery["subject"] == server_id
    assert recovery["status"] == "succeeded", recovery["steps"]
    assert [s["name"] for s in recovery["steps"]] == steps
    assert state_of(rig, server_id) == ("ACTIVE", 1)
    done = [a["action"] for a in action_records.list_actions(rig.store)[0]]
    assert sorted(done) == sorted(steps)
    audited = {e["event"] for e in AuditLog(rig.store).list(limit=1000)[0]}
    assert {"recovery.started", "action.started", "recovery.succeeded"} <= audited


def test_the_per_instance_limit_stops_the_escalation_and_alerts(rig: Rig) -> None:
    server_id = broken(rig, "error", "rebuild")

    recovery = recover(rig, limits={"max_per_instance": 2})

    assert recovery["status"] == "failed"
    assert "per-instance limit" in recovery["error"]
    assert [s["name"] for s in recovery["steps"]] == ["reset-state", "reboot"]
    assert state_of(rig, server_id)[0] == "ERROR"
    names = {
        a["alertname"] for a in alert_store.firing_by_fingerprint(rig.store, "health").values()
    }
    assert "HealthRecoveryFailed" in names


def test_the_per_hour_limit_makes_the_recovery_wait(rig: Rig) -> None:
    server_id = broken(rig, "error", "reboot")

    recovery = recover(rig, limits={"max_per_hour": 1})

    assert recovery["status"] == "running"
    assert recovery["error"].startswith("waiting: 1 instance recovery steps in the last hour")
    assert [s["name"] for s in recovery["steps"]] == ["reset-state"]
    assert state_of(rig, server_id) == ("ACTIVE", 0)  # reset, guest still off


def test_without_execute_the_recovery_is_only_planned(rig: Rig) -> None:
    server_id = broken(rig, "error", "reboot")

    recovery = recover(rig, execute=False)

    assert recovery["status"] == "dry-run"
    assert {s["status"] for s in recovery["steps"]} == {"planned"}
    assert state_of(rig, server_id)[0] == "ERROR"
    assert action_records.list_actions(rig.store)[1] == 0


def test_an_instance_not_opted_in_is_left_alone(rig: Rig) -> None:
    server_id = broken(rig, "error", "reboot", tag="other")

    assert recover(rig) == {}
    assert state_of(rig, server_id)[0] == "ERROR"


def test_the_break_route_refuses_bad_input(rig: Rig) -> None:
    url = f"{rig.server.base_url}/_sim/servers/{REGION}"
    assert requests.post(f"{url}/nope/break", json={}, timeout=10).status_code == 404
    some = next(iter(rig.region.servers))
    bad = requests.post(f"{url}/{some}/break", json={"mode": "melt"}, timeout=10)
    assert bad.status_code == 400 and "mode must be error, stuck or power" in bad.text
