"""The OpenStack simulator in a process of its own, for the benchmarks that measure a
client apart from the cloud it reads: one `stackfleet simulator serve` per cloud, ready
once it has written its clouds.yaml."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def spawn_simulator(
    preset: str, clouds_yaml: Path, cloud_name: str, seed: int | None = None
) -> subprocess.Popen[bytes]:
    """Start a simulator of `preset` on a free port; it writes `clouds_yaml` (cloud
    `cloud_name`) once it serves."""
    command = [
        sys.executable, "-m", "stackfleet.cli.main", "simulator", "serve",
        "--preset", preset, "--port", "0",
        "--clouds-yaml", str(clouds_yaml), "--cloud-name", cloud_name,
    ]  # fmt: skip
    if seed is not None:
        command += ["--seed", str(seed)]
    # its messages go to a file beside the clouds.yaml (a pipe nobody reads could fill
    # and stall it), read back when it fails to start
    with _log_of(clouds_yaml).open("wb") as log:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)


def _log_of(clouds_yaml: Path) -> Path:
    return clouds_yaml.with_suffix(".log")


def wait_until_serving(
    procs: Sequence[subprocess.Popen[bytes]], files: Sequence[Path], timeout: float
) -> None:
    """Wait until every simulator has written its clouds.yaml; stop them all and exit
    (saying why) when one ends first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not all(f.exists() and f.stat().st_size for f in files):
        ended = next((i for i, p in enumerate(procs) if p.poll() is not None), None)
        if ended is not None or time.monotonic() > deadline:
            for proc in procs:
                proc.kill()
            if ended is not None:
                said = _log_of(files[ended]).read_text(errors="replace")[-2000:]
                raise SystemExit(f"a simulator exited: {said}")
            raise SystemExit(f"the simulators did not start within {timeout:g} s")
        time.sleep(0.2)


def start_simulator(
    preset: str, clouds_yaml: Path, cloud_name: str, timeout: float = 300
) -> subprocess.Popen[bytes]:
    """One simulator, started and serving."""
    proc = spawn_simulator(preset, clouds_yaml, cloud_name)
    wait_until_serving([proc], [clouds_yaml], timeout)
    return proc
