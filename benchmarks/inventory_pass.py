"""Benchmark: one inventory pass over a large simulated fleet.

Starts the simulator (preset `benchmark`: 1,000 hypervisors, 20,000 servers, 40,000
ports, 10,000 floating IPs, 20,000 volumes, 2,000 images) in its own process, runs one
pass into a fresh SQLite store, and prints wall time, requests per endpoint and peak RSS.
Then a second pass (the steady state: Placement reads only what changed).

Targets on a 2-core machine: pass <= 10 s; requests = list pages (+ Placement per
provider on the first pass); peak RSS <= 1.5 GB.

    .venv/bin/python benchmarks/inventory_pass.py [--preset benchmark]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stackfleet.engine.collect import collect
from stackfleet.store import open_store

console = Console()


def start_simulator(preset: str, workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    clouds = workdir / "clouds.yaml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stackfleet.cli.main",
            "simulator",
            "serve",
            "--preset",
            preset,
            "--port",
            "0",
            "--clouds-yaml",
            str(clouds),
            "--cloud-name",
            "bench",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if clouds.exists() and clouds.stat().st_size:
            return proc, clouds
        if proc.poll() is not None:
            raise SystemExit(
                f"simulator exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("simulator did not start within 300 s")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="benchmark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        sim, clouds = start_simulator(args.preset, workdir)
        console.print(f"simulator ({args.preset}) ready in {time.perf_counter() - t0:.1f} s")
        try:
            store = open_store(f"sqlite:///{workdir / 'bench.db'}")
            for label in ("first pass", "second pass"):
                start = time.perf_counter()
                [result] = collect(store, "bench", config_files=[str(clouds)])
                wall = time.perf_counter() - start
                table = Table(title=f"{label}: {result.status}, {wall:.2f} s wall")
                table.add_column("endpoint")
                table.add_column("requests", justify="right")
                for endpoint, count in sorted(result.requests.items()):
                    table.add_row(endpoint, str(count))
                table.add_row("[bold]total", f"[bold]{sum(result.requests.values())}")
                console.print(table)
                kinds = Table(title="kinds")
                for col in ("kind", "records", "complete", "seconds (listing)"):
                    kinds.add_column(col)
                for listing in sorted(result.listings.values(), key=lambda x: x.kind):
                    kinds.add_row(
                        listing.kind,
                        str(len(listing.records)),
                        str(listing.complete),
                        f"{listing.seconds:.2f}",
                    )
                console.print(kinds)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            summary = Table(title="memory")
            summary.add_column("process")
            summary.add_column("peak RSS (MB)", justify="right")
            summary.add_row("collector (pass + store)", f"{peak:.0f}")
            summary.add_row("simulator", f"{rss_mb(sim.pid):.0f}")
            console.print(summary)
        finally:
            sim.terminate()
            sim.wait(timeout=30)


if __name__ == "__main__":
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", "/nonexistent")
    main()
