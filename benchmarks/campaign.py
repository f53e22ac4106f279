"""Benchmark: a rolling campaign over 100 hosts of the simulated cloud.

100 compute hosts (about 20 servers each), a canary host then batches of 10: each host
is pre-checked (health gate), drained (service disabled with the campaign's reason, its
servers live-migrated, 8 at a time), patched (an INI change through the local
connector), restarted (its Nova services restart in the simulator), gated (services up
with fresh heartbeats, no new alerts) and undrained. Live migrations take
`--migration-seconds` in the simulator (its action delay).

Printed: the wall time beside the sum of the steps' own durations and the sum over
batches of each batch's slowest host (the critical path: what a perfect orchestrator
would take); the campaign's own overhead is the wall time beyond that critical path.
And the API requests per migrated instance beyond the migration call itself (target
<= 3): the drain polls with one server list per host, shared by its migrations.

    PYTHONPATH=src .venv/bin/python benchmarks/campaign.py [--hosts 100] [--batch 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.settings import GlobalSafety, Settings
from stackfleet.patching.campaign import CampaignRunner
from stackfleet.patching.spec import load_spec
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store
from stackfleet.store import patching as records

CLOUD = "sim"
REGION = "RegionOne"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--per-host", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--migration-seconds", type=float, default=0.5)
    parser.add_argument("--poll", type=float, default=0.25)
    parser.add_argument("--routes", action="store_true", help="Print the request counts by route.")
    args = parser.parse_args()

    spare = max(4, args.hosts // 10)
    config = preset(
        "small",
        hypervisors=args.hosts + spare,
        servers=(args.hosts + spare) * args.per_host,
        ports=0,
        floating_ips=20,
        volumes=20,
        baremetal_nodes=0,
        projects=20,
    )
    work = Path(tempfile.mkdtemp(prefix="stackfleet-campaign-bench-"))
    with SimulatorServer(config) as sim:
        sim.sim.action_delay = args.migration_seconds  # type: ignore[attr-defined]
        clouds = sim.write_clouds_yaml(work / "clouds.yaml", CLOUD)
        store = open_store(f"sqlite:///{work / 'store.db'}")
        collect(store, CLOUD, config_files=[str(clouds)])
        region = sim.state.regions[REGION]
        services = [s for s in region.compute_services.values() if s["binary"] == "nova-compute"]
        healthy = sorted(
            s["host"] for s in services if s["state"] == "up" and s["status"] == "enabled"
        )
        hosts = healthy[: args.hosts]
        for host in {s["host"] for s in region.compute_services.values()}:
            conf = work / "hosts" / host / "etc/nova/nova.conf"
            conf.parent.mkdir(parents=True)
            conf.write_text("[DEFAULT]\ndebug = false\n")
            requests.post(f"{sim.base_url}/_sim/hosts/{host}/restart", json={}, timeout=10)
        restart = work / "restart.sh"
        restart.write_text(
            f"curl -sf -X POST {sim.base_url}/_sim/hosts/$STACKFLEET_HOST/restart >/dev/null\n"
        )
        spec = work / "campaign.yaml"
        spec.write_text(
            f"""\
campaign:
  name: bench
  cloud: {CLOUD}
  region: {REGION}
  connector: {{type: local, root: hosts}}
  services:
    nova-compute: {{config_files: [/etc/nova/nova.conf], restart: "sh {restart}"}}
  targets:
    hosts: {{names: [{", ".join(hosts)}]}}
    services: [nova-compute]
  steps:
    drain: {{concurrency: {args.concurrency}, fallback: stop}}
    apply:
      - config: {{file: /etc/nova/nova.conf, set: {{DEFAULT: {{cpu_allocation_ratio: 4.0}}}}}}
    gate: {{wait: 30s}}
  rollout: {{canary_hosts: 1, batch_size: {args.batch}}}
  poll_interval: {args.poll}s
"""
        )
        settings = Settings(safety=GlobalSafety(rate_limit=None))
        runner = CampaignRunner(store, settings, Connections([str(clouds)]))
        loaded = load_spec(spec)
        on_hosts = sum(
            1 for s in region.servers.values() if s.get("OS-EXT-SRV-ATTR:host") in set(hosts)
        )
        runner.start(loaded)
        requests.delete(f"{sim.base_url}/_sim/requests", timeout=10)
        started = time.perf_counter()
        result = runner.run("bench")
        wall = time.perf_counter() - started
        counts = requests.get(f"{sim.base_url}/_sim/requests", timeout=10).json()["requests"]
        steps = records.steps_of(store, result["id"])

    per_step: Counter[str] = Counter()
    per_host: Counter[tuple[int, str]] = Counter()
    moved = stopped = 0
    for step in steps:
        seconds = step["seconds"] or 0.0
        per_step[step["step"]] += seconds
        per_host[(step["batch"], step["host"])] += seconds
        moved += len(step["detail"].get("moved") or [])
        stopped += len(step["detail"].get("stopped") or [])
    critical = sum(
        max(s for (b, _h), s in per_host.items() if b == batch)
        for batch in {b for b, _ in per_host}
    )
    migrations = sum(
        n for route, n in counts.items() if route.startswith("POST") and route.endswith("/action")
    )
    by_kind: Counter[str] = Counter()
    for route, n in counts.items():
        if "/compute/" not in route:
            by_kind["other services (identity, image)"] += n
        elif route.startswith("POST") and route.endswith("/action"):
            by_kind["server actions (migrations, stops)"] += n
        elif "servers/detail" in route:
            by_kind["server lists (drain polls)"] += n
        elif "os-services" in route:
            by_kind["os-services (disable, enable, gates)"] += n
        elif "/servers" in route:
            by_kind["server reads and canaries"] += n
        else:
            by_kind["other compute"] += n
    total = sum(counts.values())
    beyond = total - migrations

    print(
        f"campaign over {len(hosts)} hosts: {result['status']}"
        + (f" ({result['error']})" if result["error"] else "")
    )
    print(f"servers on the hosts: {on_hosts}; migrated {moved}, stopped (fallback) {stopped}")
    print()
    print(f"{'measure':<52}{'value':>12}")
    print(f"{'wall time (s)':<52}{wall:>12.1f}")
    print(f"{'sum of every step of every host (s)':<52}{sum(per_step.values()):>12.1f}")
    print(f"{'critical path: sum of each batch slowest host (s)':<52}{critical:>12.1f}")
    print(f"{'campaign overhead beyond the critical path (s)':<52}{wall - critical:>12.1f}")
    for name in ("pre-check", "drain", "apply", "restart", "gate", "undrain"):
        print(f"{'  sum of ' + name + ' steps (s)':<52}{per_step[name]:>12.1f}")
    print(f"{'API requests in all':<52}{total:>12}")
    for kind, n in by_kind.most_common():
        print(f"{'  ' + kind:<52}{n:>12}")
    if args.routes:
        for route, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"  {n:>8}  {route}")
    if moved:
        print(
            f"{'requests per migrated instance beyond the migration':<52}"
            f"{beyond / (moved + stopped):>12.2f}"
        )


if __name__ == "__main__":
    main()
