"""`openstack fleet ...` with the real `openstack` command (python-openstackclient) and
the same clouds.yaml, against running `stackfleet serve` processes on the simulated
cloud:

- one checks Keystone tokens (`--auth-cloud`, reads authenticated): its URL is
  registered as a `fleet` endpoint in the simulated Keystone with `openstack service
  create` / `endpoint create`, and the plugin finds it in the catalog and sends the
  Keystone token of the clouds.yaml entry;
- one takes a local token (reads authenticated too): the plugin reaches it with
  --fleet-url and --fleet-token.

The plugin's entry points come from the installed package (a fresh clone's
`scripts/bootstrap test` installs it editable); when the package installed in this
environment is another checkout's, the test declares this one's entry points (read
from pyproject.toml) in a `*.dist-info` folder on PYTHONPATH, as an installation
would."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

ROOT = Path(__file__).parents[2]
OPENSTACK = Path(sys.executable).with_name("openstack")
GROUPS = ("openstack.cli.extension", "openstack.fleet.v1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def declared_entry_points() -> dict[str, dict[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {group: project["entry-points"][group] for group in GROUPS}


def entry_points_path(workdir: Path) -> list[str]:
    """PYTHONPATH entries that make this checkout's plugin visible to `openstack`."""
    paths = [str(ROOT / "src")]
    declared = declared_entry_points()
    installed = {
        group: {ep.name: ep.value for ep in metadata.entry_points(group=group)} for group in GROUPS
    }
    if all(installed[g].get(n) == v for g in GROUPS for n, v in declared[g].items()):
        return paths
    info = workdir / "eps" / "stackfleet_osc_plugin-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: stackfleet-osc-plugin\nVersion: 0\n"
    )
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{n} = {v}\n" for n, v in eps.items()) + "\n"
            for group, eps in declared.items()
        )
    )
    return [str(workdir / "eps"), *paths]


def _start_serve(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stackfleet.cli.main", "serve", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),  # noqa: SIM115 - closed with the process
    )


