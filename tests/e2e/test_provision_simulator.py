"""`stackfleet provision` against the simulated cloud: plan, apply, an apply that changes
nothing, scaling, replacing a member in ERROR, anti-affinity, destroy, a hand-made
server left alone, and refusals (bad names, quota) that create nothing."""

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
from stackfleet.store import open_store
from stackfleet.store.audit import AuditLog

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

SPEC = """workloads:
  - name: web
    count: COUNT
    project: alpha-01
    image: IMAGE
    size: {vcpus: 1, ram: 1024, disk: 1}
    networks: [alpha-01-net]
    key_pair: admin-key
    placement: {server_group: anti-affinity}
    metadata: {app: web}
    owner: ops@example.org
    timeout: 20s
"""


@pytest.fixture
def cloud(tmp_path, monkeypatch) -> Iterator[tuple[SimulatorServer, Path]]:
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", "sim")
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        monkeypatch.setenv("OS_CLOUD", "sim")
        monkeypatch.delenv("OS_AUTH_URL", raising=False)
        yield server, tmp_path


def region(server: SimulatorServer):
    return server.state.regions["RegionOne"]


def image_name(server: SimulatorServer) -> str:
    return next(
        i["name"]
        for i in region(server).images.values()
        if i["status"] == "active" and i.get("visibility") == "public"
    )


def write_spec(server: SimulatorServer, tmp: Path, count: int, text: str = SPEC) -> Path:
    path = tmp / "web.yaml"
    path.write_text(text.replace("COUNT", str(count)).replace("IMAGE", image_name(server)))
    return path


class Outcome:
    """What a user sees: the exit code and the output, an error printed as `run()`
    prints it (the CLI's entry point turns a StackFleetError into its exit code)."""

    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


def cli(tmp: Path, *args: str) -> Outcome:
    result = CliRunner().invoke(app, ["--db-url", f"sqlite:///{tmp / 'store.db'}", *args])
    if isinstance(result.exception, StackFleetError):
        error = result.exception
        return Outcome(error.exit_code, result.output + f"Error: {error}")
    return Outcome(result.exit_code, result.output)


def members(server: SimulatorServer) -> dict[str, dict]:
    return {
        s["name"]: s
        for s in region(server).servers.values()
        if s.get("metadata", {}).get("stackfleet-workload") == "web"
    }


def test_plan_apply_reapply_scale_and_destroy(cloud):
    server, tmp = cloud
    spec = write_spec(server, tmp, 3)

    planned = cli(tmp, "provision", "plan", str(spec), "-f", "json")
    assert planned.exit_code == 0, planned.output
    rows = json.loads(planned.output)
    assert [(r["change"], r["member"]) for r in rows] == [
        ("create", "server group stackfleet-web"),
        ("create", "web-1"),
        ("create", "web-2"),
        ("create", "web-3"),
    ]
    assert rows[1]["flavor"] == "m1.small (best fit)"
    assert not members(server), "plan created nothing"

    dry = cli(tmp, "provision", "apply", str(spec))
    assert dry.exit_code == 0, dry.output
    assert "dry-run" in dry.output and not members(server)

    applied = cli(tmp, "provision", "apply", str(spec), "--execute")
    assert applied.exit_code == 0, applied.output
    built = members(server)
    assert sorted(built) == ["web-1", "web-2", "web-3"]
    assert all(s["status"] == "ACTIVE" for s in built.values())
    # anti-affinity: three hosts
    assert len({s["OS-EXT-SRV-ATTR:host"] for s in built.values()}) == 3
    assert all(s["metadata"]["owner"] == "ops@example.org" for s in built.values())

    again = cli(tmp, "provision", "apply", str(spec), "--execute")
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output
    assert members(server).keys() == built.keys()

    scaled_up = cli(tmp, "provision", "apply", str(write_spec(server, tmp, 4)), "--execute")
    assert scaled_up.exit_code == 0, scaled_up.output
    assert sorted(members(server)) == ["web-1", "web-2", "web-3", "web-4"]

    scaled_down = cli(tmp, "provision", "apply", str(write_spec(server, tmp, 2)), "--execute")
    assert scaled_down.exit_code == 0, scaled_down.output
    assert sorted(members(server)) == ["web-1", "web-2"], "the newest went first"

    status = cli(tmp, "provision", "status", str(spec), "-f", "json")
    assert {r["member"]: r["status"] for r in json.loads(status.output)} == {
        "web-1": "ACTIVE",
        "web-2": "ACTIVE",
    }

    destroyed = cli(tmp, "provision", "destroy", str(spec), "--execute")
    assert destroyed.exit_code == 0, destroyed.output
    assert not members(server)
    assert not [g for g in region(server).server_groups.values() if g["name"] == "stackfleet-web"]

    entries, _total = AuditLog(open_store(f"sqlite:///{tmp / 'store.db'}")).list(limit=1000)
    events = [e["event"] for e in entries]
    assert events.count("action.started") == 3 + 1 + 2 + 2 and "provision.member_active" in events


