"""A real crash in the middle of a host recovery: `stackfleet recoveries run --execute`
is killed with SIGKILL while Nova is still evacuating (the simulator makes each server
action take 3 s), then run again. The recovery completes, and the simulated cloud saw
exactly one fence (one power-off reset of the host's BMC) and one evacuation per server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from health_rig import CLOUD, REGION, Rig, detect, opt_in_two, running_rig, stackfleet

from stackfleet.store import recoveries

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from running_rig(tmp_path)


def evacuations_of(rig: Rig, server_id: str) -> int:
    return sum(
        1
        for m in rig.region.migrations.values()
        if m.get("instance_uuid") == server_id and m.get("migration_type") == "evacuation"
    )


def test_a_recovery_killed_mid_evacuation_completes_after_a_restart_without_repeats(
    rig: Rig,
) -> None:
    victim = rig.healthy_hosts()[0]
    chosen = opt_in_two(rig, victim)
    env = rig.cli_env(opt_in={"tags": ["ha"]}, takeover_after="1s")
    delay = requests.put(
        f"{rig.server.base_url}/_sim/action-delay", json={"seconds": 3}, timeout=10
    )
    assert delay.status_code == 200, delay.text
    monitor, _ = rig.parts(rig.settings())
    rig.server.sim.hosts.fail(REGION, victim, "host")
    detect(monitor, victim, "host")

    first = subprocess.Popen(
        [sys.executable, "-m", "stackfleet.cli.main", "recoveries", "run", "--execute"]
        + ["--os-cloud", CLOUD],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            found = recoveries.list_recoveries(rig.store)
            steps = recoveries.get(rig.store, found[0]["id"])["steps"] if found else []
            if any(s["name"] == "evacuate" and s["status"] == "done" for s in steps):
                break
            assert first.poll() is None, "the first run ended before it could be killed"
            assert time.monotonic() < deadline, f"no evacuation requested: {steps}"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
    [recovery] = recoveries.list_recoveries(rig.store)
    assert recovery["status"] == "running"
    in_flight = [s["target"] for s in recoveries.get(rig.store, recovery["id"])["steps"]]
    assert any(rig.region.servers[sid].get("OS-EXT-STS:task_state") for sid in chosen), (
        "killed while Nova was still evacuating",
        in_flight,
    )

    time.sleep(1.5)  # the dead driver's claim goes stale (takeover_after 1 s)
    second = stackfleet(
        "recoveries", "run", "--execute", "--os-cloud", CLOUD, "-f", "json", env=env
    )
    assert second.returncode == 0, second.stderr
    [resumed] = json.loads(second.stdout)
    assert resumed["id"] == recovery["id"]
    assert resumed["status"] == "succeeded", recoveries.get(rig.store, recovery["id"])["steps"]

    assert rig.bmcs.bmc(victim).resets == ["ForceOff"]
    for sid, before in chosen.items():
        assert evacuations_of(rig, sid) == 1, sid
        now = rig.region.servers[sid]
        assert now["OS-EXT-SRV-ATTR:host"] != victim
        assert now["status"] == before["status"]
