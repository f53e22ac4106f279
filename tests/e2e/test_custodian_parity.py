"""Cloud Custodian policies run unchanged: the same c7n-openstack policy file goes
through the real `custodian run` (c7n 0.9 and c7n-openstack in their own virtual
environment, with the openstacksdk 0.52 they pin) and through `stackfleet collect` +
`stackfleet policy run`, against the same simulated cloud; both must match the same
resources.

c7n lists servers and volumes of the project its credentials are scoped to only (it
never asks for all projects), so for those kinds StackFleet's matches are compared
within that project; flavors, images, projects, security groups and users are listed
cloud-wide by both.

The c7n environment: $STACKFLEET_C7N_PYTHON, else ~/.cache/stackfleet-c7n/venv (made by
`scripts/bootstrap test`, or here with pip when missing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from support import run_cli

from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

POLICIES = Path(__file__).parent / "custodian" / "openstack-policies.yaml"
CACHE = Path.home() / ".cache" / "stackfleet-c7n"
# kinds c7n lists in its own project only
PROJECT_SCOPED = ("openstack.server", "openstack.volume")
NOW = datetime.now(UTC).replace(microsecond=0)


def custodian_python() -> Path:
    """The python of an environment with c7n and c7n-openstack (made when missing)."""
    given = os.environ.get("STACKFLEET_C7N_PYTHON")
    if given:
        return Path(given)
    python = CACHE / "venv" / "bin" / "python"
    if not (CACHE / "venv" / "bin" / "custodian").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(CACHE / "venv")], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "c7n", "c7n-openstack"],
            check=True,
            timeout=900,
        )
    return python


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory):
    """(c7n's matches, StackFleet's matches, the project c7n is scoped to)."""
    python = custodian_python()
    workdir = tmp_path_factory.mktemp("c7n")
    with SimulatorServer(preset("small", now=NOW)) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", "sim")
        env = {
            "STACKFLEET_DB_URL": f"sqlite:///{workdir / 'store.db'}",
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_CONFIG": str(workdir / "none.yaml"),
        }
        (workdir / "none.yaml").write_text("{}\n")
        collected = run_cli("collect", "--os-cloud", "sim", env=env)
        assert collected.code == 0, collected.stderr
        ours = run_cli("policy", "run", str(POLICIES), "-f", "json", env=env)
        assert ours.code == 0, ours.stderr
        servers = run_cli("servers", "list", "-f", "json", env=env).json()
        projects = run_cli("resources", "list", "project", "-f", "json", env=env).json()
        # c7n as the admin scoped to the project with the most servers
        busiest, _ = Counter(s["project_id"] for s in servers).most_common(1)[0]
        project_name = next(p["name"] for p in projects if p["id"] == busiest)
        config = yaml.safe_load(clouds.read_text())
        config["clouds"]["sim"]["auth"]["project_name"] = project_name
        scoped = workdir / "clouds-c7n.yaml"
        scoped.write_text(yaml.safe_dump(config))
        out = workdir / "c7n-out"
        custodian = python.parent / "custodian"
        ran = subprocess.run(
            [str(custodian), "run", "-s", str(out), "--cache-period", "0", str(POLICIES)],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "OS_CLIENT_CONFIG_FILE": str(scoped), "OS_CLOUD": "sim"},
        )
        assert ran.returncode == 0, ran.stderr[-3000:]
    theirs = {}
    for policy in yaml.safe_load(POLICIES.read_text())["policies"]:
        found = json.loads((out / policy["name"] / "resources.json").read_text())
        theirs[policy["name"]] = sorted(r["id"] for r in found)
    resources = {p["name"]: p["resource"] for p in yaml.safe_load(POLICIES.read_text())["policies"]}
    mine = {}
    for policy in ours.json()["policies"]:
        matches = policy["matches"]
        if resources[policy["policy"]] in PROJECT_SCOPED:
            matches = [m for m in matches if m["project_id"] == busiest]
        mine[policy["policy"]] = sorted(m["id"] for m in matches)
    return theirs, mine


def names() -> list[str]:
    return [p["name"] for p in yaml.safe_load(POLICIES.read_text())["policies"]]


@pytest.mark.parametrize("policy", names())
def test_stackfleet_matches_what_custodian_matches(both_runs, policy):
    theirs, mine = both_runs
    assert mine[policy] == theirs[policy]


def test_the_policies_match_something(both_runs):
    """A comparison of empty results proves nothing: every policy matches resources."""
    theirs, _ = both_runs
    assert all(theirs.values()), [name for name, ids in theirs.items() if not ids]
