"""`stackfleet health ...` and `stackfleet recoveries ...` as an operator runs them, and
the same over the API and /metrics, against the simulated cloud with a failed host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from health_rig import CLOUD, REGION, Rig, detect, opt_in_two, running_rig, stackfleet

from stackfleet.api import rbac
from stackfleet.api.app import create_app
from stackfleet.api.auth import Identity, MetricsAccess, ReadMode
from stackfleet.store import recoveries

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from running_rig(tmp_path)


def test_the_cli_plans_then_carries_out_a_recovery_and_shows_each_step(rig: Rig) -> None:
    victim = rig.healthy_hosts()[0]
    chosen = opt_in_two(rig, victim)
    health = {
        "opt_in": {"tags": ["ha"]},
        "workloads": [
            {"name": "ha-web", "tag": "ha"},
            {"name": "ghost", "server_group": "no-such-group"},
        ],
    }
    env = rig.cli_env(**health)
    rig.collect()  # workloads are found in the inventory (tag ha)
    monitor, _ = rig.parts(rig.settings(**health))
    rig.server.sim.hosts.fail(REGION, victim, "host")
    detect(monitor, victim, "host")

    planned = stackfleet("recoveries", "run", "--os-cloud", CLOUD, "-f", "json", env=env)
    assert planned.returncode == 0, planned.stderr
    [plan] = json.loads(planned.stdout)
    assert plan["status"] == "dry-run" and plan["subject"] == victim
    assert rig.bmcs.bmc(victim).power_state == "On"  # a plan changes nothing
    assert set(chosen) <= set(rig.servers_on(victim))

    done = stackfleet("recoveries", "run", "--execute", "--os-cloud", CLOUD, "-f", "json", env=env)
    assert done.returncode == 0, done.stderr
    [recovery] = json.loads(done.stdout)
    assert recovery["status"] == "succeeded", recovery
    assert rig.bmcs.bmc(victim).power_state == "Off"
    assert not set(chosen) & set(rig.servers_on(victim))

    listed = stackfleet("recoveries", "list", "-f", "json", env=env)
    assert [r["status"] for r in json.loads(listed.stdout)] == ["succeeded", "dry-run"]
    shown = json.loads(
        stackfleet("recoveries", "show", str(recovery["id"]), "-f", "json", env=env).stdout
    )
    names = [s["name"] for s in shown["steps"]]
    assert names[:2] == ["fence", "force-down"] and names.count("evacuate") == 2
    assert all(s["started_at"] and s["finished_at"] for s in shown["steps"])
    assert any("BMC" in e for e in shown["evidence"])
    table = stackfleet("recoveries", "show", str(recovery["id"]), env=env)
    assert table.returncode == 0 and "evacuate" in table.stdout and "done" in table.stdout

    hosts = json.loads(stackfleet("health", "hosts", "-f", "json", env=env).stdout)
    [down] = [h for h in hosts if h["host"] == victim]
    assert down["state"] == "down" and down["failure"] == "host"
    assert any(e.startswith("management address") for e in down["evidence"])
    services = json.loads(
        stackfleet(
            "health", "services", "--assess", "--os-cloud", CLOUD, "-f", "json", env=env
        ).stdout
    )
    [service] = [s for s in services if s["service"] == f"nova-compute@{victim}"]
    assert service["forced_down"] and service["disabled_reason"].startswith("stackfleet recovery")
    workloads = json.loads(stackfleet("health", "workloads", "-f", "json", env=env).stdout)
    by_name = {w["workload"]: w for w in workloads}
    assert by_name["ha-web"]["members"] == 2
    # a selector that matches nothing: unknown, saying so (never a guess)
    assert by_name["ghost"]["state"] == "unknown"
    assert (
        by_name["ghost"]["reason"]
        == "no instance matches server_group=no-such-group: state unknown"
    )
    default = stackfleet("health", env=env)
    assert default.returncode == 0 and victim in default.stdout


def test_the_cli_refuses_bad_input_with_a_clear_error(rig: Rig) -> None:
    env = rig.cli_env()
    bad_state = stackfleet("health", "hosts", "--state", "sick", env=env)
    assert bad_state.returncode == 2 and "--state must be one of" in bad_state.stderr
    missing = stackfleet("recoveries", "show", "999", env=env)
    assert missing.returncode == 4 and "no recovery 999" in missing.stderr
    (rig.tmp / "bad.yaml").write_text(
        "health:\n  workloads:\n    - {name: w, target: 120, tag: x}\n"
    )
    bad = stackfleet("recoveries", "run", "--config", str(rig.tmp / "bad.yaml"), env=env)
    assert bad.returncode == 2 and "target" in bad.stderr and "100" in bad.stderr


class StubAuth:
    """Tokens named after callers (the Keystone check itself is tested elsewhere)."""

    def __init__(self, callers: dict[str, Identity]) -> None:
        self.callers = callers
        self.read: ReadMode = "authenticated"
        self.operator_role = rbac.DEFAULT_OPERATOR_ROLE

    def identify(self, token: str) -> Identity | None:
        return self.callers.get(token)


def test_the_api_and_metrics_show_health_and_recoveries(rig: Rig) -> None:
    victim = rig.healthy_hosts()[0]
    chosen = opt_in_two(rig, victim)
    project = rig.region.servers[next(iter(chosen))]["tenant_id"]
    monitor, reconciler = rig.parts(rig.settings(opt_in={"tags": ["ha"]}))
    rig.server.sim.hosts.fail(REGION, victim, "host")
    reconciler.run_once(detect(monitor, victim, "host"))
    [recovery] = recoveries.list_recoveries(rig.store)
    assert recovery["status"] == "succeeded"
    monitor.run_once()  # the servers are elsewhere now

    callers = {
        "system": Identity("s", "s", None, frozenset({"reader"}), True, None),
        "project": Identity("p", "p", project, frozenset({"reader"}), False, None),
    }
    client = TestClient(create_app(rig.store, StubAuth(callers)))
    system = {"X-Auth-Token": "system"}
    hosts = client.get("/v1/health/hosts", headers=system).json()
    [down] = [h for h in hosts["items"] if h["subject"] == victim]
    assert down["state"] == "down" and down["failure"] == "host"
    assert down["details"]["evidence"] and hosts["frozen"] is None
    only_down = client.get("/v1/health/hosts", params={"state": "down"}, headers=system).json()
    assert [h["subject"] for h in only_down["items"]] == [victim]
    services = client.get("/v1/health/services", headers=system).json()["items"]
    assert any(s["name"] == f"nova-compute@{victim}" and s["state"] == "down" for s in services)
    listed = client.get("/v1/recoveries", headers=system).json()["items"]
    assert [r["id"] for r in listed] == [recovery["id"]]
    one = client.get(f"/v1/recoveries/{recovery['id']}", headers=system).json()
    assert [s["name"] for s in one["steps"]][:2] == ["fence", "force-down"]
    assert client.get("/v1/recoveries/999", headers=system).status_code == 404

    # a project reader: its own instances, no fleet-wide view
    mine = {"X-Auth-Token": "project"}
    assert client.get("/v1/health/hosts", headers=mine).status_code == 403
    assert client.get("/v1/recoveries", headers=mine).status_code == 403
    instances = client.get("/v1/health/instances", headers=mine).json()["items"]
    assert instances and {i["details"]["project_id"] for i in instances} == {project}
    every = client.get("/v1/health/instances", headers=system).json()["items"]
    assert len(every) > len(instances)

    metrics = client.get("/metrics", headers=system).text
    labels = f'cloud="{CLOUD}",host="{victim}",region="{REGION}"'
    assert f'stackfleet_host_health{{{labels},state="down"}} 1.0' in metrics
    assert 'stackfleet_recoveries{kind="host",status="succeeded"} 1.0' in metrics
    assert "stackfleet_recovery_frozen 0.0" in metrics


def test_the_sla_report_counts_a_host_failure_as_one_incident_with_its_cause(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = rig.healthy_hosts()[0]
    opt_in_two(rig, victim)
    health = {
        "opt_in": {"tags": ["ha"]},
        "workloads": [{"name": "ha-web", "tag": "ha", "min_healthy": 2, "target": 99.9}],
    }
    env = rig.cli_env(**health)
    rig.collect()
    monitor, reconciler = rig.parts(rig.settings(**health))
    monitor.run_once()
    rig.server.sim.hosts.fail(REGION, victim, "host")
    reconciler.run_once(detect(monitor, victim, "host"))
    # the evacuated servers are recorded on their new hosts: the workload is whole again
    after = monitor.run_once()
    assert [w.state for w in after.workloads] == ["healthy"]

    report = stackfleet("sla", "report", "--since", "1h", "-f", "json", env=env)
    assert report.returncode == 0, report.stderr
    [row] = json.loads(report.stdout)
    assert row["name"] == "ha-web" and row["target"] == 99.9
    assert 0 < row["achieved"] < 100 and row["met"] is False
    [incident] = row["incidents"]
    assert incident["end"] is not None and incident["seconds"] > 0
    assert "host-down" in incident["cause"] and victim in incident["cause"]
    assert row["error_budget_left_seconds"] < 0
    table = stackfleet("sla", "report", env=env)
    assert table.returncode == 0 and "ha-web" in table.stdout and "host-down" in table.stdout

    unknown = stackfleet("sla", "report", "--workload", "nope", env=env)
    assert unknown.returncode == 2 and "no workload 'nope'; known workloads: ha-web" in (
        " ".join(unknown.stderr.split())
    )
    too_high = stackfleet("sla", "report", "--target", "120", env=env)
    assert too_high.returncode == 2 and "between 0 and 100" in too_high.stderr
    bad_since = stackfleet("sla", "report", "--since", "last tuesday", env=env)
    assert bad_since.returncode == 2 and "neither a duration" in bad_since.stderr

    monkeypatch.setenv("STACKFLEET_CONFIG", env["STACKFLEET_CONFIG"])
    # /metrics scraped the way `serve --metrics-public` lets Prometheus
    client = TestClient(create_app(rig.store, metrics=MetricsAccess(public=True)))
    [api_row] = client.get("/v1/sla", params={"since": "1h"}).json()["items"]
    assert api_row["incidents"][0]["cause"] == incident["cause"]
    assert client.get("/v1/sla", params={"target": 120}).status_code == 400
    assert client.get("/v1/sla", params={"workload": "nope"}).status_code == 404
    metrics = client.get("/metrics").text
    assert 'stackfleet_workload_availability_target_percent{workload="ha-web"} 99.9' in metrics
    assert 'stackfleet_workload_availability_percent{workload="ha-web"}' in metrics
