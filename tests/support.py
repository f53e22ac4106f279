"""Helpers shared by the test suites (not fixtures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    """Run the real `stackfleet` command in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "stackfleet.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


REQUIRED_ENV = "STACKFLEET_TESTBED_REQUIRED"


def service_missing(reason: str) -> NoReturn:
    """A service a test needs (MariaDB, RabbitMQ, a binary) is not there: the test
    fails when STACKFLEET_TESTBED_REQUIRED=1 (a run that promised every service), and
    is skipped with the reason and the way to get it otherwise."""
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"{REQUIRED_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(
        f"{reason} (scripts/bootstrap test sets it up; {REQUIRED_ENV}=1 makes this a failure)"
    )


def redis_or_skip() -> None:
    """The local Redis (127.0.0.1:6379) the scale-out tests coordinate through."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        service_missing(f"Redis is not reachable on 127.0.0.1:6379 ({exc})")


OPENSTACK_CLI = Path(sys.executable).with_name("openstack")


def run_openstack(server: Any, tmp_path: Path, *args: str) -> list[list[str]]:
    """`openstack <args> -f value` against a running SimulatorServer, as rows of columns."""
    clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml")
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD="stackfleet-sim")
    result = subprocess.run(
        [str(OPENSTACK_CLI), *args, "-f", "value"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.splitlines() if line.strip()]
