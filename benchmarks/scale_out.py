"""Benchmark: one round of collection passes by 1 worker vs N workers on PostgreSQL.

Starts one simulator process per region (preset `benchmark` by default: 1,000
hypervisors and 20,000 servers each; ten regions), each its own cloud in one
clouds.yaml, then for each worker count runs that many `stackfleet worker` processes on
a fresh PostgreSQL database, coordinated through the local Redis, and waits until every
region has one complete pass. Prints per run: the round's wall time (first pass start
to last pass end), per-region pass time and requests and which worker collected it,
and each worker's peak RSS; then the speed-up.

Target (issue 15): 3 workers finish a round >= 2.5x faster than 1. On one machine the
workers and the simulators share its cores, so the speed-up is bounded by the cores
(2 here): the table says how busy the machine was (load, CPU of simulators vs workers).

    .venv/bin/python benchmarks/scale_out.py [--preset benchmark] [--regions 10]
        [--workers 1,3] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import yaml
from calibration import calibration_line, cpu_seconds, peak_rss_mb
from rich.console import Console
from rich.table import Table
from simulator_process import spawn_simulator, wait_until_serving

from stackfleet.store import open_store

console = Console()
REDIS = "redis://127.0.0.1:6379"


def start_simulators(preset: str, regions: int, workdir: Path) -> tuple[list, Path]:
    """One simulator process per region; their clouds merged into one clouds.yaml."""
    files = [workdir / f"clouds-{n}.yaml" for n in range(1, regions + 1)]
    procs = [
        spawn_simulator(preset, path, f"bench-r{n}", seed=n)
        for n, path in enumerate(files, start=1)
    ]
    wait_until_serving(procs, files, 900)
    clouds: dict = {}
    for f in files:
        clouds.update(yaml.safe_load(f.read_text())["clouds"])
    merged = workdir / "clouds.yaml"
    merged.write_text(yaml.safe_dump({"clouds": clouds}))
    return procs, merged


def new_database(admin_url: str) -> str:
    import psycopg

    name = f"sf_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def run_round(
    count: int, regions: int, clouds: Path, workdir: Path, admin_url: str, sims: list
) -> dict:
    """`count` workers until each of the `regions` clouds has a complete pass."""
    db = new_database(admin_url)
    open_store(db).close()  # migrate once, before the workers race to
    settings = workdir / "settings.yaml"
    settings.write_text("{}\n")
    env = {
        **os.environ,
        "OS_CLIENT_CONFIG_FILE": str(clouds),
        "STACKFLEET_DB_URL": db,
        "STACKFLEET_CONFIG": str(settings),
        "STACKFLEET_COORDINATION_URL": REDIS,
    }
    cloud_args = [a for n in range(1, regions + 1) for a in ("--os-cloud", f"bench-r{n}")]
    sim_cpu = sum(cpu_seconds(p.pid) for p in sims)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stackfleet.cli.main",
                "worker",
                *cloud_args,
                "--interval",
                "3600",
                "--port",
                "0",
                "--member-id",
                f"w{i + 1}",
                "--infra-config",
                os.devnull,
                "--quota-interval",
                "18000",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / f"worker-{count}-{i + 1}.log").open("wb"),
        )  # fmt: skip
        for i in range(count)
    ]
    store = open_store(db)
    load = []
    try:
        deadline = time.monotonic() + 3600
        passes: dict[str, dict] = {}
        while time.monotonic() < deadline:
            load.append(os.getloadavg()[0])
            for p in store.list_passes(limit=200):
                if p["status"] == "complete":
                    passes.setdefault(p["cloud"], p)
            if len(passes) == regions:
                break
            if any(w.poll() is not None for w in workers):
                logs = "\n".join(
                    f.read_text(errors="replace")[-1500:]
                    for f in sorted(workdir.glob(f"worker-{count}-*.log"))
                )
                raise SystemExit(f"a worker exited:\n{logs}")
            time.sleep(0.5)
        rss = {f"w{i + 1}": peak_rss_mb(w.pid) for i, w in enumerate(workers)}
        worker_cpu = sum(cpu_seconds(w.pid) for w in workers)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        store.close()
        drop_database(admin_url, db)
    starts = [datetime.fromisoformat(p["started_at"]).timestamp() for p in passes.values()]
    ends = [datetime.fromisoformat(p["finished_at"]).timestamp() for p in passes.values()]
    return {
        "workers": count,
        "round": max(ends) - min(starts),
        "passes": passes,
        "rss": rss,
        "worker_cpu": worker_cpu,
        "sim_cpu": sum(cpu_seconds(p.pid) for p in sims) - sim_cpu,
        "load": max(load) if load else 0.0,
    }


def print_round(result: dict) -> None:
    table = Table(
        title=(
            f"{result['workers']} worker(s): round {result['round']:.1f} s; workers' CPU "
            f"{result['worker_cpu']:.0f} s, simulators' CPU {result['sim_cpu']:.0f} s, "
            f"peak load {result['load']:.1f}"
        )
    )
    for col in ("region", "collector", "pass s", "requests"):
        table.add_column(col, justify="right" if col in ("pass s", "requests") else "left")
    for cloud, p in sorted(result["passes"].items()):
        took = (
            datetime.fromisoformat(p["finished_at"]) - datetime.fromisoformat(p["started_at"])
        ).total_seconds()
        table.add_row(
            f"{cloud}/{p['region']}", p["collector"] or "", f"{took:.1f}", str(p["requests"])
        )
    console.print(table)
    rss = Table(title="peak RSS per worker (MB)")
    for name in result["rss"]:
        rss.add_column(name, justify="right")
    rss.add_row(*(f"{v:.0f}" for v in result["rss"].values()))
    console.print(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="benchmark")
    parser.add_argument("--regions", type=int, default=10)
    parser.add_argument("--workers", default="1,3", help="worker counts to compare")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    console.print(calibration_line())
    counts = [int(c) for c in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        sims, clouds = start_simulators(args.preset, args.regions, workdir)
        console.print(
            f"{args.regions} simulators ({args.preset}) ready in {time.perf_counter() - t0:.0f} s; "
            f"{os.cpu_count()} CPUs"
        )
        try:
            results = []
            for count in counts:
                result = run_round(count, args.regions, clouds, workdir, args.postgres, sims)
                print_round(result)
                results.append(result)
        finally:
            for p in sims:
                p.terminate()
            for p in sims:
                p.wait(30)
    summary = Table(title="speed-up of a full round")
    for col in ("workers", "round s", "speed-up", "target"):
        summary.add_column(col, justify="right")
    base = results[0]["round"]
    for r in results:
        target = ">= 2.5x" if r["workers"] == 3 else ""
        summary.add_row(str(r["workers"]), f"{r['round']:.1f}", f"{base / r['round']:.2f}x", target)
    console.print(summary)


if __name__ == "__main__":
    main()
