"""Fuzz the REST API with Schemathesis: every operation of the OpenAPI document, every
check, against a running API over a store filled by a collection pass over the
simulator (so lookups find real resources), with auth off and with auth on (an admin
token from the simulator's Keystone). Writes are included: use only the throwaway store
this script makes.

Prints a table per run: operations, cases, failures by check; and each unique failure
(check, operation, status, a curl to reproduce it). Exit status 1 when anything failed.
Target: 0 server errors, 0 schema violations, whatever `--examples`.

    .venv/bin/python benchmarks/fuzz_api.py [--examples 25] [--seed 1] [--auth off|on|both]

tests/e2e/test_api_fuzz.py runs the same with a few examples per operation.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import schemathesis
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from schemathesis.engine import Status, events

from stackfleet.api.alerts import MATCHER_FORMAT
from stackfleet.api.auth import KeystoneAuth
from stackfleet.api.events import NOTIFICATION_JSON_FORMAT
from stackfleet.api.server import ApiServer
from stackfleet.api.workloads import WORKLOAD_SPEC_FORMAT
from stackfleet.engine.collect import collect
from stackfleet.engine.event_processor import EventProcessor
from stackfleet.engine.policies import PolicyRunner
from stackfleet.policy import load_text
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack.connection import connect
from stackfleet.store import open_store

CLOUD = "sim"
# something for the action routes to approve and reject
POLICY = """policies:
  - name: stopped-servers
    resource: server
    filters: [{status: SHUTOFF}]
    actions: [{type: notify, to: [ops@example.org]}]
    safety: {require_approval: true}
"""


def register_formats() -> None:
    """Generators for the string formats the API's schema names where JSON Schema cannot
    say what is valid: a matcher whose regular expression compiles, a JSON-encoded
    notification. Without them every fuzzed silence or envelope is a (right) 400."""
    name = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)
    value = st.from_regex(r"[A-Za-z0-9 ._-]{0,20}", fullmatch=True)
    regex = st.sampled_from(["web-.*", "cmp[0-9]+", "(critical|warning)", ".*", "a|b"])
    matcher = st.one_of(
        st.tuples(name, st.sampled_from(["=", "!="]), value),
        st.tuples(name, st.sampled_from(["=~", "!~"]), regex),
    ).map("".join)
    schemathesis.openapi.format(MATCHER_FORMAT, matcher)
    message = st.fixed_dictionaries(
        {
            "event_type": st.from_regex(r"[a-z]{1,12}\.[a-z.]{1,20}", fullmatch=True),
            "payload": st.dictionaries(name, value, max_size=3),
        },
        optional={"publisher_id": value, "priority": st.sampled_from(["info", "error"])},
    )
    schemathesis.openapi.format(NOTIFICATION_JSON_FORMAT, message.map(json.dumps))
    # workload specs the simulated cloud resolves; count 0, so that an apply (which may
    # execute) converges without needing quota, and plans stay cheap
    workload = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
    spec = workload.map(
        lambda name: (
            f"workloads:\n  - name: {name}\n    count: 0\n    cloud: {CLOUD}\n"
            "    project: alpha-01\n    image: cirros-0.6.2-x86_64-disk\n    size: m1.tiny\n"
        )
    )
    schemathesis.openapi.format(WORKLOAD_SPEC_FORMAT, spec)


@dataclass
class FuzzReport:
    """What one run found."""

    operations: int = 0
    cases: int = 0
    failures_by_check: Counter[str] = field(default_factory=Counter)
    # unique failures: (check, operation, status, curl)
    failures: list[tuple[str, str, int | None, str]] = field(default_factory=list)
    seconds: float = 0.0
    # failures not counted: a case whose path parameter was null (see _null_path_parameter)
    null_links: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


@contextmanager
def fuzz_target(auth: bool, workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A running API over a freshly collected store of the small simulated cloud: its
    base URL and the headers every request needs (an admin token when `auth`)."""
    with SimulatorServer(preset("small")) as simulator:
        clouds = simulator.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        store = open_store(f"sqlite:///{workdir / 'stackfleet.db'}")
        try:
            collect(store, CLOUD, config_files=[str(clouds)])
            PolicyRunner(store).run(load_text(POLICY), execute=True)
            keystone = None
            headers: dict[str, str] = {}
            if auth:
                admin = connect(CLOUD, config_files=[str(clouds)])[0].conn
                keystone = KeystoneAuth(admin, cloud=CLOUD)
                headers["X-Auth-Token"] = admin.auth_token
            # as `stackfleet serve` runs it: POST /v1/events queues (nothing drains the
            # queue here: the fuzzer's notifications must not refresh the store)
            events = EventProcessor(store, PolicyRunner(store), [])
            # POST /v1/workloads/plan|apply act with the API's clouds.yaml, as `serve` does
            saved = os.environ.get("OS_CLIENT_CONFIG_FILE")
            os.environ["OS_CLIENT_CONFIG_FILE"] = str(clouds)
            try:
                with ApiServer(store, keystone=keystone, events=events) as url:
                    yield url, headers
            finally:
                if saved is None:
                    os.environ.pop("OS_CLIENT_CONFIG_FILE", None)
                else:
                    os.environ["OS_CLIENT_CONFIG_FILE"] = saved
        finally:
            store.close()


