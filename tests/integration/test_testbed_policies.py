"""The policy packs and a small custom policy on the real testbed, through the CLI.

The waste and security packs find an unattached floating IP and a security group rule
opening SSH to the world that the test made through openstacksdk. A policy releasing
that floating IP and stopping one of the fleet's servers, run with `--execute`, really
does both on the real Neutron and Nova (checked through openstacksdk), with audit
entries before and after and a clean hash chain; running it again changes nothing.

The server is started again and everything the module made is deleted afterwards, so
the session's other tests still see the fleet as built. This module's name sorts after
test_testbed_host_failure: it stops the server on cmp1, the host that test leaves alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest
from support import CliResult, run_cli
from testbed_fleet import PREFIX, Fleet, Testbed, collect_testbed

from stackfleet.engine.execute import Connections
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy import load_files
from stackfleet.store import open_store
from stackfleet.store.audit import AuditLog

pytestmark = pytest.mark.integration

SECURITY_GROUP = f"{PREFIX}pol-ssh-open"
FIP_DESCRIPTION = f"{PREFIX}fip-release"


@dataclass(frozen=True)
class World:
    """What this module made on the testbed, and how to run the CLI against it."""

    fleet: Fleet
    floating_ip_id: str
    security_group_id: str
    ssh_rule_id: str
    server_id: str
    env: dict[str, str]
    workdir: Path

    def cli(self, *args: str) -> CliResult:
        return run_cli(*args, env=self.env, timeout=300)


def _sweep(admin: Any) -> None:
    """Delete what an earlier (crashed) run of this module left behind."""
    net = admin.network
    for group in net.security_groups(name=SECURITY_GROUP):
        with contextlib.suppress(openstack.exceptions.NotFoundException):
            net.delete_security_group(group)
    for ip in net.ips():
        if ip.description == FIP_DESCRIPTION:
            net.delete_ip(ip, ignore_missing=True)


def _server_active_again(admin: Any, server_id: str) -> None:
    compute = admin.compute
    server = compute.get_server(server_id)
    if server.status == "SHUTOFF":
        compute.start_server(server)
    compute.wait_for_server(server, status="ACTIVE", wait=120)


@pytest.fixture(scope="module")
def admin(testbed: Testbed) -> Any:
    return testbed.connect(testbed.admin_cloud)


@pytest.fixture(scope="module")
def world(
    testbed: Testbed, fleet: Fleet, admin: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """An open-SSH rule and a free floating IP in the tenant project, and one complete
    StackFleet pass over the testbed (CLI, own store)."""
    member = testbed.connect(testbed.member_cloud)
    _sweep(admin)
    server_id = fleet.fip_server_id
    try:
        group = member.network.create_security_group(
            name=SECURITY_GROUP, description="SSH from anywhere (StackFleet test)"
        )
        rule = member.network.create_security_group_rule(
            security_group_id=group.id,
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
            remote_ip_prefix="0.0.0.0/0",
        )
        fip = member.network.create_ip(
            floating_network_id=fleet.external_network_id, description=FIP_DESCRIPTION
        )
        workdir = Path(tmp_path_factory.mktemp("policies"))
        # the global safety defaults; check for the change every second, not every two
        (workdir / "settings.yaml").write_text("poll_interval: 1s\n")
        env = {
            "STACKFLEET_DB_URL": f"sqlite:///{workdir / 'store.db'}",
            "OS_CLIENT_CONFIG_FILE": str(testbed.clouds_yaml),
            "STACKFLEET_CONFIG": str(workdir / "settings.yaml"),
        }
        built = World(fleet, fip.id, group.id, rule.id, server_id, env, workdir)
        collected = built.cli(
            "collect", "--os-cloud", testbed.admin_cloud, "--system-cloud", testbed.system_cloud
        )
        assert collected.code == 0, collected.stdout + collected.stderr
        yield built
    finally:
        _sweep(admin)
        _server_active_again(admin, server_id)


def _matches(report: dict[str, Any], policy: str) -> set[str]:
    [found] = [p for p in report["policies"] if p["policy"] == policy]
    return {m["id"] for m in found["matches"]}


def test_waste_and_security_packs_find_the_free_floating_ip_and_the_open_ssh_rule(
    world: World,
) -> None:
    # the waste pack wants a floating IP unattached for 7 days: evaluate 8 days on
    later = (datetime.now(UTC) + timedelta(days=8)).isoformat()
    result = world.cli(
        "policy", "run", "--pack", "waste", "--pack", "security",
        "--now", later, "--no-findings", "-f", "json",
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    report = result.json()
    assert report["execute"] is False
    unattached = _matches(report, "unattached-floating-ips")
    assert {world.floating_ip_id, world.fleet.fip_free_id} <= unattached
    assert world.fleet.fip_attached_id not in unattached
    assert world.ssh_rule_id in _matches(report, "ssh-open-to-world")


def _policy_file(world: World) -> Path:
    path = world.workdir / "release-and-stop.yaml"
    path.write_text(
        f"""policies:
  - name: release-the-free-ip
    resource: floating_ip
    filters: [{{id: {world.floating_ip_id}}}, {{type: relation, relation: port, absent: true}}]
    actions: [release]
    safety: {{max_percent: 100}}
  - name: stop-the-server
    resource: server
    filters: [{{id: {world.server_id}}}, {{status: ACTIVE}}]
    actions: [stop]
    safety: {{max_percent: 100}}
