"""A fixed pure-Python workload every benchmark prints beside its figures, so figures
from two machines can be compared: on a machine where this takes twice as long, expect
CPU-bound figures about twice as high.

Also the decoding floor of a pass: the CPU time to decode, as JSON and nothing more,
the very response bodies a pass received. A pass cannot cost less than that; its
targets are stated as multiples of it (docs/benchmarks.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
