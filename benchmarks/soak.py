"""Soak: does `stackfleet serve` hold its descriptors and memory flat over time?

Starts the simulated cloud (with notifications to the local RabbitMQ when it answers),
simulated BMCs, a webhook sink for alerts, and `stackfleet serve` in processes of their
own, with every loop enabled: collection passes every `--interval` seconds with a policy
pack, quota sweeps, the usage sweep (diagnostics), event-driven refresh, the hardware
sweep of the BMCs, the infrastructure sweep of the local MariaDB (127.0.0.1:3306, root,
no password) and RabbitMQ management (127.0.0.1:15672, recorded down when it is off)
and alert dispatch. Every `--every` seconds it samples the daemon's open descriptors
(sockets among them, and sockets in CLOSE-WAIT: closed by the peer, never by us), its
RSS and its threads, then prints a table and a verdict: flat after the warm-up, or
growing.

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--every 15] [--interval 5]
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()
STACKFLEET = [str(Path(sys.executable).with_name("stackfleet"))]
CLOUD = "sim"
# a sample counts as warm-up during the first quarter of the run (at least 2 minutes)
WARMUP_SHARE = 0.25
# growth allowed over the measured part: descriptors, and RSS in MB per hour
FD_SLACK = 8
RSS_MB_PER_HOUR = 20.0


@dataclass
class Sample:
    seconds: float
    fds: int
    sockets: int
    close_wait: int
    rss_mb: float
    threads: int


def answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def start_sink() -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/alerts"


def wait_for(path: Path, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start (see {path.parent})")
        time.sleep(0.2)


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def _close_wait_inodes() -> set[str]:
    """Inodes of TCP sockets in CLOSE-WAIT (state 08) in this network namespace."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "08":
                inodes.add(fields[9])
    return inodes


def sample(pid: int, started: float) -> Sample:
    fd_dir = Path(f"/proc/{pid}/fd")
    targets = []
    for entry in fd_dir.iterdir():
        try:
            targets.append(os.readlink(entry))
        except OSError:
            continue  # closed while we looked
    sockets = [re.sub(r"\D", "", t) for t in targets if t.startswith("socket:")]
    waiting = _close_wait_inodes()
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return Sample(
        time.monotonic() - started,
        len(targets),
        len(sockets),
        sum(inode in waiting for inode in sockets),
        rss,
        threads,
    )


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var * 3600


