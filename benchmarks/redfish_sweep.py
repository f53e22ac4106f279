"""Benchmark: a Redfish sweep of 500 simulated BMCs, and metric-sample ingest.

The BMCs (a mix of legacy Thermal/Power, current ThermalSubsystem/PowerSubsystem/
EnvironmentMetrics and HPE-OEM shapes, one loopback port each) run in a process of
their own; the sweep reads each one through sushy, records its samples and status in
a fresh SQLite store and compacts it (`run_sweep`, as `stackfleet hardware sweep`
does). Then raw ingest: `record_samples` of batches of samples into SQLite.

Targets on a 2-core machine: sweep of 500 BMCs <= 10 s; ingest >= 100,000 samples/s.

    .venv/bin/python benchmarks/redfish_sweep.py [--bmcs 500] [--concurrency 16 32 64]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from calibration import calibration_line
from rich.console import Console
from rich.table import Table

from stackfleet.engine.hardware import run_sweep, targets_for
from stackfleet.store import open_store
from stackfleet.store.metrics import Sample, record_samples

console = Console()


def start_bmcs(count: int, workdir: Path) -> tuple[subprocess.Popen[str], Path]:
    bmc_map = workdir / "bmc-map.yaml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stackfleet.simulator.redfish",
            "--count",
            str(count),
            "--bmc-map",
            str(bmc_map),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        raise SystemExit("the simulated BMCs did not start")
    return proc, bmc_map


def sweep_table(count: int, concurrencies: list[int], workdir: Path) -> None:
    proc, bmc_map = start_bmcs(count, workdir)
    table = Table(title=f"Redfish sweep of {count} simulated BMCs (target <= 10 s)")
    for header in (
        "concurrency",
        "seconds",
        "BMCs ok",
        "requests",
        "requests/s",
        "samples",
        "BMCs/s",
    ):
        table.add_column(header, justify="right")
    try:
        for concurrency in concurrencies:
            store = open_store(f"sqlite:///{workdir / f'sweep-{concurrency}.db'}")
            targets = targets_for(store, bmc_map, include_ironic=False)
            started = time.perf_counter()
            report = run_sweep(store, targets, concurrency=concurrency, timeout=10)
            seconds = time.perf_counter() - started
            requests = sum(r.requests for r in report.results)
            statuses = Counter(s.status for s in report.statuses)
            table.add_row(
                str(concurrency),
                f"{seconds:.2f}",
                f"{statuses.get('ok', 0)}/{count}",
                str(requests),
                f"{requests / seconds:,.0f}",
                str(report.samples),
                f"{count / seconds:,.0f}",
            )
            store.close()
    finally:
        proc.terminate()
        proc.wait(20)
    console.print(table)


def ingest_table(batches: list[int], workdir: Path) -> None:
    table = Table(title="Metric sample ingest into SQLite (target >= 100,000 samples/s)")
    for header in ("batch", "rows in table before", "seconds", "samples/s"):
        table.add_column(header, justify="right")
    store = open_store(f"sqlite:///{workdir / 'ingest.db'}")
    before = 0
    start = time.time() - 3600
    metrics = ("hw_up", "hw_power_watts", "hw_inlet_celsius", "hw_cpu_celsius", "hw_fan_rpm_min")
    for batch in batches:
        # 1,000 hosts x 5 metrics per sweep, sweeps one minute apart
        samples = [
            Sample(
                "bench",
                "RegionOne",
                "hypervisor",
                f"host-{i % 1000:04d}",
                metrics[(i // 1000) % 5],
                start + (before + i) // 5000 * 60.0,
                float(i % 400),
            )
            for i in range(batch)
        ]
        started = time.perf_counter()
        record_samples(store, samples)
        seconds = time.perf_counter() - started
        table.add_row(f"{batch:,}", f"{before:,}", f"{seconds:.2f}", f"{batch / seconds:,.0f}")
        before += batch
    store.close()
    console.print(table)


def main() -> None:
    console.print(calibration_line())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bmcs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--ingest", type=int, nargs="+", default=[100_000, 500_000, 500_000])
    args = parser.parse_args()
    logging.getLogger("sushy").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sweep_table(args.bmcs, args.concurrency, workdir)
        ingest_table(args.ingest, workdir)


if __name__ == "__main__":
    main()
