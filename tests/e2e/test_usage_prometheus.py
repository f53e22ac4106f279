"""Real usage read from a real Prometheus (Debian's prometheus 2.42) through its HTTP
query API.

The Prometheus scrapes, on loopback:
- a real node_exporter (this machine's CPU and memory), relabelled as one of the
  simulated cloud's hypervisors, as operators relabel `instance` to the host name;
- a small exporter served here with prometheus-client that emits the libvirt exporter's
  series (prometheus-libvirt-exporter's names and labels: `domain`, and the Nova UUID as
  `instance_id` on `libvirt_domain_openstack_info`) for a few simulated servers. The
  libvirt exporter itself cannot run here: there is no libvirt daemon and no domain.
  Its counters grow with the wall clock at each server's CPU level.

For the history backfill, `promtool tsdb create-blocks-from openmetrics` writes a few
past hours of the same series into the Prometheus data directory before it starts.

Skipped (with the reason) when the prometheus or node_exporter binary is missing, unless
STACKFLEET_TESTBED_REQUIRED=1 (then missing binaries fail the test): scripts/bootstrap
test installs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from support import run_cli

from stackfleet.core.times import parse_time
from stackfleet.engine.collect import collect
from stackfleet.engine.usage import backfill_prometheus, sweep_prometheus
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.prometheus import PrometheusClient, PrometheusError, PrometheusSettings
from stackfleet.store import open_store
from stackfleet.store.metrics import series, window

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
NOW = datetime.now(UTC).replace(microsecond=0)
IDLE_CPU, BUSY_CPU = 0.5, 40.0
HISTORY_HOURS = (5, 2)  # backfilled history: from 5 h ago to 2 h ago
GiB = 1024**3


def _binaries() -> tuple[str, str]:
    prometheus = shutil.which("prometheus")
    node_exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if prometheus and node_exporter:
        return prometheus, node_exporter
    reason = "prometheus and prometheus-node-exporter are needed (scripts/bootstrap test)"
    if os.environ.get("STACKFLEET_TESTBED_REQUIRED") == "1":
        pytest.fail(f"STACKFLEET_TESTBED_REQUIRED=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LibvirtLikeCollector:
    """Series in prometheus-libvirt-exporter's format for a few servers; counters grow
    with the wall clock from `start` at each server's CPU level."""

    def __init__(self, servers: list[dict[str, Any]], levels: dict[str, float]) -> None:
        self.servers = servers
        self.levels = levels
        self.start = time.time() - 3600  # running for an hour already

    def collect(self) -> Iterator[Any]:
        elapsed = time.time() - self.start
        info = GaugeMetricFamily(
            "libvirt_domain_openstack_info",
            "OpenStack metadata",
            labels=["domain", "instance_id", "instance_name", "project_id"],
        )
        vcpus = GaugeMetricFamily("libvirt_domain_info_virtual_cpus", "vCPUs", labels=["domain"])
        cpu = CounterMetricFamily(
            "libvirt_domain_info_cpu_time_seconds", "CPU time", labels=["domain"]
        )
        memory = GaugeMetricFamily(
            "libvirt_domain_info_memory_usage_bytes", "memory", labels=["domain"]
        )
        maximum = GaugeMetricFamily(
            "libvirt_domain_info_maximum_memory_bytes", "max memory", labels=["domain"]
        )
        read = CounterMetricFamily(
            "libvirt_domain_block_stats_read_bytes", "read", labels=["domain", "target_device"]
        )
        write = CounterMetricFamily(
            "libvirt_domain_block_stats_write_bytes", "write", labels=["domain", "target_device"]
        )
        rx = CounterMetricFamily(
            "libvirt_domain_interface_stats_receive_bytes",
            "rx",
            labels=["domain", "target_device"],
        )
        tx = CounterMetricFamily(
            "libvirt_domain_interface_stats_transmit_bytes",
            "tx",
            labels=["domain", "target_device"],
        )
        for index, server in enumerate(self.servers):
            domain = f"instance-{index + 1:08x}"
            n = int(server["flavor"]["vcpus"])
            level = self.levels[server["id"]]
            info.add_metric([domain, server["id"], server["name"], server["tenant_id"]], 1.0)
            vcpus.add_metric([domain], n)
            cpu.add_metric([domain], level / 100 * n * elapsed)
            memory.add_metric([domain], 2 * GiB)
            maximum.add_metric([domain], 4 * GiB)
            read.add_metric([domain, "vda"], 1000.0 * elapsed)
            write.add_metric([domain, "vda"], 3000.0 * elapsed)
            rx.add_metric([domain, f"tap{index:04d}"], 500.0 * elapsed)
            tx.add_metric([domain, f"tap{index:04d}"], 250.0 * elapsed)
        yield from (info, vcpus, cpu, memory, maximum, read, write, rx, tx)


