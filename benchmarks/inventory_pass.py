"""Benchmark: one inventory pass over a large simulated fleet.

Starts the simulator (preset `benchmark`: 1,000 hypervisors, 20,000 servers, 40,000
ports, 10,000 floating IPs, 20,000 volumes, 2,000 images) in its own process, runs one
pass into a fresh SQLite store, and prints wall time, the collector's and the
simulator's CPU time, requests per endpoint and peak RSS. Then a second pass (the steady
state: Placement reads only the providers whose generation moved). With `--runs N` it
does that N times (a fresh store each time) and prints the min and median.

Targets (judged against floors printed in the same run, since absolute times do not
carry between machines): a first pass's collector CPU <= 3x the decoding floor (the CPU
time to decode, as JSON only, the very pages the pass received), a steady pass <= 1.5x;
peak RSS <= 400 MB; requests = list pages (+ Placement per provider on the first pass).
A calibration line (a 10-million-step Python loop) compares machines. The simulator
shares the two cores: when other work loads the machine, compare CPU times rather than
wall times.

    .venv/bin/python benchmarks/inventory_pass.py [--preset benchmark] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import orjson
from calibration import calibration_line, captured_bodies, cpu_seconds, decode_floor, peak_rss_mb
from rich.console import Console
from rich.table import Table
from simulator_process import start_simulator

from stackfleet.engine.collect import PassResult, collect
from stackfleet.store import Store, open_store

console = Console()


def timed_pass(store: Store, clouds: Path, sim_pid: int) -> tuple[PassResult, dict[str, float]]:
    """One pass, with its wall time and the CPU time each process spent on it."""
    load = os.getloadavg()[0]
    with captured_bodies() as bodies:
        sim_cpu, own_cpu, start = cpu_seconds(sim_pid), time.process_time(), time.perf_counter()
        [result] = collect(store, "bench", config_files=[str(clouds)], keep_records=False)
        times = {
            "wall": time.perf_counter() - start,
            "collector CPU": time.process_time() - own_cpu,
            "simulator CPU": cpu_seconds(sim_pid) - sim_cpu,
            "load": load,
        }
    # the floor: decoding the very pages this pass received, as JSON and nothing more
    # (the standard library's decoder: the yardstick of the targets), and the same with
    # orjson, the decoder the collector uses, for comparison
    times["decode floor"] = decode_floor(bodies)
    times["x floor"] = times["collector CPU"] / max(times["decode floor"], 1e-9)
    times["orjson floor"] = decode_floor(bodies, loads=orjson.loads)
    times["x orjson floor"] = times["collector CPU"] / max(times["orjson floor"], 1e-9)
    times["MB received"] = bodies.nbytes / 1e6
    bodies.close()
    return result, times


def print_pass(label: str, result: PassResult, times: dict[str, float]) -> None:
    table = Table(
        title=(
            f"{label}: {result.status}, {times['wall']:.2f} s wall, collector CPU "
            f"{times['collector CPU']:.2f} s = {times['x floor']:.1f}x the decoding floor "
            f"({times['decode floor']:.2f} s; {times['x orjson floor']:.1f}x orjson's "
            f"{times['orjson floor']:.2f} s; {times['MB received']:.0f} MB), "
            f"simulator CPU {times['simulator CPU']:.2f} s "
            f"(load {times['load']:.1f})"
        )
    )
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
            listing.kind, str(listing.count), str(listing.complete), f"{listing.seconds:.2f}"
        )
    console.print(kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="benchmark")
    parser.add_argument("--runs", type=int, default=1, help="first + second pass, N times")
    args = parser.parse_args()
    labels = ("first pass", "second pass")
    measured: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        clouds = workdir / "clouds.yaml"
        sim = start_simulator(args.preset, clouds, "bench")
        console.print(f"simulator ({args.preset}) ready in {time.perf_counter() - t0:.1f} s")
        console.print(calibration_line())
        try:
            for run in range(args.runs):
                store = open_store(f"sqlite:///{workdir / f'bench-{run}.db'}")
                try:
                    for label in labels:
                        result, times = timed_pass(store, clouds, sim.pid)
                        measured[label].append(times)
                        if run == 0:
                            print_pass(label, result, times)
                        else:
                            console.print(
                                f"run {run + 1}, {label}: {result.status}, "
                                + ", ".join(f"{k} {v:.2f}" for k, v in times.items())
                            )
                        del result
                finally:
                    store.close()
            if args.runs > 1:
                summary = Table(title=f"{args.runs} runs: min / median (seconds)")
                summary.add_column("pass")
                columns = (
                    "wall",
                    "collector CPU",
                    "decode floor",
                    "x floor",
                    "orjson floor",
                    "x orjson floor",
                    "simulator CPU",
                )
                for col in columns:
                    summary.add_column(col, justify="right")
                for label in labels:
                    summary.add_row(
                        label,
                        *(
                            f"{min(t[c] for t in measured[label]):.2f} / "
                            f"{statistics.median(t[c] for t in measured[label]):.2f}"
                            for c in columns
                        ),
                    )
                console.print(summary)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            memory = Table(title="memory")
            memory.add_column("process")
            memory.add_column("peak RSS (MB)", justify="right")
            memory.add_row("collector (pass + store)", f"{peak:.0f}")
            memory.add_row("simulator", f"{peak_rss_mb(sim.pid):.0f}")
            console.print(memory)
        finally:
            sim.terminate()
            sim.wait(timeout=30)


if __name__ == "__main__":
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", "/nonexistent")
    main()
