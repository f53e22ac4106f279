"""Availability per OpenStack service (issue 11 §6): from the service state changes the
health job records, summed over each service's hosts, in `stackfleet sla report
--services`, `GET /v1/sla/services` and /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from stackfleet.api.app import create_app
from stackfleet.store import health_states, open_store
from stackfleet.store.health_states import Verdict


def _services(states: dict[str, str]) -> list[Verdict]:
    return [
        Verdict("c", "r", "service", f"id-{name}", name, state, None, f"it is {state}", {})
        for name, state in states.items()
    ]


def test_a_service_down_on_one_host_costs_its_availability(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sla.db'}"
    store = open_store(url)
    now = datetime.now(UTC)
    start = now - timedelta(hours=4)
    up = {"nova-compute@cmp1": "healthy", "nova-compute@cmp2": "healthy"}
    up["neutron-l3-agent@net1"] = "healthy"
    health_states.save(store, "service", _services(up), start)
    # cmp1's nova-compute down for one hour, two hours in
    health_states.save(
        store, "service", _services({**up, "nova-compute@cmp1": "down"}), start + timedelta(hours=2)
    )
    health_states.save(store, "service", _services(up), start + timedelta(hours=3))

    env = {
        **os.environ,
        "STACKFLEET_DB_URL": url,
        "STACKFLEET_CONFIG": str(tmp_path / "none.yaml"),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    (tmp_path / "none.yaml").write_text("{}\n")
    done = subprocess.run(
        [sys.executable, "-m", "stackfleet.cli.main", "sla", "report", "--services",
         "--since", "5h", "-f", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reports = {r["name"]: r for r in json.loads(done.stdout)}
    assert set(reports) == {"nova-compute", "neutron-l3-agent"}
    compute = reports["nova-compute"]
    # 2 hosts × 4 h measured, 1 h down: 87.5 %, below the default 99.9 % target
    assert abs(compute["achieved"] - 87.5) < 0.1 and compute["met"] is False
    [incident] = compute["incidents"]
    assert incident["cause"].startswith("nova-compute@cmp1") and incident["end"]
    assert abs(incident["seconds"] - 3600) < 5
    assert reports["neutron-l3-agent"]["achieved"] == 100.0

    table = subprocess.run(
        [sys.executable, "-m", "stackfleet.cli.main", "sla", "report", "--services",
         "--service", "nova-compute", "--since", "5h"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert table.returncode == 0 and "nova-compute@cmp1" in table.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "stackfleet.cli.main", "sla", "report", "--services",
         "--service", "nova-api"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert unknown.returncode != 0 and "no service 'nova-api'" in unknown.stderr

    api = TestClient(create_app(store))
    [item] = api.get("/v1/sla/services", params={"service": "nova-compute"}).json()["items"]
    assert item["met"] is False and len(item["incidents"]) == 1
    assert api.get("/v1/sla/services", params={"target": 150}).status_code == 400
    metrics = api.get("/metrics").text
    assert 'stackfleet_service_availability_percent{service="neutron-l3-agent"} 100.0' in metrics
