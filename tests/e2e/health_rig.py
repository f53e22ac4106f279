"""The simulated cloud with its simulated BMCs and per-host management listeners, and
the health monitor + recovery reconciler over it: what the health e2e tests share."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.health import Assessment, HealthMonitor
from stackfleet.engine.recovery import RecoveryReconciler
from stackfleet.engine.settings import Settings
from stackfleet.simulator.generator import preset
from stackfleet.simulator.hosts import HEARTBEAT, ManagementListeners
from stackfleet.simulator.redfish import RedfishSimulator, bmcs_for_cloud
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store

CLOUD = "sim"
REGION = "RegionOne"


@dataclass
class Rig:
    server: SimulatorServer
    bmcs: RedfishSimulator
    listeners: ManagementListeners
    clouds: Path
    bmc_map: Path
    store: Any
    tmp: Path
    store_url: str

    @property
    def region(self) -> Any:
        return self.server.state.regions[REGION]

    def settings_data(self, **health: Any) -> dict[str, Any]:
        """The settings as a settings file holds them (fast heartbeats, 2 probe misses,
        the simulated BMCs, recovery on and executing, every instance opted in)."""
        return {
            "verify_timeout": "20s",
            "poll_interval": "0.1s",
            "health": {
                "interval": "0.5s",
                "report_interval": "1s",
                "probe": {
                    "addresses": self.listeners.addresses(),
                    "misses": 2,
                    "timeout": "0.5s",
                },
                "bmc_map": str(self.bmc_map),
                "recovery": True,
                "execute": True,
                "opt_in": {"all": True},
                "never": {"projects": [], "tags": ["amphora"]},
                **health,
            },
        }

    def settings(self, **health: Any) -> Settings:
        return Settings.model_validate(self.settings_data(**health))

    def settings_file(self, **health: Any) -> Path:
        path = self.tmp / "stackfleet.yaml"
        path.write_text(yaml.safe_dump(self.settings_data(**health)), encoding="utf-8")
        return path

    def cli_env(self, **health: Any) -> dict[str, str]:
        """The environment a `stackfleet` subprocess needs to work on this rig."""
        return {
            **os.environ,
            "STACKFLEET_DB_URL": self.store_url,
            "STACKFLEET_CONFIG": str(self.settings_file(**health)),
            "OS_CLIENT_CONFIG_FILE": str(self.clouds),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        }

    def collect(self) -> None:
        """A collection pass: the inventory learns what the test changed in the cloud."""
        collect(self.store, CLOUD, config_files=[str(self.clouds)])

    def parts(self, settings: Settings) -> tuple[HealthMonitor, RecoveryReconciler]:
        connections = Connections([str(self.clouds)])
        monitor = HealthMonitor(self.store, settings.health, connections, clouds=[CLOUD])
        return monitor, RecoveryReconciler(self.store, settings, connections, monitor)

    def servers_on(self, host: str) -> dict[str, dict[str, Any]]:
        return {
            sid: s
            for sid, s in self.region.servers.items()
            if s.get("OS-EXT-SRV-ATTR:host") == host and s["status"] in ("ACTIVE", "SHUTOFF")
        }

    def healthy_hosts(self) -> list[str]:
        """Compute hosts that are up, enabled and have a quiet BMC, fullest first."""
        hosts = []
        for s in self.region.compute_services.values():
            if s.get("binary") != "nova-compute" or s.get("state") != "up":
                continue
            if s.get("status") != "enabled":
                continue
            bmc = self.bmcs.bmc(s["host"])
            if bmc.failed_psus or bmc.inlet_celsius > 30:
                continue
            hosts.append(s["host"])
        return sorted(hosts, key=lambda h: (-len(self.servers_on(h)), h))


def running_rig(tmp_path: Path) -> Iterator[Rig]:
    """The rig, torn down when the generator is closed (each test module's `rig` fixture)."""
    HEARTBEAT.report_interval = 1.0
    with SimulatorServer(preset("small", now=datetime.now(UTC))) as server:
        state = server.state
        with RedfishSimulator(bmcs_for_cloud(state)) as bmcs:
            hosts = sorted(
                {
                    s["host"]
                    for s in state.regions[REGION].compute_services.values()
                    if s.get("binary") == "nova-compute"
                }
            )
            listeners = ManagementListeners(hosts)
            server.sim.hosts.listeners = listeners
            clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
            bmc_map = bmcs.write_bmc_map(tmp_path / "bmc-map.yaml")
            store_url = f"sqlite:///{tmp_path / 'store.db'}"
            store = open_store(store_url)
            collect(store, CLOUD, config_files=[str(clouds)])
            try:
                yield Rig(server, bmcs, listeners, clouds, bmc_map, store, tmp_path, store_url)
            finally:
                listeners.close_all()
                HEARTBEAT.report_interval = 10.0


def opt_in_two(rig: Rig, victim: str) -> dict[str, dict[str, Any]]:
    """Tag the two smallest servers of `victim` `ha` (and take them out of their server
    groups): the ones the recovery may evacuate when it opts in by that tag."""
    on_host = rig.servers_on(victim)
    chosen = sorted(on_host, key=lambda sid: on_host[sid]["flavor"].get("ram", 0))[:2]
    assert len(chosen) == 2, "the victim host has servers"
    for sid in chosen:
        rig.region.servers[sid]["tags"] = ["ha"]
    for group in rig.region.server_groups.values():
        group["members"] = [m for m in group.get("members") or [] if m not in chosen]
    return {sid: on_host[sid] for sid in chosen}


def detect(monitor: HealthMonitor, host: str, failure: str, within: float = 15.0) -> Assessment:
    deadline = time.monotonic() + within
    while True:
        assessment = monitor.run_once()
        verdict = assessment.host(CLOUD, REGION, host)
        if verdict is not None and verdict.failure == failure:
            return assessment
        if time.monotonic() > deadline:
            raise AssertionError(f"{host} not judged {failure}: {verdict}")
        time.sleep(0.3)


def stackfleet(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the `stackfleet` command as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "stackfleet.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
