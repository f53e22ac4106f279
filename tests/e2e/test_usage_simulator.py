"""Real usage from Nova server diagnostics against the simulated cloud: `stackfleet usage
sweep` reads the ACTIVE servers' cumulative counters, turns two readings into rates, and
the waste pack's idle-servers rule then finds exactly the generator's idle servers (the
old enough ones) and none of the busy ones. Failing servers are reported, never 0 %."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from support import run_cli, run_openstack

from stackfleet.api import ApiServer
from stackfleet.core.times import parse_time
from stackfleet.engine.collect import collect
from stackfleet.engine.usage import UsageSettings, sweep_diagnostics
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack.connection import connect
from stackfleet.store import open_store
from stackfleet.store.metrics import series

# openstacksdk warns about its own internals on every call
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A collected small cloud and one CLI diagnostics sweep (two readings per server,
    a second apart)."""
    workdir = tmp_path_factory.mktemp("usage")
    with SimulatorServer(preset("small", now=NOW)) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        (workdir / "settings.yaml").write_text("usage: {source: diagnostics}\n")
        env = {
            "STACKFLEET_DB_URL": f"sqlite:///{workdir / 'store.db'}",
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_CONFIG": str(workdir / "settings.yaml"),
        }
        collected = run_cli("collect", "--os-cloud", CLOUD, env=env)
        assert collected.code == 0, collected.stderr
        first = run_cli(
            "usage", "sweep", "--os-cloud", CLOUD, "--first-reading-gap", "1", "-f", "json", env=env
        )
        assert first.code == 0, first.stderr
        yield server, clouds, env, first.json()


def test_a_sweep_reads_every_active_server_and_only_those(swept):
    server, _clouds, _env, rows = swept
    region = server.state.regions["RegionOne"]
    active = {s["id"] for s in region.servers.values() if s["status"] == "ACTIVE"}
    assert {r["id"] for r in rows} == active


def test_idle_servers_read_near_half_a_percent_and_busy_ones_well_above(swept):
    server, _clouds, _env, rows = swept
    idle = set(server.state.ground_truth["RegionOne"]["idle_servers"])
    sampled = {r["id"]: r for r in rows if r["outcome"] == "sampled"}
    assert idle <= set(sampled)
    for server_id, row in sampled.items():
        if server_id in idle:
            assert 0.2 < row["cpu_util"] < 1.0, row
        else:
            assert row["cpu_util"] > 10, row
        assert row["memory_used_mb"] > 0 and row["net_rx_bps"] > 0 and row["disk_write_bps"] > 0


def test_servers_whose_diagnostics_fail_are_skipped_with_the_reason_and_no_cpu_sample(swept):
    server, _clouds, env, rows = swept
    on_down_hosts = set(server.state.ground_truth["RegionOne"]["servers_on_down_hosts"])
    skipped = {r["id"]: r for r in rows if r["outcome"] == "skipped"}
    assert set(skipped) == on_down_hosts
    assert all("HTTP 500" in r["reason"] and r["cpu_util"] is None for r in skipped.values())
    store = open_store(env["STACKFLEET_DB_URL"])
    try:
        for server_id in skipped:
            assert series(store, "server", server_id, "cpu_util") == []
    finally:
        store.close()


def test_a_server_that_stopped_is_reported_not_running_and_not_stored_as_zero(swept, tmp_path):
    server, clouds, env, _rows = swept
    region = server.state.regions["RegionOne"]
    idle = server.state.ground_truth["RegionOne"]["idle_servers"]
    target = region.servers[idle[-1]]
    store = open_store(env["STACKFLEET_DB_URL"])
    try:
        before = len(series(store, "server", target["id"], "cpu_util"))
        # Nova still lists it ACTIVE in our inventory, but the domain is shut down
        target["OS-EXT-STS:power_state"] = 4
        try:
            sweep = sweep_diagnostics(
                store, connect(CLOUD, config_files=[str(clouds)]), UsageSettings(budget=1000)
            )
        finally:
            target["OS-EXT-STS:power_state"] = 1
        [row] = [r for r in sweep.rows if r.resource_id == target["id"]]
        assert row.outcome == "skipped" and "HTTP 409" in (row.reason or "")
        assert "not running" in (row.reason or "")
        assert len(series(store, "server", target["id"], "cpu_util")) == before
    finally:
        store.close()


def test_the_waste_packs_idle_rule_finds_the_idle_servers_from_diagnostics(swept):
    server, clouds, env, _rows = swept
    region = server.state.regions["RegionOne"]
    store = open_store(env["STACKFLEET_DB_URL"])
    try:
        targets = connect(CLOUD, config_files=[str(clouds)])
        # the rule wants 12 samples in its window: one more reading per sweep
        for _ in range(11):
            time.sleep(0.6)
            sweep_diagnostics(store, targets, UsageSettings(budget=1000))
    finally:
        store.close()
    again = run_cli("usage", "sweep", "--os-cloud", CLOUD, "-f", "json", env=env)
    assert again.code == 0, again.stderr
    report = run_cli(
        "policy", "run", "--pack", "waste", "--policy", "idle-servers", "-f", "json", env=env
    )
    assert report.code == 0, report.stderr
    [policy] = report.json()["policies"]
    planned = sorted({c["resource"]["id"] for c in policy["planned"]})
    idle = server.state.ground_truth["RegionOne"]["idle_servers"]
    expected = sorted(
        i for i in idle if parse_time(region.servers[i]["created"]) < NOW - timedelta(days=14)
    )
    assert expected and policy["matched"] == len(expected) and planned == expected
    assert all(c["verdict"] != "done" for c in policy["planned"])  # a dry run


