"""`stackfleet demo`: the simulated cloud, a pass, the API and the dashboard, the story
of what StackFleet found, stopped by Ctrl-C (SIGINT) with everything shut down
cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
import yaml

from stackfleet.sources.openstack.connection import connect


def test_demo_serves_the_collected_fleet_and_stops_on_ctrl_c(tmp_path):
    env = {**os.environ, "STACKFLEET_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stackfleet.cli.main", "demo", "--api-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output = ""
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while "Ctrl-C stops everything" not in output:
            assert time.monotonic() < deadline, output
            line = proc.stdout.readline()
            assert line or proc.poll() is None, output
            output += line
        # keep reading what the demo says from now on: a pipe left full would block the
        # demo's next write (a log line of a job) and with it its shutdown
        later: list[str] = []
        reader = threading.Thread(target=lambda: later.extend(proc.stdout), daemon=True)
        reader.start()
        assert "Fleet summary" in output
        # after the pass: the dashboard's URL first, then what was found, grouped
        story = [
            "Dashboard  http://",
            "What StackFleet found",
            "Waste it could reclaim: ",
            "Security violations: ",
            "HA violations: ",
            "Hardware and capacity warnings: ",
            "Open alerts: ",
            "Dry-run plan of the packs: ",
            "Waiting for an operator's approval: 1",
        ]
        places = [output.find(part) for part in story]
        assert -1 not in places and places == sorted(places), output
        assert output.rfind("pass 1 ", 0, places[0]) != -1, output
        assert re.search(r"ssh-open-to-world \(critical\): 1", output), output
        assert re.search(r"unattached-floating-ips: \d+ notify, \d+ tag", output), output
        dashboard = re.search(r"Dashboard  (http://127\.0\.0\.1:\d+/ui/)", output).group(1)  # type: ignore[union-attr]
        page = httpx.get(dashboard, timeout=10)
        assert page.status_code == 200 and 'id="main"' in page.text
        assert re.search(r"pass 1 stackfleet-demo/RegionOne: complete", output), output
        url = re.search(r"API\s+(http://127\.0\.0\.1:\d+)/v1/summary", output).group(1)  # type: ignore[union-attr]
        summary = httpx.get(f"{url}/v1/summary", timeout=10).json()
        assert summary["hypervisors"]["down"] >= 1
        assert summary["servers_by_status"].get("ERROR", 0) >= 1
        # the periodic work is the daemon's, as in `stackfleet serve`
        jobs = {j["name"] for j in httpx.get(f"{url}/v1/jobs", timeout=10).json()["items"]}
        assert {"collect", "hardware", "quotas", "events"} <= jobs
        # writes need the local operator token the demo wrote (0600) and printed
        token_file = tmp_path / "demo-api-token"
        assert f"Token      {token_file}" in output, output
        assert token_file.stat().st_mode & 0o777 == 0o600
        silence = {"matchers": ["alertname=demo"], "duration": "1h"}
        assert httpx.post(f"{url}/v1/silences", json=silence, timeout=10).status_code == 401
        # the remediation the story says waits for approval is in the approvals queue
        queue = httpx.get(f"{url}/v1/actions?status=awaiting-approval", timeout=10).json()
        assert [a["policy"] for a in queue["items"]] == ["remediate-ssh-open-to-world"]
        token = {"X-Auth-Token": token_file.read_text().strip()}
        made = httpx.post(f"{url}/v1/silences", json=silence, headers=token, timeout=10)
        assert made.status_code == 200, made.text
        # the demo's daemon only dry-runs: an approval is carried out at once instead,
        # on the simulated cloud (the world-open SSH rule is deleted), and the page says so
        assert "carried out at once" in queue["approval_runs"]
        [queued] = queue["items"]
        assert queued["on_approval"] == "at-once"  # one of the demo's own packs
        approved = httpx.post(
            f"{url}/v1/actions/{queued['id']}/approve", headers=token, timeout=60
        ).json()
        assert approved["status"] == "succeeded", approved
        rule = queued["resource_id"]
        [target] = connect("stackfleet-demo", config_files=[str(tmp_path / "demo-clouds.yaml")])
        assert rule not in {r.id for r in target.conn.network.security_group_rules()}

        proc.send_signal(signal.SIGINT)
        try:
            # the demo ends itself 20 s after Ctrl-C at the latest
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            pytest.fail(f"the demo did not stop within 60 s of Ctrl-C:\n{output}{''.join(later)}")
        reader.join(10)
        rest = "".join(later)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output + rest
    assert "stopped" in rest
    assert "Traceback" not in output + rest
    # nothing is left listening: the API, the simulated cloud and its BMCs lived in the
    # demo's own process
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=5)
    bmc_map = yaml.safe_load((tmp_path / "demo-bmc-map.yaml").read_text(encoding="utf-8"))
    for bmc in bmc_map["bmcs"].values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{bmc['address']}/redfish/v1", timeout=5)


def test_the_host_failure_scenario_shows_detection_fence_evacuation_and_active(tmp_path):
    """`--scenario host-failure`: after the first health pass a host fails (Nova at its
    default heartbeats), and the demo prints each stage as it happens, in order."""
    env = {**os.environ, "STACKFLEET_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stackfleet.cli.main", "demo", "--api-port", "0"]
        + ["--scenario", "host-failure"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output = ""
    try:
        deadline = time.monotonic() + 150
        assert proc.stdout is not None
        while not re.search(r"recovery \d+ (succeeded|failed|stopped)", output):
            assert time.monotonic() < deadline, output
            line = proc.stdout.readline()
            assert line or proc.poll() is None, output
            output += line
        later: list[str] = []
        reader = threading.Thread(target=lambda: later.extend(proc.stdout), daemon=True)
        reader.start()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert "stopped" in "".join(later)
    victim = re.search(r"scenario host-failure: (\S+) fails now", output).group(1)  # type: ignore[union-attr]
    stages = [
        f"detected: {victim} down: host failure",
        f"fenced {victim}: BMC power Off",
        f"compute service of {victim} forced down",
        "evacuation of ",
        " ACTIVE on ",
        "recovery 1 succeeded: 2 of 2 servers running again elsewhere",
    ]
    positions = [output.find(stage) for stage in stages]
    assert -1 not in positions, output
    assert positions == sorted(positions), output
    assert "Traceback" not in output


def test_an_unknown_demo_scenario_is_refused(tmp_path):
    env = {**os.environ, "STACKFLEET_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "stackfleet.cli.main", "demo", "--scenario", "meteor"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--scenario must be one of none, host-failure" in result.stderr
