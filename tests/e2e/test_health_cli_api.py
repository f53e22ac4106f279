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
from stackfleet.api.auth import Identity, ReadMode
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
    health = {"opt_in": {"tags": ["ha"]}, "workloads": [{"name": "ha-web", "tag": "ha"}]}
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
    assert [(w["workload"], w["members"]) for w in workloads] == [("ha-web", 2)]
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

    metrics = client.get("/metrics").text
    labels = f'cloud="{CLOUD}",host="{victim}",region="{REGION}"'
    assert f'stackfleet_host_health{{{labels},state="down"}} 1.0' in metrics
    assert 'stackfleet_recoveries{kind="host",status="succeeded"} 1.0' in metrics
    assert "stackfleet_recovery_frozen 0.0" in metrics
