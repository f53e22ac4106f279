"""Benchmark: how long the `stackfleet` command takes to start, print its help and list
from the store.

Collects the simulator's `small` preset (60 servers, 12 hypervisors…) into a fresh
SQLite store once, then runs each command N times as the console script does (a new
Python process: `from stackfleet.cli.main import run`), output to /dev/null, and prints
the median and min wall time and the median CPU time (user + system) of the process,
beside the target. The machine may be shared: CPU time is the fairer measure when the
load average (printed) is high. `--src DIR` runs the CLI from another source tree (e.g.
an older commit's `src/`, unpacked with `git archive`) against the same store;
`--before DIR` times that tree too, in the same run, each command's runs interleaved
with this tree's (so both see the same load), and prints the two side by side.

Targets on the 2-core machine: `stackfleet --help` <= 0.3 s; a listing from the store
(`servers list`, `resources list server`) <= 0.6 s.

    .venv/bin/python benchmarks/cli_startup.py [--runs 10] [--src DIR] [--before DIR]
        [--db-url URL]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(width=max(Console().width, 150))

# (arguments, target in seconds or None: shown for comparison only)
COMMANDS: list[tuple[list[str], float | None]] = [
    (["--help"], 0.3),
    (["servers", "list"], 0.6),
    (["resources", "list", "server"], 0.6),
    (["servers", "list", "-f", "json"], None),
    (["servers", "list", "--help"], None),
]
# what the `stackfleet` console script runs
ENTRY = "import sys; from stackfleet.cli.main import run; sys.argv[0] = 'stackfleet'; run()"


def fill_store(url: str, workdir: Path) -> int:
    """Collect the simulated `small` fleet into the store at `url`; the server count."""
    from stackfleet.engine.collect import collect
    from stackfleet.simulator.generator import preset
    from stackfleet.simulator.server import SimulatorServer
    from stackfleet.store import open_store

    store = open_store(url)
    try:
        with SimulatorServer(preset("small")) as sim:
            clouds = sim.write_clouds_yaml(workdir / "clouds.yaml", "bench")
            [result] = collect(store, "bench", config_files=[str(clouds)])
        if result.status != "complete":
            raise SystemExit(f"collecting the simulated fleet: {result.status}")
        return store.list_resources("server", {})[1]
    finally:
        store.close()


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `stackfleet ARGV` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"stackfleet {' '.join(argv)} failed: {proc.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (after one warm-up)")
    parser.add_argument("--src", help="source tree of the CLI to time (default: this one)")
    parser.add_argument("--before", help="another source tree to time in the same run")
    parser.add_argument("--db-url", help="an existing store to list (default: a fresh one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = args.db_url or f"sqlite:///{workdir / 'store.db'}"
        if not args.db_url:
            servers = fill_store(url, workdir)
            console.print(f"store: {servers} servers (simulator preset small)")
        src = Path(args.src or Path(__file__).resolve().parents[1] / "src").resolve()
        trees = {"": src} if not args.before else {"before": Path(args.before).resolve()}
        if args.before:
            trees["after"] = src
        envs = {
            name: {
                **os.environ,
                "PYTHONPATH": str(tree),
                "STACKFLEET_DB_URL": url,
                "COLUMNS": "160",
            }
            for name, tree in trees.items()
        }
        load_before = os.getloadavg()[0]
        title = ", ".join(f"{name or 'src'}: {tree}" for name, tree in trees.items())
        table = Table(title=f"stackfleet start-up, {args.runs} runs each ({title})")
        table.add_column("command")
        for name in trees:
            for column in ("median wall s", "min wall s", "median CPU s"):
                column = column if not name else column.replace("median ", "")
                table.add_column(f"{name} {column}".strip(), justify="right")
        table.add_column("target s", justify="right")
        failed = False
        for argv, target in COMMANDS:
            timings: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
            for name in trees:
                run_once(argv, envs[name])  # warm-up: the page cache, .pyc files
            for _ in range(args.runs):
                for name in trees:
                    timings[name].append(run_once(argv, envs[name]))
            cells = []
            for name in trees:
                walls = [wall for wall, _ in timings[name]]
                cpus = [cpu for _, cpu in timings[name]]
                median = statistics.median(walls)
                style = ""
                if target is not None and name in ("", "after"):
                    met = median <= target
                    failed |= not met
                    style = "green" if met else "red"
                cells += [
                    f"[{style}]{median:.3f}[/]" if style else f"{median:.3f}",
                    f"{min(walls):.3f}",
                    f"{statistics.median(cpus):.3f}",
                ]
            table.add_row(
                f"stackfleet {' '.join(argv)}", *cells, "—" if target is None else f"{target:.1f}"
            )
        console.print(table)
        console.print(
            f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