def test_usage_show_gives_the_latest_values_and_window_means(swept):
    server, _clouds, env, _rows = swept
    idle = server.state.ground_truth["RegionOne"]["idle_servers"][0]
    shown = run_cli("usage", "show", idle, "-f", "json", env=env)
    assert shown.code == 0, shown.stderr
    cpu = shown.json()["metrics"]["cpu_util"]
    assert 0.2 < cpu["latest"] < 1.0 and 0.2 < cpu["mean_1d"] < 1.0
    assert cpu["samples_1d"] >= 1
    table = run_cli("usage", "show", idle, env=env)
    assert table.code == 0 and "cpu_util" in table.stdout


def test_the_api_serves_a_servers_usage_and_metrics_only_aggregates(swept):
    server, _clouds, env, _rows = swept
    truth = server.state.ground_truth["RegionOne"]
    idle = truth["idle_servers"][0]
    store = open_store(env["STACKFLEET_DB_URL"])
    try:
        with ApiServer(store) as url:
            body = httpx.get(f"{url}/v1/usage/servers/{idle}").json()
            assert 0.2 < body["metrics"]["cpu_util"]["latest"] < 1.0
            assert body["last_attempt"]["ok"] is True
            missing = httpx.get(f"{url}/v1/usage/servers/no-such-server")
            assert missing.status_code == 404 and "error" in missing.json()
            metrics = httpx.get(f"{url}/metrics").text
    finally:
        store.close()
    region = server.state.regions["RegionOne"]
    active = sum(1 for s in region.servers.values() if s["status"] == "ACTIVE")
    sampled = active - len(truth["servers_on_down_hosts"])
    assert f'stackfleet_servers_usage_sampled{{cloud="sim",region="RegionOne"}} {sampled}.0' in (
        metrics
    )
    assert (
        f'stackfleet_servers_idle{{cloud="sim",region="RegionOne"}} '
        f"{len(truth['idle_servers'])}.0" in metrics
    )
    assert idle not in metrics  # no per-server series


def test_serve_sweeps_usage_beside_the_collection_loop(swept, tmp_path):
    server, _clouds, env, _rows = swept
    idle = server.state.ground_truth["RegionOne"]["idle_servers"][0]
    settings = tmp_path / "settings.yaml"
    settings.write_text("usage:\n  source: diagnostics\n  interval: 1s\n  budget: 1000\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    daemon = subprocess.Popen(
        [sys.executable, "-m", "stackfleet.cli.main", "serve", "--os-cloud", CLOUD,
         "--port", str(port)],
        env={
            **os.environ,
            **env,
            "STACKFLEET_DB_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "STACKFLEET_CONFIG": str(settings),
        },
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("wb"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        cpu = None
        while cpu is None and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(1)
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v1/usage/servers/{idle}")
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                cpu = response.json()["metrics"]["cpu_util"]["latest"]
        log = (tmp_path / "serve.log").read_text(errors="replace")[-2000:]
        assert cpu is not None, f"serve stored no CPU reading within 90 s:\n{log}"
        assert 0.2 < cpu < 1.0
    finally:
        daemon.terminate()
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def test_a_budget_goes_round_the_fleet_over_successive_sweeps(swept, tmp_path):
    server, clouds, _env, _rows = swept
    region = server.state.regions["RegionOne"]
    active = {s["id"] for s in region.servers.values() if s["status"] == "ACTIVE"}
    store = open_store(f"sqlite:///{tmp_path / 'budget.db'}")
    try:
        collect(store, CLOUD, config_files=[str(clouds)])
        targets = connect(CLOUD, config_files=[str(clouds)])
        budget = len(active) // 3 + 1
        settings = UsageSettings(budget=budget, concurrency=4)
        read: list[set[str]] = []
        for _ in range(4):
            sweep = sweep_diagnostics(store, targets, settings)
            assert sweep.active_servers == len(active)
            read.append({r.resource_id for r in sweep.rows})
        assert all(len(ids) == budget for ids in read)
        # the first three sweeps read every ACTIVE server (the third tops up with the
        # longest unread), the fourth goes on with those read longest ago
        assert read[0] | read[1] | read[2] == active
        assert not read[0] & read[1] and not read[1] & read[2]
        assert read[0] - read[2] <= read[3] <= read[0] | read[1]
    finally:
        store.close()


def test_the_openstack_client_reads_the_simulated_diagnostics(swept, tmp_path):
    server, _clouds, _env, _rows = swept
    idle = server.state.ground_truth["RegionOne"]["idle_servers"][0]
    rows = run_openstack(server, tmp_path, "server", "show", "--diagnostics", idle)
    values = [" ".join(row) for row in rows]
    assert "running" in values and "libvirt" in values and idle in values
    assert any(v.startswith("[{'id': 0, 'time':") for v in values)
