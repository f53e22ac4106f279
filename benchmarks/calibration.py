"""A fixed pure-Python workload every benchmark prints beside its figures, so figures
from two machines can be compared: on a machine where this takes twice as long, expect
CPU-bound figures about twice as high.

Also the decoding floor of a pass: the CPU time to decode, as JSON and nothing more,
the very response bodies a pass received. A pass cannot cost less than that; its
targets are stated as multiples of it (docs/benchmarks.md)."""

from __future__ import annotations

import gc
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


class BodySpool:
    """Response bodies spooled to a temporary file as they arrive, so that capturing
    them for the floor does not add a pass's worth of pages (~130 MB on the benchmark
    fleet) to the collector's peak RSS. Writing costs the pass a few tens of ms of CPU,
    which is counted against it."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()
        self.count = 0
        self.nbytes = 0

    def add(self, body: bytes) -> None:
        with self._lock:
            self._file.write(len(body).to_bytes(8, "little"))
            self._file.write(body)
            self.count += 1
            self.nbytes += len(body)

    def __iter__(self) -> Iterator[bytes]:
        with self._lock:
            self._file.flush()
            self._file.seek(0)
            for _ in range(self.count):
                size = int.from_bytes(self._file.read(8), "little")
                yield self._file.read(size)
            self._file.seek(0, os.SEEK_END)

    def close(self) -> None:
        self._file.close()


@contextmanager
def captured_bodies() -> Iterator[BodySpool]:
    """The bodies of every successful GET answered through `requests` in the block
    (what openstacksdk/keystoneauth receive), spooled to a temporary file."""
    from requests.adapters import HTTPAdapter

    bodies = BodySpool()
    original = HTTPAdapter.send

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = original(self, request, *args, **kwargs)
        if request.method == "GET" and response.status_code == 200:
            bodies.add(response.content)
        return response

    HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield bodies
    finally:
        HTTPAdapter.send = original  # type: ignore[method-assign]


def decode_floor(bodies: Iterable[bytes], repeat: int = 3, loads: Any = json.loads) -> float:
    """CPU seconds (best of `repeat`) to decode `bodies` as JSON, building nothing else:
    with the standard library's `json.loads` by default -- the floor the targets of
    issue 15 are stated against -- or with another decoder (`orjson.loads`: the floor
    of a collector that decodes with orjson, printed beside it). Only the decoding is
    timed, one body at a time (reading the spool back is not).

    Python's cyclic garbage collector is paused while decoding, as the collector pauses
    it during a pass: otherwise every collection it starts walks whatever else the
    process holds (the benchmark keeps the pass's records, ~10^6 objects, alive), and
    the floor measures that walk (3-4x the decoding itself) instead of the decoding."""
    best = float("inf")
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            spent = 0.0
            for body in bodies:
                start = time.process_time()
                loads(body)
                spent += time.process_time() - start
            best = min(best, spent)
    finally:
        if enabled:
            gc.enable()
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