def fuzz(url: str, headers: dict[str, str], examples: int, seed: int) -> FuzzReport:
    """Run every phase and every check of Schemathesis against the API at `url`."""
    register_formats()
    config = schemathesis.Config.from_dict(
        {
            "seed": seed,
            "headers": headers,
            # the same cases every run (CI must not flake), and no example database
            "generation": {"max-examples": examples, "deterministic": True, "database": "none"},
        }
    )
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    report = FuzzReport(operations=len(list(schema.get_all_operations())))
    seen: set[tuple[str, str, int | None]] = set()
    started = time.monotonic()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            report.cases += len(recorder.cases)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status != Status.FAILURE:
                        continue
                    node = recorder.cases.get(case_id)
                    if node is not None and _null_path_parameter(node.value):
                        report.null_links += 1
                        continue
                    interaction = recorder.interactions.get(case_id)
                    status = interaction.response.status_code if interaction else None
                    label = node.value.operation.label if node else recorder.label
                    key = (check.name, label, status)
                    if key in seen:
                        continue
                    seen.add(key)
                    report.failures_by_check[check.name] += 1
                    curl = node.value.as_curl_command(base_url=url) if node else ""
                    report.failures.append((check.name, label, status, curl))
        elif isinstance(event, events.NonFatalError):
            report.failures_by_check["error"] += 1
            report.failures.append(("error", event.label, None, str(event.info.message)))
        elif isinstance(event, events.FatalError):
            raise RuntimeError(f"schemathesis failed: {event.exception}")
    report.seconds = time.monotonic() - started
    return report


def _null_path_parameter(case: schemathesis.Case) -> bool:
    """Whether a path parameter of `case` is null. Schemathesis 4.32 feeds values of
    responses into requests (stateful links, response data sources); a null
    `finding_id` of an alert becomes the text "None" in `/v1/findings/{finding_id}`,
    and the API's (right) 400 is then reported as a valid request refused."""
    return any(value is None for value in (case.path_parameters or {}).values())


def print_report(console: Console, title: str, report: FuzzReport) -> None:
    table = Table(title=title)
    table.add_column("operations", justify="right")
    table.add_column("cases", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("failures by check")
    table.add_column("null links", justify="right")
    by_check = ", ".join(f"{n}: {c}" for n, c in sorted(report.failures_by_check.items()))
    table.add_row(
        str(report.operations),
        str(report.cases),
        f"{report.seconds:.0f}",
        by_check or "none",
        str(report.null_links),
    )
    console.print(table)
    for check, label, status, curl in report.failures:
        shown = curl if len(curl) <= 600 else curl[:600] + " ..."
        console.print(f"[red]{check}[/red] {label} -> {status}\n    {shown}", soft_wrap=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=25, help="examples per operation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--auth", choices=["off", "on", "both"], default="both")
    args = parser.parse_args()
    console = Console()
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.auth]
    ok = True
    for auth in modes:
        with tempfile.TemporaryDirectory() as tmp, fuzz_target(auth, Path(tmp)) as target:
            report = fuzz(*target, examples=args.examples, seed=args.seed)
        print_report(console, f"auth {'on' if auth else 'off'}", report)
        ok = ok and report.ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