def verdict(samples: list[Sample], minutes: float) -> tuple[bool, list[str]]:
    """Flat when, after the warm-up, the descriptors between passes (the lowest reading
    of the last third against the first third: samples taken mid-pass hold that pass's
    sockets) grew by at most FD_SLACK, and RSS (medians of the same thirds) by at most
    RSS_MB_PER_HOUR."""
    warmup = min(max(120.0, minutes * 60 * WARMUP_SHARE), minutes * 60 / 2)
    measured = [s for s in samples if s.seconds >= warmup] or samples[-3:]
    third = max(1, len(measured) // 3)
    first, last = measured[:third], measured[-third:]
    fd_growth = min(s.fds for s in last) - min(s.fds for s in first)
    rss_first = statistics.median(s.rss_mb for s in first)
    rss_last = statistics.median(s.rss_mb for s in last)
    hours = max((last[-1].seconds - first[0].seconds) / 3600, 1e-9)
    rss_rate = (rss_last - rss_first) / hours
    notes = [
        f"after {warmup / 60:.1f} min of warm-up ({len(measured)} samples): descriptors "
        f"between passes {min(s.fds for s in first)} → {min(s.fds for s in last)} "
        f"({fd_growth:+d}; highest {max(s.fds for s in measured)}), CLOSE-WAIT at most "
        f"{max(s.close_wait for s in measured)}, RSS {rss_first:.0f} → {rss_last:.0f} MB "
        f"({rss_rate:+.1f} MB/h), threads {measured[0].threads} → {measured[-1].threads}"
    ]
    flat = fd_growth <= FD_SLACK and rss_rate <= RSS_MB_PER_HOUR
    return flat, notes


def write_configs(work: Path, sink_url: str, bmc_map: Path, rabbit: bool) -> dict[str, Path]:
    settings = work / "stackfleet.yaml"
    lines = [
        "usage:",
        "  source: diagnostics",
        "  interval: 30s",
        "alerts:",
        "  receivers:",
        "    - name: soak-sink",
        "      type: webhook",
        f"      url: {sink_url}",
        "      group_wait: 5s",
        "      group_interval: 30s",
        "      repeat_interval: 1m",
    ]
    if rabbit:
        lines += [
            "notifications:",
            "  enabled: true",
            "  clouds:",
            f"    {CLOUD}:",
            "      transport_url: rabbit://guest:guest@127.0.0.1:5672/",
        ]
    settings.write_text("\n".join(lines) + "\n")
    infra = work / "infrastructure.yaml"
    infra.write_text(
        "databases:\n"
        "  - dsn: mysql://root@127.0.0.1:3306\n"
        "    name: local-mariadb\n"
        "message_queues:\n"
        "  - url: http://guest:guest@127.0.0.1:15672\n"
        "    name: local-rabbitmq\n"
    )
    return {"settings": settings, "infra": infra, "bmc_map": bmc_map}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between passes")
    parser.add_argument("--bmcs", type=int, default=8)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="stackfleet-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    src = Path(__file__).resolve().parent.parent / "src"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "STACKFLEET_CONFIG_DIR": str(work),
        # this checkout's code, also in the child processes
        "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])),
    }
    rabbit = answers(5672)
    mariadb = answers(3306)
    procs: list[subprocess.Popen[bytes]] = []
    sink, sink_url = start_sink()
    try:
        clouds = work / "clouds.yaml"
        sim_args = [*STACKFLEET, "simulator", "serve", "--preset", args.preset, "--port", "0"]
        sim_args += ["--clouds-yaml", str(clouds), "--cloud-name", CLOUD]
        if rabbit:
            sim_args += ["--notify-url", "rabbit://guest:guest@127.0.0.1:5672/"]
        procs.append(start(sim_args, work / "simulator.log", env))
        wait_for(clouds, procs[-1], "the simulator")
        bmc_map = work / "bmc-map.yaml"
        bmc_args = [sys.executable, "-m", "stackfleet.simulator.redfish"]
        bmc_args += ["--count", str(args.bmcs), "--bmc-map", str(bmc_map)]
        procs.append(start(bmc_args, work / "bmcs.log", env))
        wait_for(bmc_map, procs[-1], "the simulated BMCs")
        files = write_configs(work, sink_url, bmc_map, rabbit)
        api_port = free_port()
        serve_args = [*STACKFLEET, "--db-url", f"sqlite:///{work / 'store.db'}", "serve"]
        serve_args += ["--os-cloud", CLOUD, "--system-cloud", f"{CLOUD}-system"]
        serve_args += ["--interval", f"{args.interval:g}", "--port", str(api_port)]
        serve_args += ["--pack", "waste", "--pack", "ha", "--quota-interval", "30"]
        serve_args += ["--agent-interval", "0", "--config", str(files["settings"])]
        serve_args += ["--infra-config", str(files["infra"]), "--bmc-map", str(bmc_map)]
        serve_args.append("--notifications" if rabbit else "--no-notifications")
        serve_env = {**env, "OS_CLIENT_CONFIG_FILE": str(clouds)}
        daemon = start(serve_args, work / "serve.log", serve_env)
        procs.append(daemon)
        console.print(
            f"soak: {args.minutes:g} min, passes every {args.interval:g} s, sample every "
            f"{args.every:g} s; MariaDB {'on' if mariadb else 'absent'}, RabbitMQ "
            f"{'on (notifications)' if rabbit else 'absent'}; logs in {work}",
            highlight=False,
        )
        started = time.monotonic()
        samples: list[Sample] = []
        while time.monotonic() - started < args.minutes * 60:
            if daemon.poll() is not None:
                raise SystemExit(f"stackfleet serve exited ({daemon.returncode}); see {work}")
            samples.append(sample(daemon.pid, started))
            time.sleep(args.every)
        samples.append(sample(daemon.pid, started))
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        sink.shutdown()

    table = Table(title="stackfleet serve over time")
    for column in ("min", "fds", "sockets", "CLOSE-WAIT", "RSS MB", "threads"):
        table.add_column(column, justify="right")
    for s in samples:
        table.add_row(
            f"{s.seconds / 60:.1f}",
            str(s.fds),
            str(s.sockets),
            str(s.close_wait),
            f"{s.rss_mb:.0f}",
            str(s.threads),
        )
    console.print(table)
    flat, notes = verdict(samples, args.minutes)
    for note in notes:
        console.print(note, highlight=False)
    console.print(
        "verdict: FLAT after warm-up"
        if flat
        else f"verdict: GROWING (more than +{FD_SLACK} descriptors or "
        f"{RSS_MB_PER_HOUR:g} MB/h after warm-up)",
        highlight=False,
    )
    sys.exit(0 if flat else 1)


if __name__ == "__main__":
    main()