def _wait_for(check, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


class Fleet:
    """The running pieces and a way to call `openstack`."""

    def __init__(self, workdir: Path, clouds: Path, pythonpath: list[str]) -> None:
        self.workdir = workdir
        self.clouds = clouds
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STACKFLEET_"))}
        self.env["OS_CLIENT_CONFIG_FILE"] = str(clouds)
        self.env["PYTHONPATH"] = os.pathsep.join(pythonpath)
        self.keystone_url = ""
        self.local_url = ""
        self.local_token = ""

    def openstack(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(OPENSTACK), "--os-cloud", "sim", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def fleet_json(self, *args: str) -> Any:
        done = self.openstack("fleet", *args, "-f", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("osc")
    with SimulatorServer(preset("small", now=datetime.now(UTC))) as cloud:
        clouds = cloud.write_clouds_yaml(workdir / "clouds.yaml", "sim")
        state = Fleet(workdir, clouds, entry_points_path(workdir))
        base_env = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_CONFIG": str(workdir / "settings.yaml"),
            "STACKFLEET_DATA_DIR": str(workdir),
        }
        (workdir / "settings.yaml").write_text("{}\n")
        keystone_port, local_port = _free_port(), _free_port()
        keystone = _start_serve(
            [
                "--os-cloud",
                "sim",
                "--port",
                str(keystone_port),
                "--interval",
                "600",
                "--auth-cloud",
                "sim",
                "--auth-read",
                "authenticated",
            ],  # fmt: skip
            {**base_env, "STACKFLEET_DB_URL": f"sqlite:///{workdir / 'keystone.db'}"},
            workdir / "serve-keystone.log",
        )
        token_file = workdir / "local-token"
        local = _start_serve(
            [
                "--os-cloud",
                "sim",
                "--port",
                str(local_port),
                "--interval",
                "600",
                "--auth-read",
                "authenticated",
                "--token-file",
                str(token_file),
            ],  # fmt: skip
            {**base_env, "STACKFLEET_DB_URL": f"sqlite:///{workdir / 'local.db'}"},
            workdir / "serve-local.log",
        )
        try:
            state.keystone_url = f"http://127.0.0.1:{keystone_port}"
            state.local_url = f"http://127.0.0.1:{local_port}"
            _wait_for(
                lambda: httpx.get(f"{state.keystone_url}/healthz", timeout=5).status_code == 200,
                "the Keystone-checking API",
            )
            _wait_for(token_file.exists, "the local token file")
            state.local_token = token_file.read_text().strip()
            # the operator registers StackFleet in the catalog, with the real CLI
            made = state.openstack("service", "create", "--name", "stackfleet", "fleet",
                                   "-f", "value", "-c", "id")  # fmt: skip
            assert made.returncode == 0, made.stderr
            service_id = made.stdout.strip()
            endpoint = state.openstack("endpoint", "create", "--region", "RegionOne",
                                       service_id, "public", state.keystone_url)  # fmt: skip
            assert endpoint.returncode == 0, endpoint.stderr

            def first_pass_done() -> bool:
                summary = state.openstack("fleet", "summary", "-f", "json")
                return (
                    summary.returncode == 0 and json.loads(summary.stdout)["hypervisors_total"] > 0
                )

            _wait_for(first_pass_done, "the first pass, seen through openstack fleet summary")
            yield state
        finally:
            for proc in (keystone, local):
                proc.terminate()
            for proc in (keystone, local):
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _api(fleet: Fleet, path: str) -> Any:
    token = fleet.local_token
    return httpx.get(
        f"{fleet.local_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()


def test_summary_from_the_catalog_endpoint_with_the_keystone_token(fleet: Fleet):
    summary = fleet.fleet_json("summary")
    assert summary["hypervisors_total"] == summary["hypervisors_up"] + summary["hypervisors_down"]
    assert summary["hypervisors_down"] >= 1  # the small fleet has a host down
    assert summary["clouds"] == "sim/RegionOne"


def test_hosts_list_every_hypervisor(fleet: Fleet):
    hosts = fleet.fleet_json("host", "list")
    summary = fleet.fleet_json("summary")
    assert len(hosts) == summary["hypervisors_total"]
    down = fleet.fleet_json("host", "list", "--state", "down")
    assert len(down) == summary["hypervisors_down"]
    assert {h["State"] for h in down} == {"down"}


def test_value_format_and_column_selection(fleet: Fleet):
    done = fleet.openstack("fleet", "host", "list", "-f", "value", "-c", "Name", "-c", "State")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows and all(len(row) == 2 and row[1] in ("up", "down") for row in rows)


def test_csv_yaml_and_table_formats(fleet: Fleet):
    done = fleet.openstack("fleet", "server", "list", "--status", "SHUTOFF", "-f", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert rows and {r["Status"] for r in rows} == {"SHUTOFF"}
    done = fleet.openstack("fleet", "capacity", "-f", "yaml")
    assert done.returncode == 0, done.stderr
    [region] = yaml.safe_load(done.stdout)
    assert region["Region"] == "RegionOne"
    assert region["N+1 survives"] in (True, False)
    done = fleet.openstack("fleet", "health")
    assert done.returncode == 0, done.stderr
    assert "| Name" in done.stdout and "collect" in done.stdout


def test_servers_match_the_api(fleet: Fleet):
    servers = fleet.fleet_json("server", "list")
    total = _api(fleet, "/v1/resources?kind=server&limit=1")["total"]
    assert len(servers) == total
    assert {"ID", "Name", "Status", "Host", "Flavor", "Project", "Region"} == set(servers[0])


def test_findings_alerts_waste_compliance_and_leases(fleet: Fleet):
    # no policies run in these daemons: the reports still answer, from the packs
    assert fleet.fleet_json("finding", "list") == []
    assert isinstance(fleet.fleet_json("alert", "list"), list)
    waste = fleet.fleet_json("waste")
    assert {w["Policy"] for w in waste} >= {"shutoff-servers", "unattached-floating-ips"}
    compliance = fleet.fleet_json("compliance")
    assert compliance and {c["Status"] for c in compliance} <= {"pass", "fail", "incomplete"}
    assert fleet.fleet_json("lease", "list") == []


def test_fleet_url_and_local_token(fleet: Fleet):
    summary = fleet.fleet_json(
        "summary", "--fleet-url", fleet.local_url, "--fleet-token", fleet.local_token
    )
    assert summary["hypervisors_total"] >= 0
    health = fleet.fleet_json(
        "health", "--fleet-url", fleet.local_url, "--fleet-token", fleet.local_token
    )
    assert health[0] == {
        "Name": "store",
        "Status": "ok",
        "Runs": None,
        "Failures": None,
        "Last success": None,
        "Last error": None,
    }


def test_a_wrong_token_is_a_readable_error(fleet: Fleet):
    done = fleet.openstack(
        "fleet", "summary", "--fleet-url", fleet.local_url, "--fleet-token", "wrong"
    )
    assert done.returncode == 1
    assert "StackFleet API answered 401 to GET /v1/summary" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_api_is_named(fleet: Fleet):
    done = fleet.openstack("fleet", "summary", "--fleet-url", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert "cannot reach the StackFleet API at http://127.0.0.1:9" in done.stderr