def _history(servers: list[dict[str, Any]], levels: dict[str, float], path: Path) -> None:
    """OpenMetrics text of the libvirt series over past hours, one point a minute."""
    lines = [
        "# TYPE libvirt_domain_openstack_info gauge",
        "# TYPE libvirt_domain_info_virtual_cpus gauge",
        "# TYPE libvirt_domain_info_cpu_time_seconds counter",
    ]
    start = time.time() - HISTORY_HOURS[0] * 3600
    end = time.time() - HISTORY_HOURS[1] * 3600
    points: dict[str, list[str]] = {"info": [], "vcpus": [], "cpu": []}
    ts = start
    while ts <= end:
        for index, server in enumerate(servers):
            domain = f'domain="instance-{index + 1:08x}",instance="hv:9177",job="libvirt"'
            n = int(server["flavor"]["vcpus"])
            cpu = levels[server["id"]] / 100 * n * (ts - start + 60)
            points["info"].append(
                f'libvirt_domain_openstack_info{{{domain},instance_id="{server["id"]}"}} 1 {ts:.0f}'
            )
            points["vcpus"].append(f"libvirt_domain_info_virtual_cpus{{{domain}}} {n} {ts:.0f}")
            points["cpu"].append(
                f"libvirt_domain_info_cpu_time_seconds_total{{{domain}}} {cpu:.3f} {ts:.0f}"
            )
        ts += 60
    # OpenMetrics wants each family's samples together, after its TYPE line
    text = [lines[0], *points["info"], lines[1], *points["vcpus"], lines[2], *points["cpu"]]
    path.write_text("\n".join(text) + "\n# EOF\n")


