"""The daemon's infrastructure job evaluates each pack policy once per sweep: the pack
run after the sweep records the findings, and nothing judges the same records again
before it (the status verdicts are for the `db`/`mq status` commands, not the daemon).

Against the machine's MariaDB (127.0.0.1:3306) and a port where nothing listens. The
evaluation count is taken by wrapping the engine's evaluation function, since how often
it runs is not visible from outside."""

from __future__ import annotations

import socket
from collections import Counter
from typing import Any

import pymysql
import pytest
from support import service_missing

from stackfleet.engine import evaluate, infra_monitor, policies
from stackfleet.engine.infra_monitor import InfraMonitorLoop
from stackfleet.engine.infra_packs import InfraPacks
from stackfleet.sources.database import DatabaseTarget
from stackfleet.store.findings import list_findings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def evaluations(monkeypatch) -> Counter[str]:
    counted: Counter[str] = Counter()
    original = evaluate.evaluate_policy

    def counting(policy: Any, view: Any, only: Any = None) -> Any:
        counted[policy.name] += 1
        return original(policy, view, only)

    monkeypatch.setattr(infra_monitor, "evaluate_policy", counting)
    monkeypatch.setattr(policies, "evaluate_policy", counting)
    return counted


def test_each_database_policy_is_evaluated_once_per_sweep(store, evaluations):
    try:
        pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3).close()
    except pymysql.err.MySQLError as exc:
        service_missing(f"MariaDB not reachable on 127.0.0.1:3306 as root: {exc}")
    live = DatabaseTarget("127.0.0.1", 3306, user="root", name="db-local")
    dead = DatabaseTarget("127.0.0.1", free_port(), user="root", name="db-gone")
    packs = InfraPacks(store)
    loop = InfraMonitorLoop(
        store, [live, dead], [], packs.pack("database"), after_sweep=packs.after_infra_sweep
    )
    loop.run_once()
    [finding] = list_findings(store, status="open", policy="database/unreachable")[0]
    assert finding["resource_name"] == "db-gone"
    enabled = [p.name for p in packs.pack("database") if p.spec.enabled]
    assert evaluations == Counter(dict.fromkeys(enabled, 1))
    loop.run_once()
    assert evaluations == Counter(dict.fromkeys(enabled, 2))
