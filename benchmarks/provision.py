"""Provisioning against the simulator: apply a 200-VM spec (wall time, API requests per
created server) and plan a workload of 1,000 existing members (time of the comparison).

    PYTHONPATH=src .venv/bin/python benchmarks/provision.py [--servers 200] [--plan 1000]

Targets (issue 12): at most 2 requests per server beyond the create itself; a plan of
1,000 members in under 1 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stackfleet.engine.settings import Settings
from stackfleet.provision.apply import Provisioner
from stackfleet.provision.plan import member_of, plan_workload
from stackfleet.provision.spec import load_spec_text
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store

SPEC = """workloads:
  - name: bench
    count: COUNT
    image: IMAGE
    size: m1.tiny
    networks: [public]
    timeout: 600s
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--plan", type=int, default=1000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    settings = Settings.model_validate(
        {"safety": {"max_actions_per_run": 100_000, "rate_limit": None}}
    )
    with SimulatorServer(preset("small", hypervisors=60)) as server:
        clouds = server.write_clouds_yaml(tmp / "clouds.yaml", "sim")
        region = server.state.regions["RegionOne"]
        image = next(
            i["name"]
            for i in region.images.values()
            if i["status"] == "active" and i.get("visibility") == "public"
        )
        text = SPEC.replace("COUNT", str(args.servers)).replace("IMAGE", image)
        store = open_store(f"sqlite:///{tmp / 'store.db'}")
        runner = Provisioner(store, settings, [str(clouds)], "sim", poll_interval=1.0)
        started = time.perf_counter()
        plans = runner.plan(runner.prepare(load_spec_text(text)))
        runner.check_capacity(plans)
        report = runner.apply(plans, execute=True)
        wall = time.perf_counter() - started
        counts = dict(runner.log.counts)
        after = runner.plan(runner.prepare(load_spec_text(text)))
        runner.close()
        creates = counts.get("compute POST /servers", 0)
        active = sum(1 for o in report.outcomes if o.status == "active")
        total = sum(counts.values())
        # the spec's own reads (images, flavors, networks, quota, capacity) are per
        # apply, not per server; the member listings (polls) are the per-server part
        polls = counts.get("compute GET /servers/detail?tags=", 0)

        # a plan of N existing members: the comparison alone (the listing is one call)
        workload = load_spec_text(SPEC.replace("COUNT", str(args.plan)).replace("IMAGE", image))
        resolved = after[0][0].resolved
        resolved.workload = workload[0]
        built = after[0][0].members
        copies = args.plan // max(1, len(built)) + 1
        servers = [
            {
                **m.raw,
                "id": f"{m.id}-{n}",
                "metadata": {**m.raw["metadata"], "stackfleet-member": str(n * len(built) + i)},
            }
            for n in range(copies)
            for i, m in enumerate(built, start=1)
        ]
        now = datetime.now(UTC)
        members = [m for s in servers if (m := member_of(s, "bench", None))]
        for member in members:
            member.created = member.created or now
        plan_started = time.perf_counter()
        big = plan_workload(resolved, members[: args.plan])
        plan_seconds = time.perf_counter() - plan_started

    table = Table(title="Provisioning against the simulator")
    for column in ("measure", "value"):
        table.add_column(column)
    table.add_row("servers asked / ACTIVE", f"{args.servers} / {active}")
    table.add_row("apply wall time (s)", f"{wall:.1f}")
    table.add_row("create requests", str(creates))
    table.add_row("member listings (polls)", str(polls))
    table.add_row("all requests", str(total))
    table.add_row(
        "requests per server beyond the create", f"{(total - creates) / max(1, creates):.2f}"
    )
    table.add_row(f"plan of {len(members[: args.plan])} members (s)", f"{plan_seconds:.3f}")
    table.add_row("plan steps", str(big.counts()))
    Console().print(table)


if __name__ == "__main__":
    main()