def _wait(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except (httpx.HTTPError, PrometheusError):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A collected simulated cloud, the exporters and a Prometheus scraping them."""
    prometheus_bin, node_exporter_bin = _binaries()
    workdir = tmp_path_factory.mktemp("prom")
    processes: list[subprocess.Popen[bytes]] = []
    with SimulatorServer(preset("small", now=NOW)) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        db_url = f"sqlite:///{workdir / 'store.db'}"
        store = open_store(db_url)
        collect(store, CLOUD, config_files=[str(clouds)])
        region = server.state.regions["RegionOne"]
        truth = server.state.ground_truth["RegionOne"]
        old = NOW - timedelta(days=30)
        idle = next(
            region.servers[i]
            for i in truth["idle_servers"]
            if parse_time(region.servers[i]["created"]) < old
        )
        busy = [
            s
            for s in region.servers.values()
            if s["status"] == "ACTIVE"
            and s["id"] not in truth["idle_servers"]
            and s["id"] not in truth["servers_on_down_hosts"]
            and parse_time(s["created"]) < old
        ][:2]
        exported = [idle, *busy]
        levels = {s["id"]: IDLE_CPU if s is idle else BUSY_CPU for s in exported}
        hypervisor = next(iter(region.hypervisors.values()))
        hv_name = hypervisor["hypervisor_hostname"]

        registry = CollectorRegistry()
        registry.register(LibvirtLikeCollector(exported, levels))  # type: ignore[arg-type]
        libvirt_port = _free_port()
        libvirt_http, libvirt_thread = start_http_server(
            libvirt_port, addr="127.0.0.1", registry=registry
        )
        node_port = _free_port()
        processes.append(
            subprocess.Popen(
                [
                    node_exporter_bin,
                    f"--web.listen-address=127.0.0.1:{node_port}",
                    "--collector.disable-defaults",
                    "--collector.cpu",
                    "--collector.meminfo",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        data = workdir / "tsdb"
        data.mkdir()
        history = workdir / "history.om"
        _history(exported, levels, history)
        subprocess.run(
            [
                shutil.which("promtool") or "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(history),
                str(data),
            ],
            check=True,
            capture_output=True,
        )
        prom_port = _free_port()
        (workdir / "prometheus.yml").write_text(
            f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: node
    static_configs: [{{targets: ["127.0.0.1:{node_port}"]}}]
    relabel_configs:
      - {{target_label: instance, replacement: "{hv_name}:9100"}}
  - job_name: libvirt
    static_configs: [{{targets: ["127.0.0.1:{libvirt_port}"]}}]
    relabel_configs:
      - {{target_label: instance, replacement: "hv:9177"}}
"""
        )
        processes.append(
            subprocess.Popen(
                [
                    prometheus_bin,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={data}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--storage.tsdb.retention.time=2d",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(workdir / "prometheus.log").open("wb"),
            )
        )
        url = f"http://127.0.0.1:{prom_port}"
        try:
            client = PrometheusClient(PrometheusSettings(url=url))

            def scraped() -> bool:
                ups = client.query("up")
                counts = client.query(
                    "count_over_time(libvirt_domain_info_cpu_time_seconds_total[15s])"
                )
                return (
                    len(ups) == 2
                    and all(s.points[0][1] == 1 for s in ups)
                    and len(counts) == len(exported)
                    and all(s.points[0][1] >= 13 for s in counts)
                )

            _wait("Prometheus to scrape both exporters a few times", scraped, 90)
            client.close()
            settings = workdir / "settings.yaml"
            settings.write_text(
                f"usage:\n  source: prometheus\n  prometheus:\n    url: {url}\n"
                "    rate_window: 10s\n"
            )
            env = {
                "STACKFLEET_DB_URL": db_url,
                "OS_CLIENT_CONFIG_FILE": str(clouds),
                "STACKFLEET_CONFIG": str(settings),
            }
            yield {
                "server": server,
                "store": store,
                "url": url,
                "env": env,
                "idle": idle,
                "busy": busy,
                "hypervisor": hypervisor,
                "node_port": node_port,
            }
        finally:
            store.close()
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            libvirt_http.shutdown()
            libvirt_thread.join(5)


def _settings(stack: dict[str, Any], **changes: Any) -> PrometheusSettings:
    return PrometheusSettings(url=stack["url"], rate_window="10s", **changes)


def test_history_backfills_hourly_means_before_the_stores_own_data(stack):
    store = stack["store"]
    result = backfill_prometheus(store, _settings(stack), timedelta(hours=8))
    idle, busy = stack["idle"], stack["busy"][0]
    # the hours fully inside the history (its edges are partial hours)
    assert result.buckets >= 2 * 3
    shown = run_cli("usage", "show", idle["id"], "-f", "json", env=stack["env"]).json()
    cpu = shown["metrics"]["cpu_util"]
    assert cpu["samples_14d"] >= 2 and abs(cpu["mean_14d"] - IDLE_CPU) < 0.2
    hours = window(store, "server", busy["id"], "cpu_util", time.time() - 86400)
    assert {p.resolution for p in hours} == {3600} and len(hours) >= 2
    # hours wholly inside the history read the level; its first and last are partial
    inner = [p.mean for p in hours if abs(p.mean - BUSY_CPU) < 1]
    assert len(inner) >= 1 and all(0 < p.mean < BUSY_CPU + 1 for p in hours)
    again = backfill_prometheus(store, _settings(stack), timedelta(hours=8))
    assert again.buckets == 0


def test_a_sweep_reads_server_rates_and_hypervisor_use_from_prometheus(stack):
    result = run_cli("usage", "sweep", "-f", "json", env=stack["env"])
    assert result.code == 0, result.stderr
    rows = {r["id"]: r for r in result.json()}
    idle, busy = stack["idle"], stack["busy"]
    assert abs(rows[idle["id"]]["cpu_util"] - IDLE_CPU) < 0.1
    for server in busy:
        assert abs(rows[server["id"]]["cpu_util"] - BUSY_CPU) < 4
        assert rows[server["id"]]["memory_used_mb"] == 2048
        assert abs(rows[server["id"]]["disk_write_bps"] - 3000) < 300
        assert abs(rows[server["id"]]["net_rx_bps"] - 500) < 50
    hv = stack["hypervisor"]
    assert rows[hv["id"]]["kind"] == "hypervisor" and rows[hv["id"]]["outcome"] == "sampled"
    shown = run_cli(
        "usage", "show", hv["id"], "--kind", "hypervisor", "-f", "json", env=stack["env"]
    ).json()
    assert 0 <= shown["metrics"]["cpu_util"]["latest"] <= 100
    assert shown["metrics"]["memory_used_mb"]["latest"] > 0


def test_the_waste_packs_idle_rule_finds_exactly_the_idle_server(stack):
    store = stack["store"]
    for _ in range(12):
        sweep_prometheus(store, _settings(stack))
    report = run_cli(
        "policy", "run", "--pack", "waste", "--policy", "idle-servers", "-f", "json",
        env=stack["env"],
    )  # fmt: skip
    assert report.code == 0, report.stderr
    [policy] = report.json()["policies"]
    assert {c["resource"]["id"] for c in policy["planned"]} == {stack["idle"]["id"]}
    assert policy["matched"] == 1


def test_an_unreachable_prometheus_is_a_clear_error(stack):
    dead = f"http://127.0.0.1:{_free_port()}"
    result = run_cli("usage", "sweep", "--prometheus-url", dead, env=stack["env"])
    assert result.code != 0
    assert f"cannot reach Prometheus at {dead}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_url_that_is_not_prometheus_is_a_clear_error(stack):
    not_prometheus = f"http://127.0.0.1:{stack['node_port']}"
    with pytest.raises(PrometheusError, match="not JSON"):
        PrometheusClient(PrometheusSettings(url=not_prometheus)).query("up")


def test_a_query_error_carries_prometheus_own_text(stack):
    with pytest.raises(PrometheusError, match="bad_data.*parse error"):
        PrometheusClient(_settings(stack)).query("sum(")


def test_series_of_servers_the_inventory_does_not_know_are_skipped(stack):
    store = stack["store"]
    sweep = sweep_prometheus(store, _settings(stack, server_label="domain", info_metric=None))
    servers = [r for r in sweep.rows if r.kind == "server"]
    assert servers and all(r.outcome == "skipped" for r in servers)
    assert all("not a server of the inventory" in (r.reason or "") for r in servers)
    assert series(store, "server", "instance-00000001", "cpu_util") == []
