"""Benchmark: 30 policies over 100,000 servers (plus hypervisors, compute services,
images and projects), evaluated by StackFleet's policy engine — and, side by side, the
20 of them that Cloud Custodian's value filters can express, evaluated by c7n over the
same records in the same run.

The records are written to a fresh SQLite store as one collection pass; StackFleet loads
each kind once and evaluates every policy over it as `PolicyRunner.run` does: the fields
the policies compare read once as columns (`prepare`), then each policy. c7n (with
c7n-openstack) pins openstacksdk 0.52, so it runs in its own virtual environment: give
its python with --c7n-python (default $C7N_PYTHON, else
~/.cache/stackfleet-c7n/venv/bin/python, which `scripts/bootstrap test` makes); without it the
comparison is skipped, and said so. c7n gets the same server records as JSON and
applies each policy's filters the way a c7n policy does (in order, each over the
previous one's result), timed on that alone (not its start-up, nor reading the records;
each filter is warmed up on a few records first). Loading is timed apart from
evaluation. Times are CPU and wall (the machine may be shared: CPU is the fair
measure); the run exits 1 when StackFleet and c7n disagree on a match count.

    .venv/bin/python benchmarks/policy_eval.py [--servers 100000] [--no-c7n]
        [--c7n-python PATH] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from calibration import calibration_line
from rich.console import Console
from rich.table import Table

from stackfleet.engine.evaluate import evaluate_policy, prepare
from stackfleet.policy import load_text
from stackfleet.policy.view import FleetView, paused_gc
from stackfleet.store import open_store

# wide enough for the table when the output is a file or a pipe (80 columns there)
console = Console(width=max(Console().width, 120))
# c7n ages resources against the real clock: so does this run
NOW = datetime.now(UTC)
# the environment `scripts/bootstrap test` makes for Cloud Custodian
DEFAULT_C7N = Path.home() / ".cache" / "stackfleet-c7n" / "venv" / "bin" / "python"

# name -> (StackFleet filters, c7n filters or None). Both are YAML/JSON filter lists;
# StackFleet's language is Custodian's where Custodian can say the same thing.
POLICIES: list[tuple[str, list[Any], list[Any] | None]] = []


def shared(name: str, filters: list[Any], c7n: list[Any] | None = None) -> None:
    POLICIES.append((name, filters, c7n if c7n is not None else filters))


def own(name: str, filters: list[Any]) -> None:
    POLICIES.append((name, filters, None))


shared("shutoff", [{"status": "SHUTOFF"}])
shared("error", [{"status": "ERROR"}])
shared("big-vcpu", [{"type": "value", "key": "vcpus", "op": "gt", "value": 4}])
shared("big-ram", [{"type": "value", "key": "ram_mb", "op": "ge", "value": 16384}])
shared(
    "stopped-or-broken",
    [{"type": "value", "key": "status", "op": "in", "value": ["ERROR", "SHUTOFF"]}],
)
shared("not-active", [{"type": "value", "key": "status", "op": "not-in", "value": ["ACTIVE"]}])
shared("web-names", [{"type": "value", "key": "name", "op": "regex", "value": "^p1[0-9]-web"}])
shared("no-owner", [{"metadata.owner": "absent"}])
shared("production", [{"type": "value", "key": "tags", "op": "contains", "value": "production"}])
shared(
    "big-and-idle",
    [
        {"or": [{"status": "SHUTOFF"}, {"status": "ERROR"}]},
        {"type": "value", "key": "vcpus", "op": "ge", "value": 8},
    ],
)
shared("not-running", [{"not": [{"status": "ACTIVE"}]}])
shared("locked-active", [{"and": [{"status": "ACTIVE"}, {"locked": True}]}])
shared(
    "older-than-a-year",
    [{"type": "age", "field": "created", "older_than": "365d"}],
    [{"type": "value", "key": "created", "value_type": "age", "op": "gt", "value": 365}],
)
shared(
    "shutoff-30-days",
    [{"status": "SHUTOFF"}, {"type": "age", "field": "updated", "older_than": "30d"}],
    [
        {"status": "SHUTOFF"},
        {"type": "value", "key": "updated", "value_type": "age", "op": "gt", "value": 30},
    ],
)
shared("no-keypair", [{"key_name": "absent"}])
shared(
    "large-flavors",
    [{"type": "value", "key": "flavor_name", "op": "in", "value": ["m1.xlarge", "m1.large"]}],
)
shared(
    "az1-cmp00",
    [
        {"availability_zone": "az1"},
        {"type": "value", "key": "host", "op": "regex", "value": "^cmp00"},
    ],
)
shared("image-5", [{"image_id": "img-00005"}])
shared(
    "power-mismatch",
    [
        {"power_state": "SHUTDOWN"},
        {"type": "value", "key": "status", "op": "ne", "value": "SHUTOFF"},
    ],
)
shared(
    "default-group",
    [{"type": "value", "key": "security_groups", "op": "contains", "value": "default"}],
)
own(
    "on-down-hosts",
    [
        {
            "type": "relation",
            "relation": "hypervisor",
            "filters": [
                {"type": "relation", "relation": "compute_service", "filters": [{"state": "down"}]}
            ],
        }
    ],
)
own(
    "image-gone",
    [{"type": "relation", "relation": "image", "absent": True}, {"image_id": "present"}],
)
own(
    "shutoff-state-30d",
    [{"status": "SHUTOFF"}, {"type": "age", "state": "status", "older_than": "30d"}],
)
own(
    "owner-and-tag",
    [
        {"type": "metadata", "key": "owner", "op": "absent"},
        {"type": "tag", "tag": "production", "absent": True},
    ],
)
own(
    "web-on-one-host",
    [{"type": "colocated", "group_by": "name", "pattern": "^(p\\d+-web)-", "on": "host"}],
)
own("crowded-hosts", [{"type": "peers", "group_by": ["host"], "op": "gt", "count": 110}])
own("az-imbalance", [{"type": "imbalance", "field": "availability_zone", "max_ratio": 1.2}])
own("unused-images@image", [{"type": "relation", "relation": "servers", "absent": True}])
own("empty-projects@project", [{"type": "relation", "relation": "owned", "absent": True}])
own(
    "full-hypervisors@hypervisor",
    [
        {
            "or": [
                {"type": "allocation", "percent": 90},
                {"type": "allocation", "resource_class": "memory_mb", "percent": 90},
            ]
        }
    ],
)

FLAVORS = [
    ("m1.tiny", 1, 512),
    ("m1.small", 1, 2048),
    ("m1.medium", 2, 4096),
    ("m1.large", 4, 8192),
    ("m1.xlarge", 8, 16384),
    ("c1.huge", 16, 65536),
]


def fleet(servers: int, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """Records as the sources build them (every declared field present)."""
    rng = random.Random(seed)
    hosts = max(10, servers // 100)
    stamp = lambda days: (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    hypervisors = [
        {
            "id": f"hv-{h:05d}",
            "name": f"cmp{h:05d}.example",
            "project_id": None,
            "status": "up",
            "hypervisor_hostname": f"cmp{h:05d}.example",
            "host": f"cmp{h:05d}",
            "state": "down" if h % 97 == 3 else "up",
            "enabled": "enabled",
            "vcpu_used": rng.randint(10, 128),
            "vcpu_capacity": 128,
            "memory_mb_used": rng.randint(1, 512) * 1024,
            "memory_mb_capacity": 512 * 1024,
        }
        for h in range(hosts)
    ]
    services = [
        {
            "id": f"nova-compute@cmp{h:05d}",
            "name": f"nova-compute@cmp{h:05d}",
            "project_id": None,
            "status": hv["state"],
            "binary": "nova-compute",
            "host": f"cmp{h:05d}",
            "zone": f"az{h % 3 + 1}",
            "state": hv["state"],
            "enabled": "enabled",
        }
        for h, hv in enumerate(hypervisors)
    ]
    projects = [
        {
            "id": f"proj{p:03d}",
            "name": f"p{p}",
            "project_id": f"proj{p:03d}",
            "status": "enabled",
            "enabled": True,
        }
        for p in range(200)
    ]
    images = [
        {
            "id": f"img-{i:05d}",
            "name": f"image-{i}",
            "project_id": "proj000",
            "status": "active",
            "visibility": "public",
            "created_at": stamp(rng.randint(1, 900)),
        }
        for i in range(2000)
    ]
    server_list = []
    for i in range(servers):
        h = rng.randrange(hosts)
        flavor = rng.choice(FLAVORS)
        status = rng.choices(["ACTIVE", "SHUTOFF", "ERROR"], [85, 12, 3])[0]
        project = rng.randrange(200)
        role = rng.choice(["web", "db", "api", "worker", "batch"])
        server_list.append(
            {
                "id": f"srv-{i:06d}",
                "name": f"p{project}-{role}-{i:06d}",
                "project_id": f"proj{project:03d}",
                "status": status,
                "task_state": None,
                "vm_state": status.lower(),
                "power_state": "SHUTDOWN" if status != "ACTIVE" or i % 101 == 0 else "RUNNING",
                "host": f"cmp{h:05d}",
                "hypervisor_hostname": f"cmp{h:05d}.example",
                "availability_zone": f"az{h % 3 + 1}",
                "flavor_name": flavor[0],
                "vcpus": flavor[1],
                "ram_mb": flavor[2],
                "disk_gb": 20,
                "image_id": f"img-{rng.randrange(2400):05d}",
                "user_id": f"user{project}",
                "key_name": None if i % 9 == 0 else "key",
                "created": stamp(rng.randint(1, 1000)),
                "launched_at": stamp(1),
                "updated": stamp(rng.randint(0, 200)),
                "locked": i % 41 == 0,
                "metadata": {"owner": "x@example.org"} if i % 3 else {},
                "tags": ["production"] if i % 5 == 0 else [],
                "security_groups": ["default"] if i % 4 else ["web"],
                "volume_ids": [],
                "addresses": [f"10.0.{i // 250 % 250}.{i % 250}"],
            }
        )
    return {
        "server": server_list,
        "hypervisor": hypervisors,
        "compute_service": services,
        "image": images,
        "project": projects,
    }


def policy_yaml(name: str, filters: list[Any]) -> str:
    kind = name.split("@")[1] if "@" in name else "server"
    safe = name.split("@")[0]
    return json.dumps({"name": safe, "resource": kind, "filters": filters})


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


C7N_SCRIPT = r"""
import json, resource, sys, time
from c7n_openstack.resources.server import Server
records = json.load(open(sys.argv[1]))
policies = json.load(open(sys.argv[2]))
registry = Server.filter_registry
out = {}
for name, filters in policies:
    built = [registry.factory(f, None) for f in filters]
    # warm up off the clock: first-call set-up (operator tables, lazy imports) is not
    # filter evaluation
    sample = records[:200]
    for f in built:
        sample = f.process(sample) or sample
    start, wall = time.process_time(), time.perf_counter()
    matched = records
    for f in built:
        matched = f.process(matched)
        if not matched:
            break
    out[name] = [len(matched), time.process_time() - start, time.perf_counter() - wall]
