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
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
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
