"""StackFleet's daemon (`stackfleet serve`) running against the real testbed with its
health job and host recovery on: what tests/integration/test_testbed_stackfleet_recovery.py
and `benchmarks/host_failure.py --recovery stackfleet` drive and read back.

Everything is read through the daemon's own API (`/v1/health/hosts`, `/v1/recoveries`,
`/v1/audit`, `/v1/alerts`): the point is that StackFleet, not the test, acts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import yaml
from testbed_fleet import TESTBED_DIR, Testbed, wait_until
from testbed_hosts import heartbeat

REPO = Path(__file__).resolve().parents[1]
# The tag that opts a server in to StackFleet's recovery (health.opt_in.tags): only the
# servers a drill boots carry it, so the shared fleet's servers are never evacuated.
OPT_IN_TAG = "sfit-ha"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def health_settings(testbed: Testbed, interval: str = "2s") -> dict[str, Any]:
    """The settings file's `health:` section for the testbed, as an operator would
    write it: each host's management port probed, the RPC consumers read from the
    testbed's RabbitMQ, the testbed's BMC map, recovery on and executing for the servers
    tagged OPT_IN_TAG, and `testbed/ctl start` as the restart hook."""
    hosts = testbed.info["hosts"]
    mgmt = testbed.info["rabbitmq_management"]
    scheme, _, rest = mgmt["url"].partition("://")
    return {
        "enabled": True,
        "interval": interval,
        "report_interval": f"{heartbeat(testbed)['report_interval']}s",
        "probe": {
            "addresses": {
                name: f"{info['address']}:{info['management_port']}" for name, info in hosts.items()
            },
            "misses": 3,
            "timeout": "1s",
        },
        "rabbitmq": {
            "url": f"{scheme}://{mgmt['username']}:{mgmt['password']}@{rest}",
            "vhost": mgmt["rpc_vhost"],
        },
        "bmc_map": str(testbed.info["bmc_map"]),
        "recovery": True,
        "execute": True,
        "opt_in": {"tags": [OPT_IN_TAG]},
        "restart_hook": [str(TESTBED_DIR / "ctl"), "start", "nova-compute-{host}"],
        "restart_wait": "90s",
        "takeover_after": "60s",
    }


def epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


@dataclass
class Daemon:
    """`stackfleet serve` over the testbed, in its own working directory (store, settings
    file, log, API token). Start it after the servers it must know are booted: its first
    pass records them (with their server groups) before any failure."""

    testbed: Testbed
    workdir: Path
    health: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "serve.log"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> Daemon:
        self.workdir.mkdir(parents=True, exist_ok=True)
        settings = self.workdir / "stackfleet.yaml"
        health = {**health_settings(self.testbed), **self.health}
        settings.write_text(
            yaml.safe_dump({"verify_timeout": "150s", "poll_interval": "0.5s", "health": health}),
            encoding="utf-8",
        )
        self.port = free_port()
        env = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(self.testbed.clouds_yaml),
            "STACKFLEET_DB_URL": f"sqlite:///{self.workdir / 'stackfleet.db'}",
            "STACKFLEET_CONFIG": str(settings),
            "STACKFLEET_TESTBED_HOME": str(self.testbed.home),
            "PYTHONPATH": str(REPO / "src"),
        }
        env.pop("STACKFLEET_INFRA_CONFIG", None)
        # one pass at start (the servers, groups and hypervisors recovery selects from);
        # no further pass during a drill: the health job reads Nova live
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackfleet.cli.main", "serve",
             "--os-cloud", self.testbed.admin_cloud, "--system-cloud", self.testbed.system_cloud,
             "--interval", "3600", "--port", str(self.port), "--infra-config", os.devnull,
             "--no-notifications", "--token-file", str(self.workdir / "api.token")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
            start_new_session=True,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def get(self, path: str, **params: Any) -> Any:
        assert self.proc is not None and self.proc.poll() is None, (
            f"stackfleet serve exited ({self.proc and self.proc.returncode}):\n{self.log_tail()}"
        )
        response = requests.get(f"{self.url}{path}", params=params, timeout=15)
        response.raise_for_status()
        return response.json()

    def _get_or_none(self, path: str, **params: Any) -> Any:
        try:
            return self.get(path, **params)
        except requests.RequestException:
            return None

    def hosts(self) -> dict[str, dict[str, Any]]:
        """Each compute host's newest verdict (`stackfleet health hosts`)."""
        found = self._get_or_none("/v1/health/hosts")
        return {v["subject"]: v for v in (found or {}).get("items", [])}

    def wait_healthy(self, *names: str, timeout: float = 240) -> None:
        """Until the first pass has landed and the health job judges each host healthy."""

        def ready() -> bool:
            jobs = self._get_or_none("/v1/jobs")
            runs = {j["name"]: j for j in (jobs or {}).get("items", [])}
            if runs.get("collect", {}).get("runs", 0) < 1:
                return False
            verdicts = self.hosts()
            return all(verdicts.get(n, {}).get("state") == "healthy" for n in names)

        try:
            wait_until(f"StackFleet judges {', '.join(names)} healthy", ready, timeout, 1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.hosts()}\n{self.log_tail()}") from None

    def recoveries(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.get("/v1/recoveries", limit=100, **params)["items"])

    def recovery(self, recovery_id: int) -> dict[str, Any]:
        return dict(self.get(f"/v1/recoveries/{recovery_id}"))

    def recovery_of(self, host: str, kind: str, after: int = 0) -> dict[str, Any] | None:
        """The newest recovery of `kind` for `host` with an id above `after`, with steps."""
        for found in self.recoveries():
            if found["kind"] == kind and found["subject"] == host and found["id"] > after:
                return self.recovery(found["id"])
        return None

    def newest_recovery_id(self) -> int:
        found = self._get_or_none("/v1/recoveries", limit=1)
        items = (found or {}).get("items") or []
        return int(items[0]["id"]) if items else 0

    def wait_recovery_ended(
        self, host: str, kind: str, after: int, timeout: float
    ) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            found = self.recovery_of(host, kind, after)
            if found and found["status"] not in ("running", "planned", "waiting"):
                return found
            return None

        try:
            return dict(wait_until(f"a {kind} recovery of {host} ends", ended, timeout, 0.5))
        except AssertionError as exc:
            latest = self.recovery_of(host, kind, after)
            raise AssertionError(f"{exc}\n{latest}\n{self.log_tail()}") from None

    def audit(self, limit: int = 500) -> list[dict[str, Any]]:
        return list(self.get("/v1/audit", limit=limit)["items"])

    def firing(self) -> list[dict[str, Any]]:
        return list(self.get("/v1/alerts", status="firing")["items"])


def boot_tagged(
    conn: Any, name: str, host: str, flavor_id: str, network_id: str, **extra: Any
) -> Any:
    """A server on `host` (admin inside its project may choose it), opted in by tag."""
    attrs: dict[str, Any] = {
        "name": name,
        "flavor_id": flavor_id,
        "networks": [{"uuid": network_id}],
        "availability_zone": f"nova:{host}",
        "tags": [OPT_IN_TAG],
        **extra,
    }
    return conn.compute.create_server(**attrs)