def test_a_member_in_error_is_replaced_with_nova_fault_shown_first(cloud):
    server, tmp = cloud
    spec = write_spec(server, tmp, 2)
    assert cli(tmp, "provision", "apply", str(spec), "--execute").exit_code == 0
    broken = members(server)["web-2"]
    broken.update({"status": "ERROR", "OS-EXT-STS:vm_state": "error"})
    broken["fault"] = {
        "code": 500,
        "message": "Build of instance aborted: disk full",
        "created": "x",
    }

    status = cli(tmp, "provision", "status", str(spec), "-f", "json")
    faults = {r["member"]: r["fault"] for r in json.loads(status.output)}
    assert faults["web-2"] == "Build of instance aborted: disk full"

    planned = cli(tmp, "provision", "plan", str(spec), "-f", "json")
    assert [
        (r["change"], r["member"]) for r in json.loads(planned.output) if r["change"] != "keep"
    ] == [("replace", "web-2")]
    applied = cli(tmp, "provision", "apply", str(spec), "--execute")
    assert applied.exit_code == 0, applied.output
    now = members(server)
    assert now["web-2"]["status"] == "ACTIVE" and now["web-2"]["id"] != broken["id"]
    assert broken["id"] not in region(server).servers


def test_a_hand_made_server_with_a_members_name_is_never_touched(cloud):
    server, tmp = cloud
    spec = write_spec(server, tmp, 1)
    assert cli(tmp, "provision", "apply", str(spec), "--execute").exit_code == 0
    member = members(server)["web-1"]
    # a server made elsewhere, named like a member and even carrying the tag
    by_hand = {
        **member,
        "id": "hand-made-0000-0000-0000-000000000001",
        "metadata": {"app": "web"},
        "tags": ["stackfleet-workload:web"],
    }
    region(server).servers[by_hand["id"]] = by_hand

    assert cli(tmp, "provision", "destroy", str(spec), "--execute").exit_code == 0
    assert by_hand["id"] in region(server).servers
    assert member["id"] not in region(server).servers


def test_an_excluded_member_is_not_deleted(cloud):
    server, tmp = cloud
    spec = write_spec(server, tmp, 1)
    assert cli(tmp, "provision", "apply", str(spec), "--execute").exit_code == 0
    member = members(server)["web-1"]
    member["metadata"]["stackfleet-exclude"] = "kept for forensics"

    result = cli(tmp, "provision", "destroy", str(spec), "--execute", "-f", "json")
    assert result.exit_code == 0, result.output
    assert member["id"] in region(server).servers
    assert json.loads(result.output)[0]["status"] == "excluded"


def test_bad_names_exit_2_naming_the_closest_choices_and_create_nothing(cloud):
    server, tmp = cloud
    spec = write_spec(
        server,
        tmp,
        2,
        SPEC.replace("alpha-01-net", "alpha-01-nett").replace("admin-key", "admin-kye"),
    )
    result = cli(tmp, "provision", "apply", str(spec), "--execute")
    assert result.exit_code == 2, result.output
    assert "no network 'alpha-01-nett'; closest: alpha-01-net" in result.output
    assert "no key pair 'admin-kye'; closest: admin-key" in result.output
    assert not members(server)


def test_a_quota_too_small_exits_2_naming_what_is_short(cloud):
    server, tmp = cloud
    project = next(p for p in server.state.projects.values() if p["name"] == "alpha-01")
    used = sum(
        s["flavor"]["ram"]
        for s in region(server).servers.values()
        if s["tenant_id"] == project["id"]
    )
    # room for two m1.small (2048 MiB) members, three asked for
    region(server).quotas.setdefault("compute", {})[project["id"]] = {"ram": used + 4096}
    spec = write_spec(server, tmp, 3)
    result = cli(tmp, "provision", "apply", str(spec), "--execute")
    assert result.exit_code == 2, result.output
    assert f"quota ram_mb of project {project['id']}: needs 6144, 4096 free" in result.output
    assert not members(server)


def test_more_anti_affinity_members_than_hosts_is_refused_before_creating(cloud):
    server, tmp = cloud
    spec = write_spec(server, tmp, 50)
    result = cli(tmp, "provision", "apply", str(spec), "--execute")
    assert result.exit_code == 2, result.output
    assert "anti-affinity needs 50 more hosts" in result.output
    assert not members(server)
