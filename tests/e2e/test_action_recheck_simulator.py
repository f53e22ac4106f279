"""Destructive actions against the simulated cloud re-check the live server just before
acting: one started again, or tagged for exclusion, after the pass is not deleted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy import load_text
from stackfleet.simulator.faults import FaultRule
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack.connection import connect
from stackfleet.store import action_records, open_store
from stackfleet.store.audit import AuditLog

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
NOW = datetime.now(UTC)

DELETE_LONG_SHUTOFF = """
policies:
  - name: reap
    resource: server
    filters:
      - status: SHUTOFF
      - {type: value, key: id, op: in, value: [IDS]}
    actions: [delete]
    safety: {max_percent: 100}
"""


def test_a_server_started_or_excluded_after_the_pass_is_not_deleted(tmp_path):
    with SimulatorServer(preset("small", now=NOW)) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        collect(store, CLOUD, config_files=[str(clouds)])
        region = server.state.regions["RegionOne"]
        shutoff = sorted(sid for sid, s in region.servers.items() if s["status"] == "SHUTOFF")
        started, excluded, plain = shutoff[:3]
        # after the pass: one is started again, one tagged for exclusion
        region.servers[started].update(
            {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1}
        )
        region.servers[excluded]["tags"] = ["stackfleet-exclude"]
        policy = load_text(
            DELETE_LONG_SHUTOFF.replace("IDS", ", ".join((started, excluded, plain)))
        )
        settings = Settings.model_validate({"verify_timeout": "20s", "poll_interval": "0.2s"})

        report = PolicyRunner(store, settings, Connections([str(clouds)])).run(policy, execute=True)

        verdicts = {c.record["id"]: (c.verdict, c.reason) for c in report.policies[0].candidates}
        assert verdicts[started][0] == "skipped"
        assert "status is now 'ACTIVE'" in verdicts[started][1]
        assert verdicts[excluded][0] == "skipped"
        assert "excluded by tag 'stackfleet-exclude'" in verdicts[excluded][1]
        assert verdicts[plain][0] == "succeeded"
        assert started in region.servers and excluded in region.servers
        assert plain not in region.servers
        rows = {r["resource_id"]: r for r in action_records.list_actions(store)[0]}
        assert rows[started]["plan"]["expects"]["status"] == "SHUTOFF"
        skipped = [e for e in AuditLog(store).list()[0] if e["event"] == "action.skipped"]
        assert len(skipped) == 2
        store.close()


RELEASE_FREE_IPS = """
policies:
  - name: release-free
    resource: floating_ip
    filters:
      - port_id: empty
      - {type: value, key: id, op: in, value: [IDS]}
    actions: [release]
    safety: {max_percent: 100}
"""


def test_a_stale_re_read_does_not_release_a_floating_ip_associated_since_the_pass(tmp_path):
    """The floating IP is associated after the pass; the re-read before acting is
    answered from a lagging cache (the answer from before the association, which
    agrees with the pass). Neutron itself refuses the release: it carries the re-read's
    revision as If-Match, and the association moved the revision on."""
    with SimulatorServer(preset("small", now=NOW)) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        server.sim.faults.keep_answers = True
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        collect(store, CLOUD, config_files=[str(clouds)], kinds=["floating_ip", "port"])
        region = server.state.regions["RegionOne"]
        fip = sorted(i for i, f in region.floatingips.items() if not f["port_id"])[0]
        conn = connect(CLOUD, config_files=[str(clouds)])[0].conn
        conn.network.get_ip(fip)  # the answer the cache will keep serving
        port = next(p for p, v in region.ports.items() if v["device_owner"].startswith("compute:"))
        conn.network.update_ip(fip, port_id=port)  # a user associates it after the pass
        server.sim.faults.add(
            FaultRule(method="GET", path=rf"/floatingips/{fip}$", stale=True, stale_by=1)
        )
        policy = load_text(RELEASE_FREE_IPS.replace("IDS", fip))
        settings = Settings.model_validate({"verify_timeout": "5s", "poll_interval": "0.2s"})

        report = PolicyRunner(store, settings, Connections([str(clouds)])).run(policy, execute=True)

        [candidate] = report.policies[0].candidates
        assert candidate.verdict == "skipped", candidate.reason
        assert "changed since it was read" in candidate.reason
        assert region.floatingips[fip]["port_id"] == port  # still there, still associated
        conn.close()
        store.close()


def test_a_re_read_older_than_the_pass_is_not_acted_on(tmp_path):
    """Nova has no conditional delete; what reading can tell is an answer older than
    the pass (its `updated` before the pass's): such a re-read is not believed."""
    with SimulatorServer(preset("small", now=NOW)) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        server.sim.faults.keep_answers = True
        region = server.state.regions["RegionOne"]
        target = sorted(sid for sid, s in region.servers.items() if s["status"] == "SHUTOFF")[0]
        conn = connect(CLOUD, config_files=[str(clouds)])[0].conn
        conn.compute.get_server(target)  # kept by the lagging cache
        # the server changes (still SHUTOFF); the pass sees the newer version
        region.servers[target]["updated"] = "2099-01-01T00:00:00Z"
        region.servers[target]["metadata"] = {"owner-note": "keep me"}
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        collect(store, CLOUD, config_files=[str(clouds)], kinds=["server"])
        server.sim.faults.add(
            FaultRule(method="GET", path=rf"/servers/{target}$", stale=True, stale_by=1)
        )
        policy = load_text(DELETE_LONG_SHUTOFF.replace("IDS", target))
        settings = Settings.model_validate({"verify_timeout": "5s", "poll_interval": "0.2s"})

        report = PolicyRunner(store, settings, Connections([str(clouds)])).run(policy, execute=True)

        [candidate] = report.policies[0].candidates
        assert candidate.verdict == "skipped", candidate.reason
        assert "older than the pass" in candidate.reason
        assert target in region.servers
        conn.close()
        store.close()


STOP_ONE = """
policies:
  - name: stop-one
    resource: server
    filters:
      - status: ACTIVE
      - {type: value, key: id, op: in, value: [IDS]}
    actions: [stop]
    safety: {max_percent: 100}
"""


def test_a_stop_nova_fails_ends_the_wait_as_failed_not_unverified(tmp_path):
    """The hypervisor refuses the stop: Nova clears the task state and the server stays
    ACTIVE. The action is failed at once, saying so, rather than waiting out its
    verification timeout and ending `unverified`."""
    with SimulatorServer(preset("small", now=NOW)) as server:
        server.sim.action_delay = 0.3  # the stop shows its task state for a moment
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        collect(store, CLOUD, config_files=[str(clouds)])
        region = server.state.regions["RegionOne"]
        target = sorted(sid for sid, s in region.servers.items() if s["status"] == "ACTIVE")[0]
        server.sim.hosts.break_server("RegionOne", target, "power", "rebuild", 0)
        # a timeout far longer than the test may take: only an early end passes
        settings = Settings.model_validate({"verify_timeout": "300s", "poll_interval": "0.1s"})

        report = PolicyRunner(store, settings, Connections([str(clouds)])).run(
            load_text(STOP_ONE.replace("IDS", target)), execute=True
        )

        [candidate] = report.policies[0].candidates
        assert candidate.verdict == "failed", candidate.reason
        assert "failed in Nova" in candidate.reason
        assert "status still 'ACTIVE'" in candidate.reason
        assert region.servers[target]["status"] == "ACTIVE"
        store.close()