out["_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run_c7n(python: str, servers: list[dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """Cloud Custodian's filters over `servers`, in its own process: name -> [matches,
    CPU seconds, wall seconds] of the filter evaluation alone (not start-up, not
    reading the records)."""
    records = workdir / "servers.json"
    records.write_text(json.dumps(servers))
    wanted = [(name, c7n) for name, _ours, c7n in POLICIES if c7n is not None]
    policies = workdir / "c7n-policies.json"
    policies.write_text(json.dumps(wanted))
    script = workdir / "c7n_eval.py"
    script.write_text(C7N_SCRIPT)
    done = subprocess.run(
        [python, str(script), str(records), str(policies)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"c7n run failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    console.print(calibration_line())
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument(
        "--c7n-python",
        default=os.environ.get("C7N_PYTHON", str(DEFAULT_C7N)),
        help="python of a virtual environment with c7n and c7n-openstack "
        "(default: $C7N_PYTHON, else ~/.cache/stackfleet-c7n/venv/bin/python)",
    )
    parser.add_argument("--no-c7n", action="store_true", help="StackFleet only")
    parser.add_argument(
        "--profile", metavar="FILE", help="write a cProfile of StackFleet's evaluation here"
    )
    args = parser.parse_args()

    records = fleet(args.servers)
    hypervisor_count = len(records["hypervisor"])
    text = "policies:\n" + "\n".join(f"  - {policy_yaml(n, f)}" for n, f, _c in POLICIES)
    policies = load_text(text, "benchmark")
    c7n_missing = not args.no_c7n and not Path(args.c7n_python).exists()
    if c7n_missing:
        console.print(
            f"[bold red]Cloud Custodian not found: no python at {args.c7n_python}.[/] "
            "The side-by-side comparison is SKIPPED. Create it with `scripts/bootstrap test` "
            "(or `python3 -m venv DIR && DIR/bin/pip install c7n c7n-openstack`), or "
            "point C7N_PYTHON / --c7n-python at one."
        )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store = open_store(f"sqlite:///{workdir / 'bench.db'}")
        started = time.perf_counter()
        pass_id = store.begin_pass("bench", "RegionOne")
        for kind, items in records.items():
            store.record_kind(pass_id, "bench", "RegionOne", kind, items, True)
        store.finish_pass(pass_id, "complete", None, 0)
        write_s = time.perf_counter() - started
        del records  # the engine reads them back from the store

        view = FleetView(store, NOW)
        started = time.perf_counter()
        for kind in ("server", "hypervisor", "compute_service", "image", "project"):
            view.records(kind)
        load_s = time.perf_counter() - started
        ours: dict[str, tuple[int, float, float]] = {}
        profile = cProfile.Profile() if args.profile else None
        started, cpu_started = time.perf_counter(), time.process_time()
        # as PolicyRunner.run does: one pause of the cyclic collector for the whole run
        # (the collection when it ends is part of the wall time below)
        with paused_gc():
            if profile:
                profile.enable()
            # as PolicyRunner.run does: read every compared field in one pass per kind
            begin, wall = time.process_time(), time.perf_counter()
            prepare(policies, view)
            prepared = (time.process_time() - begin, time.perf_counter() - wall)
            for policy in policies:
                begin, wall = time.process_time(), time.perf_counter()
                found = evaluate_policy(policy, view)
                ours[policy.name] = (
                    len(found.matches),
                    time.process_time() - begin,
                    time.perf_counter() - wall,
                )
            if profile:
                profile.disable()
        eval_s, eval_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        our_rss = rss_mb()
        if profile:
            profile.dump_stats(args.profile)
        servers = view.records("server")

        theirs: dict[str, Any] = {}
        if not args.no_c7n and not c7n_missing:
            plain = [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
                for r in servers
            ]
            theirs = run_c7n(args.c7n_python, plain, workdir)
        store.close()

    table = Table(
        title=f"30 policies over {args.servers:,} servers "
        f"(+{hypervisor_count:,} hypervisors, 2,000 images, 200 projects); times in ms"
    )
    for column in (
        "policy",
        "matches",
        "c7n matches",
        "ours CPU",
        "ours wall",
        "c7n CPU",
        "c7n wall",
        "× (CPU)",
    ):
        table.add_column(column, justify="left" if column == "policy" else "right")
    # the fields every policy compares, read together before the first one: counted
    # in full with the shared policies below, though it serves all of them
    table.add_row(
        "(read compared fields)",
        "",
        "",
        f"{prepared[0] * 1000:.1f}",
        f"{prepared[1] * 1000:.1f}",
        "",
        "",
        "",
    )
    totals = {"ours_cpu": prepared[0], "ours_wall": prepared[1], "c7n_cpu": 0.0, "c7n_wall": 0.0}
    differ: list[str] = []
    for name, _filters, c7n in POLICIES:
        count, cpu, wall = ours[name.split("@")[0]]
        if c7n is not None and name in theirs:
            other_count, other_cpu, other_wall = theirs[name]
            totals["ours_cpu"] += cpu
            totals["ours_wall"] += wall
            totals["c7n_cpu"] += other_cpu
            totals["c7n_wall"] += other_wall
            if other_count != count:
                differ.append(f"{name}: StackFleet {count:,}, c7n {other_count:,}")
            table.add_row(
                name,
                f"{count:,}",
                f"{other_count:,}" + ("" if other_count == count else " [bold red]≠[/]"),
                f"{cpu * 1000:.1f}",
                f"{wall * 1000:.1f}",
                f"{other_cpu * 1000:.1f}",
                f"{other_wall * 1000:.1f}",
                f"{other_cpu / cpu:.0f}×" if cpu else "",
            )
        else:
            table.add_row(
                name, f"{count:,}", "—", f"{cpu * 1000:.1f}", f"{wall * 1000:.1f}", "—", "—", ""
            )
    console.print(table)
    summary = Table(title="Totals")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    summary.add_row("store write (one pass, all kinds)", f"{write_s:.2f} s")
    summary.add_row("StackFleet: load every kind from the store (wall)", f"{load_s:.2f} s")
    summary.add_row(f"StackFleet: evaluate {len(POLICIES)} policies (wall)", f"{eval_s:.2f} s")
    summary.add_row(f"StackFleet: evaluate {len(POLICIES)} policies (CPU)", f"{eval_cpu:.2f} s")
    summary.add_row("StackFleet: peak RSS", f"{our_rss:.0f} MB")
    if theirs:
        shared_count = sum(1 for _n, _f, c in POLICIES if c is not None)
        for label, ours_key, c7n_key in (
            ("CPU", "ours_cpu", "c7n_cpu"),
            ("wall", "ours_wall", "c7n_wall"),
        ):
            summary.add_row(
                f"{shared_count} shared policies, {label}: StackFleet / c7n",
                f"{totals[ours_key]:.3f} s / {totals[c7n_key]:.3f} s",
            )
            summary.add_row(
                f"{shared_count} shared policies, {label}: speed-up",
                f"{totals[c7n_key] / totals[ours_key]:.1f}×",
            )
        summary.add_row("c7n: peak RSS (records from JSON)", f"{theirs['_rss_mb']:.0f} MB")
    elif c7n_missing:
        summary.add_row("c7n comparison", f"SKIPPED: no {args.c7n_python}")
    console.print(summary)
    if differ:
        console.print("[bold red]StackFleet and c7n disagree on match counts:[/]")
        for line in differ:
            console.print(f"  {line}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
