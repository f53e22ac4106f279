"""Containers through the simulated Zun: a container workload is refused on a cloud
without a Container service (and nothing is created); with one, apply runs the
containers (Creating → Created → Running), a second apply changes nothing, scale-down
deletes the newest, the verbs map to Zun (logs; console-url and resize refused), and
destroy removes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackfleet.cli.main import app
from stackfleet.core.errors import StackFleetError
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

SPEC = """workloads:
  - name: api
    kind: container
    count: COUNT
    project: alpha-01
    container:
      image: nginx:1.27
      command: [nginx, -g, "daemon off;"]
      env: {MODE: prod}
      cpu: 0.5
      memory: 256
      ports: [80]
    metadata: {team: web}
    timeout: 20s
"""


class Outcome:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


def _cloud(tmp_path, monkeypatch, zun: bool) -> Iterator[tuple[SimulatorServer, Path]]:
    with SimulatorServer(preset("small"), zun=zun) as server:
        server.sim.action_delay = 0.05
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", "sim")
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        monkeypatch.setenv("OS_CLOUD", "sim")
        monkeypatch.delenv("OS_AUTH_URL", raising=False)
        monkeypatch.setenv("STACKFLEET_CONFIG_DIR", str(tmp_path))
        yield server, tmp_path


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    yield from _cloud(tmp_path, monkeypatch, zun=True)


@pytest.fixture
def no_zun(tmp_path, monkeypatch):
    yield from _cloud(tmp_path, monkeypatch, zun=False)


def spec(tmp: Path, count: int) -> Path:
    path = tmp / "api.yaml"
    path.write_text(SPEC.replace("COUNT", str(count)))
    return path


def cli(tmp: Path, *args: str) -> Outcome:
    result = CliRunner().invoke(app, ["--db-url", f"sqlite:///{tmp / 'store.db'}", *args])
    if isinstance(result.exception, StackFleetError):
        return Outcome(result.exception.exit_code, result.output + f"Error: {result.exception}")
    return Outcome(result.exit_code, result.output)


def containers(server: SimulatorServer) -> dict[str, dict]:
    return {
        c["name"]: c
        for c in server.state.regions["RegionOne"].containers.values()
        if c["labels"].get("stackfleet-workload") == "api"
    }


def test_a_cloud_without_zun_refuses_container_workloads(no_zun):
    server, tmp = no_zun
    refused = cli(tmp, "provision", "apply", str(spec(tmp, 1)), "--execute")
    assert refused.exit_code == 2
    assert "no Container service (Zun, catalog type 'container')" in refused.output
    assert not server.state.regions["RegionOne"].containers


def test_apply_runs_containers_and_converges(cloud):
    server, tmp = cloud
    applied = cli(tmp, "provision", "apply", str(spec(tmp, 3)), "--execute", "-f", "json")
    assert applied.exit_code == 0, applied.output
    rows = json.loads(applied.output[applied.output.index("[") :])  # after the stderr note
    assert sorted((r["member"], r["status"]) for r in rows) == [
        ("api-1", "active"), ("api-2", "active"), ("api-3", "active")
    ]  # fmt: skip
    made = containers(server)
    assert all(c["status"] == "Running" for c in made.values())
    first = made["api-1"]
    assert first["image"] == "nginx:1.27" and first["environment"] == {"MODE": "prod"}
    assert first["ports"] == [80] and first["labels"]["team"] == "web"
    again = cli(tmp, "provision", "apply", str(spec(tmp, 3)), "--execute")
    assert again.exit_code == 0 and "nothing to do" in again.output
    down = cli(tmp, "provision", "apply", str(spec(tmp, 2)), "--execute")
    assert down.exit_code == 0, down.output
    assert sorted(containers(server)) == ["api-1", "api-2"]
    destroyed = cli(tmp, "provision", "destroy", str(spec(tmp, 2)), "--execute")
    assert destroyed.exit_code == 0, destroyed.output
    assert not containers(server)


def test_verbs_on_containers(cloud):
    server, tmp = cloud
    assert cli(tmp, "provision", "apply", str(spec(tmp, 2)), "--execute").exit_code == 0
    listed = cli(tmp, "workload", "list", "--project", "alpha-01", "-f", "json")
    assert [(r["workload"], r["backend"], r["active"]) for r in json.loads(listed.output)] == [
        ("api", "zun", 2)
    ]
    stopped = cli(tmp, "workload", "stop", "api", "--project", "alpha-01", "--member", "1",
                  "--execute")  # fmt: skip
    assert stopped.exit_code == 0, stopped.output
    assert containers(server)["api-1"]["status"] == "Stopped"
    started = cli(tmp, "workload", "start", "api", "--project", "alpha-01", "--execute")
    assert started.exit_code == 0, started.output
    assert containers(server)["api-1"]["status"] == "Running"
    rebuilt = cli(tmp, "workload", "rebuild", "api", "--project", "alpha-01", "--image",
                  "nginx:1.28", "--member", "2", "--execute")  # fmt: skip
    assert rebuilt.exit_code == 0, rebuilt.output
    assert containers(server)["api-2"]["image"] == "nginx:1.28"
    logs = cli(tmp, "workload", "logs", "api", "--project", "alpha-01", "--member", "api-1")
    assert logs.exit_code == 0 and "starting nginx:1.27" in logs.output
    console = cli(tmp, "workload", "console-url", "api", "--project", "alpha-01")
    assert console.exit_code == 2
    assert "api is a container workload (Zun): it has no console-url" in console.output
    deleted = cli(tmp, "workload", "delete", "api", "--project", "alpha-01", "--execute")
    assert deleted.exit_code == 0, deleted.output
    assert not containers(server)


def test_a_containers_networks_are_resolved_like_a_vms(cloud):
    server, tmp = cloud
    path = tmp / "api.yaml"
    path.write_text(SPEC.replace("COUNT", "1") + "    networks: [alpha-01-nett]\n")
    refused = cli(tmp, "provision", "plan", str(path))
    assert refused.exit_code == 2 and "closest: alpha-01-net" in refused.output


def _project_id(server: SimulatorServer, name: str) -> str:
    return next(p["id"] for p in server.state.projects.values() if p["name"] == name)


def test_zuns_quota_is_checked_before_any_container_is_made(cloud):
    server, tmp = cloud
    project = _project_id(server, "alpha-01")
    server.state.regions["RegionOne"].quotas.setdefault("container", {})[project] = {
        "containers": 2, "memory": 10_000
    }  # fmt: skip
    refused = cli(tmp, "provision", "apply", str(spec(tmp, 3)), "--execute")
    assert refused.exit_code == 2, refused.output
    assert f"Zun quota containers of project {project}: needs 3, 2 free" in refused.output
    assert not containers(server)


def test_zuns_host_capacity_is_checked_before_any_container_is_made(cloud):
    server, tmp = cloud
    server.sim.zun_host_memory = 300  # one 256 MiB container per host
    hosts = len(
        {s["host"] for s in server.state.regions["RegionOne"].compute_services.values()
         if s.get("binary") == "nova-compute" and s.get("state") == "up"}
    )  # fmt: skip
    refused = cli(tmp, "provision", "apply", str(spec(tmp, hosts + 1)), "--execute")
    assert refused.exit_code == 2, refused.output
    assert f"{hosts} fit on the {hosts} zun-compute hosts" in refused.output
    assert not containers(server)


def test_container_workloads_are_in_the_inventory_and_the_api(cloud):
    from fastapi.testclient import TestClient

    from stackfleet.api.app import create_app
    from stackfleet.store import open_store

    server, tmp = cloud
    assert cli(tmp, "provision", "apply", str(spec(tmp, 2)), "--execute").exit_code == 0
    cli(tmp, "workload", "stop", "api", "--project", "alpha-01", "--member", "2", "--execute")
    collected = cli(tmp, "collect", "--os-cloud", "sim", "--kind", "server", "--kind",
                    "container")  # fmt: skip
    assert collected.exit_code == 0, collected.output
    client = TestClient(create_app(open_store(f"sqlite:///{tmp / 'store.db'}")))
    listed = client.get("/v1/workloads").json()["items"]
    assert [(w["name"], w["backend"], w["member_count"], w["active_count"], w["status"])
            for w in listed] == [("api", "zun", 2, 1, "MIXED")]  # fmt: skip
    one = client.get("/v1/workloads/api").json()
    assert sorted((r["name"], r["status"]) for r in one["relations"]["containers"]) == [
        ("api-1", "Running"),
        ("api-2", "Stopped"),
    ]
    shown = cli(tmp, "workload", "show", "api", "--project", "alpha-01", "-f", "json")
    assert [(m["member"], m["status"], m["size"]) for m in json.loads(shown.output)] == [
        ("api-1", "ACTIVE", "0.5 cpu, 256 MiB"), ("api-2", "SHUTOFF", "0.5 cpu, 256 MiB")
    ]  # fmt: skip