"""
    )
    return path


def _floating_ip_exists(admin: Any, fip_id: str) -> bool:
    try:
        admin.network.get_ip(fip_id)
    except openstack.exceptions.NotFoundException:
        return False
    return True


def _verdicts(report: dict[str, Any]) -> dict[str, list[str]]:
    return {p["policy"]: [a["verdict"] for a in p["planned"]] for p in report["policies"]}


def test_execute_releases_the_ip_and_stops_the_server_on_the_real_cloud(
    world: World, admin: Any, testbed: Testbed
) -> None:
    policy = str(_policy_file(world))

    dry = world.cli("policy", "run", policy)
    assert dry.code == 0, dry.stdout + dry.stderr
    assert "dry-run" in dry.stdout and "+status: SHUTOFF" in dry.stdout
    assert _floating_ip_exists(admin, world.floating_ip_id)
    assert admin.compute.get_server(world.server_id).status == "ACTIVE"

    done = world.cli("policy", "run", policy, "--execute", "-f", "json")
    assert done.code == 0, done.stdout + done.stderr
    assert _verdicts(done.json()) == {
        "release-the-free-ip": ["succeeded"],
        "stop-the-server": ["succeeded"],
    }
    assert not _floating_ip_exists(admin, world.floating_ip_id)
    assert admin.compute.get_server(world.server_id).status == "SHUTOFF"

    audit = world.cli("audit", "list", "--limit", "1000", "-f", "json")
    assert audit.code == 0, audit.stderr
    entries = {(e["event"], e["target"].rsplit("/", 1)[1]): e for e in audit.json()}
    assert len(entries) == len(audit.json()) == 4
    fip_before = entries[("action.started", world.floating_ip_id)]["details"]["before"]
    fip_after = entries[("action.completed", world.floating_ip_id)]["details"]
    assert fip_before["port_id"] is None
    assert fip_after["verified"] is True and fip_after["after"] == {"gone": True}
    server_before = entries[("action.started", world.server_id)]["details"]["before"]
    server_after = entries[("action.completed", world.server_id)]["details"]
    assert server_before["status"] == "ACTIVE"
    assert server_after["verified"] is True and server_after["after"]["status"] == "SHUTOFF"
    verify = world.cli("audit", "verify")
    assert verify.code == 0, verify.stdout + verify.stderr

    # again, before the next pass: nothing repeats. The verified release marked the IP
    # gone in the store at once (nothing left to match); the stopped server still shows
    # ACTIVE there, and its stop is already done
    again = world.cli("policy", "run", policy, "--execute", "-f", "json")
    assert again.code == 0, again.stdout + again.stderr
    assert _verdicts(again.json()) == {
        "release-the-free-ip": [],
        "stop-the-server": ["done"],
    }
    # and after the next pass (in-process, to keep the suite quick): nothing matches
    store = open_store(world.env["STACKFLEET_DB_URL"])
    try:
        result = collect_testbed(store, testbed, ["floating_ip", "port", "server"])
        assert result.status == "complete", result.error
        after_pass = PolicyRunner(store, Settings(), Connections([str(testbed.clouds_yaml)])).run(
            load_files([policy]), execute=True
        )
        assert all(not p.matched and not p.candidates for p in after_pass.policies)
        assert AuditLog(store).list(limit=1000)[1] == 4
    finally:
        store.close()
    assert admin.compute.get_server(world.server_id).status == "SHUTOFF"
