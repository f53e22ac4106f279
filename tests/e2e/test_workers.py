"""Scale-out: `stackfleet worker` processes on one PostgreSQL store, coordinated through
the local Redis, collecting a six-region simulated cloud. They split the regions, one
leads, and a worker killed with SIGKILL mid-pass is replaced — its regions collected
again and the leadership moved — within the 15 s target; its cut-off pass is never
trusted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support import redis_or_skip

from stackfleet.simulator.faults import FaultRule
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store

CLOUD = "sim"
REGIONS = tuple(f"Region{n}" for n in range(1, 7))
REDIS = "redis://127.0.0.1:6379"
TAKEOVER = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Worker:
    def __init__(self, name: str, env: dict[str, str], tmp_path: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = tmp_path / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackfleet.cli.main", "worker", "--os-cloud", CLOUD,
             "--port", str(self.port), "--member-id", name, "--interval", "5",
             "--membership-timeout", "3", "--pack", "waste", "--infra-config", os.devnull],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )  # fmt: skip

    def cluster(self) -> dict:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/v1/cluster", timeout=5).json()
        except httpx.HTTPError:
            return {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2500:]


def _wait(predicate, timeout: float, what: str, logs=()) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s\n" + "\n".join(w.tail() for w in logs))


def _newest_complete(store) -> dict[str, str]:
    """region -> the worker that collected its newest complete pass."""
    newest: dict[str, str] = {}
    for p in store.list_passes(limit=500):  # newest first
        if p["status"] == "complete":
            newest.setdefault(p["region"], p["collector"])
    return newest


def _complete_by_region(store, after: float = 0.0) -> dict[str, set[str]]:
    """region -> workers with a complete pass of it that finished after `after`."""
    from datetime import datetime

    done: dict[str, set[str]] = {}
    for p in store.list_passes(limit=500):
        finished = p["finished_at"]
        if p["status"] != "complete" or not finished:
            continue
        if datetime.fromisoformat(finished).timestamp() < after:
            continue
        done.setdefault(p["region"], set()).add(p["collector"])
    return done


def test_workers_split_the_regions_and_replace_a_killed_leader(tmp_path, postgres_url):
    redis_or_skip()
    # a slower server listing (0.8 s a page) leaves time to kill a worker mid-pass
    slow = FaultRule(method="GET", path=r"/servers/detail", latency_ms=800)
    config = preset("small", regions=REGIONS)
    with SimulatorServer(config, faults=[slow]) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        (tmp_path / "settings.yaml").write_text("{}\n")
        env = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_DB_URL": postgres_url,
            "STACKFLEET_CONFIG": str(tmp_path / "settings.yaml"),
            "STACKFLEET_COORDINATION_URL": REDIS,
        }
        store = open_store(postgres_url)
        workers = [Worker(n, env, tmp_path) for n in ("w1", "w2", "w3")]
        try:
            _wait(
                lambda: all(len(w.cluster().get("members", [])) == 3 for w in workers),
                60,
                "three workers see each other",
                workers,
            )

            def settled() -> dict[str, set[str]] | None:
                """Each worker's regions, once the newest complete pass of every region
                came from the worker that owns it now."""
                owned = {w.name: set(w.cluster().get("partitions", [])) for w in workers}
                newest = _newest_complete(store)
                for region in REGIONS:
                    owner = [n for n, p in owned.items() if f"collect:{CLOUD}/{region}" in p]
                    if len(owner) != 1 or newest.get(region) != owner[0]:
                        return None
                return owned

            _wait(lambda: settled() is not None, 90, "every region collected by its owner", workers)
            owned = settled() or {}
            every = [p for parts in owned.values() for p in parts]
            assert sorted(every) == sorted(f"collect:{CLOUD}/{r}" for r in REGIONS), owned
            # six regions over three workers: two each
            assert sorted(len(parts) for parts in owned.values()) == [2, 2, 2], owned
            views = {w.name: w.cluster() for w in workers}
            leaders = [name for name, v in views.items() if v["leader"]]
            assert len(leaders) == 1, views

            victim = next(w for w in workers if w.name == leaders[0])
            survivors = [w for w in workers if w is not victim]
            orphaned = {p.split("/", 1)[1] for p in owned[victim.name]}
            # kill it in the middle of a pass of one of its regions
            _wait(
                lambda: any(
                    p["status"] == "running" and p["collector"] == victim.name
                    for p in store.list_passes(limit=50)
                ),
                60,
                "the leader starts a pass",
                workers,
            )
            killed_at = time.time()
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()

            took = _wait(
                lambda: any(s.cluster().get("leader") for s in survivors),
                TAKEOVER,
                "a new leader",
                survivors,
            )
            assert took < TAKEOVER
            _wait(
                lambda: orphaned <= set(_complete_by_region(store, after=killed_at)),
                TAKEOVER - (time.time() - killed_at),
                "the killed worker's regions collected again",
                survivors,
            )
            retaken = _complete_by_region(store, after=killed_at)
            for region in orphaned:
                assert retaken[region] <= {s.name for s in survivors}, retaken
            members = {m for s in survivors for m in s.cluster()["members"]}
            assert members == {s.name for s in survivors}
            # the pass cut off by the kill is marked interrupted, never complete
            cut = [
                p
                for p in store.list_passes(limit=200)
                if p["collector"] == victim.name and p["status"] not in ("complete", "partial")
            ]
            assert cut and {p["status"] for p in cut} == {"interrupted"}, cut
        finally:
            for w in workers:
                w.stop()
            store.close()
        for w in workers:
            if w is not victim:
                assert "Traceback" not in w.log.read_text(errors="replace"), w.tail()
