"""Several processes acting at once on one PostgreSQL store (scale-out workers, or a
stalled leader and its successor) never act twice: four `policy run --execute` race
over the same findings, and the simulated cloud receives each stop and each release
exactly once. The database enforces it (one open finding per policy and resource, one
action per idempotency key, a compare-and-set claim), not only the code."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

from stackfleet.engine.collect import collect
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store

CLOUD = "sim"
RACERS = 4


def _mutations(server: SimulatorServer) -> dict[str, int]:
    return {
        key: n
        for key, n in server.sim.request_counts.items()
        if key.startswith(("POST", "DELETE", "PUT")) and "/auth/tokens" not in key
    }


def test_racing_runs_act_on_each_resource_once(tmp_path, postgres_url):
    now = datetime.now(UTC).replace(microsecond=0)
    with SimulatorServer(preset("small", now=now)) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        region = server.state.regions["RegionOne"]
        servers = sorted(
            s["id"]
            for s in region.servers.values()
            if s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"]
        )[:3]
        fips = sorted(server.state.ground_truth["RegionOne"]["unattached_floating_ips"])[:3]
        assert len(servers) == 3 and len(fips) == 3
        policy = tmp_path / "act.yaml"
        policy.write_text(
            f"""policies:
  - name: stop-these
    resource: server
    filters: [{{type: value, key: id, op: in, value: {servers}}}, {{status: ACTIVE}}]
    actions: [stop]
    safety: {{max_percent: 100, max_actions: 100}}
  - name: release-these
    resource: floating_ip
    filters: [{{type: value, key: id, op: in, value: {fips}}}, {{port_id: null}}]
    actions: [release]
    safety: {{max_percent: 100, max_actions: 100}}
"""
        )
        store = open_store(postgres_url)
        collect(store, CLOUD, config_files=[str(clouds)])
        store.close()
        (tmp_path / "settings.yaml").write_text("{}\n")
        env = {
            **os.environ,
            "STACKFLEET_DB_URL": postgres_url,
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_CONFIG": str(tmp_path / "settings.yaml"),
        }
        server.sim.request_counts.clear()
        racers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stackfleet.cli.main",
                    "policy",
                    "run",
                    str(policy),
                    "--execute",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
            for _ in range(RACERS)
        ]
        outputs = [p.communicate(timeout=300)[0] for p in racers]
        assert all(p.returncode == 0 for p in racers), "\n".join(outputs)
        for sid in servers:
            assert region.servers[sid]["status"] == "SHUTOFF"
        for fip in fips:
            assert fip not in region.floatingips
        calls = _mutations(server)
        stops = sum(n for key, n in calls.items() if key.endswith("/action"))
        releases = sum(n for key, n in calls.items() if key.startswith("DELETE"))
        assert (stops, releases) == (3, 3), calls

        store = open_store(postgres_url)
        from stackfleet.store.audit import AuditLog

        entries, _total = AuditLog(store).list(limit=500, event="action.started")
        started = sorted(e["target"].rsplit("/", 1)[1] for e in entries)
        assert started == sorted(servers + fips)
        assert AuditLog(store).verify().ok
        store.close()
