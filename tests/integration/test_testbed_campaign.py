"""A campaign over both compute hosts of the real testbed (not run by the patching
helper: the testbed was not started for it). The apply step is a local command (a
marker per host in a directory per host); the drain live-migrates the fleet's servers
(one anti-affinity group among them) with Nova's fake virt driver; the gate boots a
canary forced onto each host. Restarting the testbed's nova-compute through its own
process control (`testbed/up --repair` after stopping it) is left to the testbed's
owner: `up` rewrites the configuration files, so a nova.conf change made by a campaign
would not survive it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from testbed_fleet import FLAVOR, collect_testbed

from stackfleet.engine.execute import Connections
from stackfleet.patching.campaign import CampaignRunner
from stackfleet.patching.spec import load_spec
from stackfleet.store import open_store
from stackfleet.store import patching as records

# it drains both hosts: every server of the shared fleet moves (see conftest.py)
pytestmark = [pytest.mark.integration, pytest.mark.moves_fleet]


def test_a_campaign_drains_gates_and_undrains_both_compute_hosts(
    testbed: Any, fleet: Any, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    collect_testbed(store, testbed)
    spec = tmp_path / "campaign.yaml"
    spec.write_text(
        f"""\
campaign:
  name: testbed-maintenance
  cloud: {testbed.admin_cloud}
  connector: {{type: local, root: hosts}}
  services:
    nova-compute: {{config_files: [/etc/nova/nova.conf]}}
  targets:
    hosts: {{names: [cmp1, cmp2]}}
    services: [nova-compute]
  steps:
    drain: {{concurrency: 2, fallback: cold-migrate, timeout: 5m}}
    apply:
      - command: echo patched >> patched.log
    restart: {{enabled: false}}
    gate:
      heartbeat_max_age: 60s
      canary: {{flavor: {FLAVOR["name"]}, image: {testbed.info["image"]}, timeout: 3m}}
  rollout: {{canary_hosts: 1, batch_size: 1}}
  poll_interval: 1s
"""
    )
    runner = CampaignRunner(store, connections=Connections([str(testbed.clouds_yaml)]))
    runner.start(load_spec(spec))
    admin = testbed.connect(testbed.admin_cloud)
    try:
        result = runner.run("testbed-maintenance")
    finally:
        # a halted campaign leaves its failed host drained, by design: enabled again
        # here, so that the testbed stays usable for the other tests
        for service in admin.compute.services(binary="nova-compute"):
            if (service.disabled_reason or "").startswith("stackfleet campaign testbed-"):
                admin.compute.enable_service(service)
    assert result["status"] == "completed", result["error"]
    for host in ("cmp1", "cmp2"):
        assert (tmp_path / "hosts" / host / "patched.log").read_text() == "patched\n"
        [service] = list(admin.compute.services(binary="nova-compute", host=host))
        assert service.status == "enabled"
    steps = records.steps_of(store, result["id"])
    assert {s["status"] for s in steps} == {"done"}
    store.close()
