"""The shipped Grafana dashboards and Prometheus alert rules, against a real Prometheus
(Debian's, installed by `scripts/bootstrap test`) scraping a running `stackfleet serve`
on the simulated cloud — with simulated Redfish BMCs, the local MariaDB
(127.0.0.1:3306) and RabbitMQ's management API (127.0.0.1:15672, guest/guest) as its
infrastructure targets:

- `promtool check rules` accepts the rules file;
- Prometheus loads the rules and evaluates every one without error, and the alerts the
  simulated fleet deserves (a hypervisor down, a host on one power supply) fire;
- every target of every panel of every dashboard returns series, the dashboard
  variables set to "All" as Grafana sends them (`.*`).

Grafana itself is not installed here (not in the package registries this machine
reaches): the dashboards' JSON is checked for what Grafana needs to import it, and
their queries are what Grafana would send to Prometheus."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import service_missing

from stackfleet.simulator.generator import preset
from stackfleet.simulator.redfish import RedfishSimulator, bmcs_for_cloud
from stackfleet.simulator.server import SimulatorServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

SHIPPED = Path(__file__).parents[2] / "src" / "stackfleet" / "dashboards"
DASHBOARDS = sorted((SHIPPED / "grafana").glob("*.json"))
RULES = SHIPPED / "prometheus" / "stackfleet-alerts.yml"
# what Grafana puts in place of its variables and macros (variables set to All)
MACROS = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}
# families each kind of sweep exports: present once every job ran
WANTED = (
    "stackfleet_capacity_allocated_ratio",
    "stackfleet_bmc_up",
    "stackfleet_database_up",
    "stackfleet_rabbitmq_up",
    "stackfleet_job_runs_total",
    "stackfleet_quota_limit",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL with variables and macros replaced) of every target."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for macro, value in MACROS.items():
                expr = expr.replace(macro, value)
            expr = re.sub(r"\$\{?[a-z_]+\}?", ".*", expr)
            found.append((panel["title"], expr))
    return found


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[str]:
    """A Prometheus scraping `stackfleet serve` every second, with the shipped rules;
    yields its URL once every sweep has been scraped a few times."""
    binary = shutil.which("prometheus")
    if not binary:
        service_missing("the prometheus binary is needed (scripts/bootstrap test)")
    workdir = tmp_path_factory.mktemp("grafana")
    with SimulatorServer(preset("small", now=datetime.now(UTC))) as cloud:
        clouds = cloud.write_clouds_yaml(workdir / "clouds.yaml", "sim")
        bmcs = RedfishSimulator(bmcs_for_cloud(cloud.state))
        bmcs.start()
        bmc_map = bmcs.write_bmc_map(workdir / "bmc-map.yaml")
        infra = workdir / "infrastructure.yaml"
        infra.write_text(
            "databases:\n"
            "  - dsn: mysql://root@127.0.0.1:3306\n"
            "    name: control-db\n"
            "    cloud: sim\n"
            "    region: RegionOne\n"
            "message_queues:\n"
            "  - url: http://guest@127.0.0.1:15672\n"
            "    password_env: SF_TEST_MQ_PASSWORD\n"
            "    cloud: sim\n"
            "    region: RegionOne\n"
        )
        (workdir / "settings.yaml").write_text("{}\n")
        port = _free_port()
        # Prometheus scrapes with the token file serve checks (credentials_file)
        scrape_token = workdir / "scrape.token"
        scrape_token.write_text("grafana-e2e-scrape-token-0123456789\n")
        scrape_token.chmod(0o600)
        env = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_DB_URL": f"sqlite:///{workdir / 'store.db'}",
            "STACKFLEET_CONFIG": str(workdir / "settings.yaml"),
            "STACKFLEET_DATA_DIR": str(workdir),
            "SF_TEST_MQ_PASSWORD": "guest",
        }
        serve = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stackfleet.cli.main",
                "serve",
                "--os-cloud",
                "sim",
                "--port",
                str(port),
                "--interval",
                "10",
                "--bmc-map",
                str(bmc_map),
                "--infra-config",
                str(infra),
                "--pack",
                "waste",
                "--metrics-token-file",
                str(scrape_token),
            ],  # fmt: skip
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "serve.log", "w"),  # noqa: SIM115 - closed with the process
        )
        prom_port = _free_port()
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "stackfleet",
                    "authorization": {"credentials_file": str(scrape_token)},
                    "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        prom = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "prometheus.log", "w"),  # noqa: SIM115
        )
        url = f"http://127.0.0.1:{prom_port}"
        try:

            def every_sweep_exported() -> bool:
                text = httpx.get(
                    f"http://127.0.0.1:{port}/metrics",
                    headers={"Authorization": f"Bearer {scrape_token.read_text().strip()}"},
                    timeout=10,
                ).text
                return all(f"\n{name}{{" in text for name in WANTED)

            _wait(every_sweep_exported, 180, "every sweep's metrics on /metrics")

            def scraped() -> bool:
                result = _query(url, "count_over_time(stackfleet_rabbitmq_up[1m])")
                return bool(result) and float(result[0]["value"][1]) >= 5

            _wait(scraped, 60, "five scrapes of the sweeps")
            yield url
        finally:
            for proc in (prom, serve):
                proc.terminate()
            for proc in (prom, serve):
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            bmcs.stop()


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = answer.json()
    assert body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool")
    if not promtool:
        service_missing("promtool (Debian's prometheus package) is needed")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_json_imports_into_grafana(path):
    """What Grafana needs to import a dashboard: a unique uid and title, panels with
    a unique id, a place on the grid and a Prometheus datasource for each target."""
    board = json.loads(path.read_text())
    assert board["uid"] == path.stem
    assert board["title"].startswith("StackFleet / ")
    assert board["templating"]["list"][0]["type"] == "datasource"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["type"] == "prometheus"


def test_the_five_dashboards_are_shipped():
    assert {p.stem for p in DASHBOARDS} == {
        "stackfleet-fleet-overview",
        "stackfleet-hosts-hardware",
        "stackfleet-capacity",
        "stackfleet-databases-rabbitmq",
        "stackfleet-health",
    }


def _series(url: str, expr: str) -> list[dict[str, Any]]:
    """The query's series; asked again a few times when empty, because one scrape that
    timed out on this shared machine (the /metrics of a store being written) marks
    every series stale until the next one: that is not a panel without data."""
    for _attempt in range(8):
        found = _query(url, expr)
        if found:
            return found
        time.sleep(1)
    return []


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_panel_query_returns_series(prometheus, path):
    board = json.loads(path.read_text())
    empty = [
        f"{title}: {expr}" for title, expr in expressions(board) if not _series(prometheus, expr)
    ]
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_every_dashboard_variable_has_values(prometheus):
    """The variables' label_values queries, asked as Grafana asks them (series API)."""
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["query"]["query"])
            assert match, variable
            selector = re.sub(r'=~"\$\w+"', '=~".*"', match.group(1))
            answer = httpx.get(
                f"{prometheus}/api/v1/label/{match.group(2)}/values",
                params={"match[]": selector},
                timeout=10,
            ).json()
            assert answer["data"], f"{path.stem} variable {variable['name']}: no values"


def test_prometheus_evaluates_every_rule(prometheus):
    def evaluated() -> list[dict[str, Any]]:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return (
            rules if all(rule.get("lastEvaluation", "").startswith("2") for rule in rules) else []
        )

    rules = _wait(evaluated, 30, "every rule evaluated")
    assert len(rules) == len(
        [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    )
    broken = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
    assert not broken


def test_the_simulated_fleets_faults_fire(prometheus):
    """The small fleet has a hypervisor down and a host with a lost power supply."""

    def firing() -> set[str]:
        alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        names = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
        return names if {"HypervisorDown", "PowerSupplyRedundancyLost"} <= names else set()

    names = _wait(firing, 30, "HypervisorDown and PowerSupplyRedundancyLost firing")
    assert "RabbitMQDown" not in names
    assert "DatabaseDown" not in names
