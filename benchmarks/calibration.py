"""A fixed pure-Python workload every benchmark prints beside its figures, so figures
from two machines can be compared: on a machine where this takes twice as long, expect
CPU-bound figures about twice as high.

Also the decoding floor of a pass: the CPU time to decode, as JSON and nothing more,
the very response bodies a pass received. A pass cannot cost less than that; its
targets are stated as multiples of it (docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# the yardstick: "a plain 10-million-step Python loop"
STEPS = 10_000_000


def calibrate(repeat: int = 3) -> float:
    """Seconds (best of `repeat`) of a 10-million-step pure-Python loop."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        total = 0
        for i in range(STEPS):
            total += i
        best = min(best, time.process_time() - start)
    return best


def calibration_line() -> str:
    return (
        f"calibration: a {STEPS:,}-step Python loop takes {calibrate():.2f} s CPU here "
        "(compare figures between machines by this ratio)"
    )


@contextmanager
def captured_bodies() -> Iterator[list[bytes]]:
    """The bodies of every successful GET answered through `requests` in the block
    (what openstacksdk/keystoneauth receive)."""
    from requests.adapters import HTTPAdapter

    bodies: list[bytes] = []
    original = HTTPAdapter.send

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = original(self, request, *args, **kwargs)
        if request.method == "GET" and response.status_code == 200:
            bodies.append(response.content)
        return response

    HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield bodies
    finally:
        HTTPAdapter.send = original  # type: ignore[method-assign]


def decode_floor(bodies: list[bytes], repeat: int = 3) -> float:
    """CPU seconds (best of `repeat`) to decode `bodies` as JSON (stdlib, as the
    collector's `response.json()` does), building nothing else."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for body in bodies:
            json.loads(body)
        best = min(best, time.process_time() - start)
    return best


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM) in MB; nan once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
