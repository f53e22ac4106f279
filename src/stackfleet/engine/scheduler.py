"""The one scheduler of periodic work: every background job of the daemon (collection
passes, sweeps, alert dispatch, event processing) is a `Job` run by a `Scheduler`.

Each job has a thread of its own (jobs block on I/O: OpenStack APIs, BMCs, databases),
and that thread is the only loop: run the job, record how it went, wait `interval`
seconds (plus up to `jitter`), run again. The wait starts when a run *ends*, so a run
that takes longer than its interval is followed by a full interval of rest, never by
a burst of catch-up runs.

- An exception in a job is logged and recorded (`last_error`, `last_failure`,
  `failures`; `status` error until a run succeeds); the job runs
  again at its next time. Nothing a job raises ends the daemon.
- `timeout` is how long a run is expected to take at most. Python threads cannot be
  killed, so a run is never interrupted: while it goes on beyond its timeout the job is
  reported as `overrun` (GET /v1/jobs), and when it ends the overrun is logged and
  counted (`overruns`). The run's outcome still counts (success or failure).
- `run_now(name)` wakes a job at once (a run already going is followed by one more).
- `stop()` wakes every waiting job and joins the threads; a job in the middle of a run
  finishes that run first (stop waits up to its `timeout` argument, then gives up on
  that thread: the threads are daemon threads and end with the process).

A job's function may return anything (a run_once's report is ignored), or `NextRun` to
run again sooner (or later) than its interval, once: the quota sweep looks again soon
while no pass has found a project yet.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from stackfleet.core.errors import StackFleetError

log = logging.getLogger(__name__)

JobStatus = Literal["idle", "running", "ok", "error", "overrun"]


@dataclass(frozen=True)
class NextRun:
    """Returned by a job's function: run again `after` seconds from now, this once."""

    after: float


@dataclass(frozen=True)
class Job:
    """One periodic job: what to run and how often."""

    name: str
    # one run; its result is ignored unless it is a NextRun
    run: Callable[[], object]
    interval: float
    jitter: float = 0.0
    # seconds a run is expected to take at most (None: no limit); see the module doc
    timeout: float | None = None
    # seconds before the first run
    initial_delay: float = 0.0
    # runs on the leader only when several daemons share the work (policies, alerts)
    leader_only: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"job {self.name}: interval must be positive, not {self.interval}")
        if self.jitter < 0 or (self.timeout is not None and self.timeout <= 0):
            raise ValueError(f"job {self.name}: jitter must be >= 0 and timeout > 0")


@dataclass(frozen=True)
class JobState:
    """What a job did and will do: a snapshot for the API and /metrics. Times are Unix
    seconds (None: not yet)."""

    name: str
    description: str
    interval: float
    jitter: float
    timeout: float | None
    leader_only: bool
    status: JobStatus
    running: bool
    last_start: float | None
    last_end: float | None
    last_duration: float | None
    last_success: float | None
    # the newest failure's error and time, kept after later successes
    last_error: str | None
    last_failure: float | None
    runs: int
    failures: int
    overruns: int
    next_run: float | None


@dataclass
class _Runner:
    """A job and its record; fields change under `Scheduler._lock`."""

    job: Job
    wake: threading.Event = field(default_factory=threading.Event)
    # one run at a time, whoever asks (the job's thread or run_once)
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    status: JobStatus = "idle"
    running: bool = False
    last_start: float | None = None
    last_start_mono: float | None = None
    last_end: float | None = None
    last_duration: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_failure: float | None = None
    runs: int = 0
    failures: int = 0
    overruns: int = 0
    next_run_mono: float | None = None


class UnknownJobError(KeyError):
    """No job of that name in this scheduler."""


class Scheduler:
    """Runs each job in a thread of its own until `stop()`."""

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        self._runners: dict[str, _Runner] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        for job in jobs:
            self.add(job)

    def add(self, job: Job) -> None:
        """Add a job (before or after start: added later, it starts at once)."""
        with self._lock:
            if job.name in self._runners:
                raise ValueError(f"a job named {job.name!r} is already scheduled")
            runner = _Runner(job)
            self._runners[job.name] = runner
            started = self._started
        if started:
            self._start_thread(runner)

    @property
    def names(self) -> list[str]:
        with self._lock:
            return list(self._runners)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._runners

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start every job's thread (once)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stop.clear()
            runners = list(self._runners.values())
        for runner in runners:
            self._start_thread(runner)

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Stop every job: waiting ones at once, running ones after their current run.
        Waits up to `timeout` seconds in all; returns the jobs still running then."""
        self._stop.set()
        with self._lock:
            runners = list(self._runners.values())
            self._started = False
        for runner in runners:
            runner.wake.set()
        deadline = time.monotonic() + timeout
        stuck = []
        for runner in runners:
            if runner.thread is None:
                continue
            runner.thread.join(max(0.0, deadline - time.monotonic()))
            if runner.thread.is_alive():
                stuck.append(runner.job.name)
                log.warning("job %s did not stop within %g s", runner.job.name, timeout)
            else:
                runner.thread = None
        return stuck

    def run_now(self, name: str) -> None:
        """Wake job `name` to run at once (after its current run, if one is going)."""
        self._runner(name).wake.set()

    def run_once(self, name: str) -> JobState:
        """Run job `name` in the calling thread, recorded like a scheduled run (the CLI,
        tests). Waits for a run already going to end first."""
        self._execute(self._runner(name))
        return self.state(name)

    # ------------------------------------------------------------------ reading
    def state(self, name: str) -> JobState:
        runner = self._runner(name)
        with self._lock:
            return self._snapshot(runner, time.time(), time.monotonic())

    def jobs(self) -> list[JobState]:
        """Every job's state, in the order they were added."""
        with self._lock:
            now, mono = time.time(), time.monotonic()
            return [self._snapshot(r, now, mono) for r in self._runners.values()]

    @staticmethod
    def _snapshot(runner: _Runner, now: float, mono: float) -> JobState:
        job = runner.job
        status = runner.status
        if (
            runner.running
            and job.timeout is not None
            and runner.last_start_mono is not None
            and mono - runner.last_start_mono > job.timeout
        ):
            status = "overrun"
        next_run = None
        if runner.next_run_mono is not None and not runner.running:
            next_run = now + max(0.0, runner.next_run_mono - mono)
        return JobState(
            name=job.name,
            description=job.description,
            interval=job.interval,
            jitter=job.jitter,
            timeout=job.timeout,
            leader_only=job.leader_only,
            status=status,
            running=runner.running,
            last_start=runner.last_start,
            last_end=runner.last_end,
            last_duration=runner.last_duration,
            last_success=runner.last_success,
            last_error=runner.last_error,
            last_failure=runner.last_failure,
            runs=runner.runs,
            failures=runner.failures,
            overruns=runner.overruns,
            next_run=next_run,
        )

    def _runner(self, name: str) -> _Runner:
        with self._lock:
            try:
                return self._runners[name]
            except KeyError:
                raise UnknownJobError(name) from None

    # ------------------------------------------------------------------ running
    def _start_thread(self, runner: _Runner) -> None:
        runner.thread = threading.Thread(
            target=self._loop, args=(runner,), name=f"job-{runner.job.name}", daemon=True
        )
        runner.thread.start()

    def _loop(self, runner: _Runner) -> None:
        """The only loop of periodic work in StackFleet."""
        delay = runner.job.initial_delay
        while not self._stop.is_set():
            with self._lock:
                runner.next_run_mono = time.monotonic() + delay
            if delay > 0:
                runner.wake.wait(delay)
            runner.wake.clear()
            if self._stop.is_set():
                break
            asked = self._execute(runner)
            delay = runner.job.interval if asked is None else max(0.0, asked)
            if runner.job.jitter:
                delay += random.uniform(0, runner.job.jitter)  # noqa: S311 - spreading load
        with self._lock:
            runner.next_run_mono = None

    def _execute(self, runner: _Runner) -> float | None:
        job = runner.job
        with runner.run_lock:
            started_mono = time.monotonic()
            with self._lock:
                runner.running = True
                runner.status = "running"
                runner.last_start = time.time()
                runner.last_start_mono = started_mono
            asked: float | None = None
            error: str | None = None
            try:
                result = job.run()
                asked = result.after if isinstance(result, NextRun) else None
            except StackFleetError as exc:  # an outage, a bad setting: said in one line
                log.error("job %s failed: %s", job.name, exc)
                error = str(exc)
            except Exception as exc:  # a bug in one run must not end the daemon
                log.exception("job %s crashed", job.name)
                error = f"{type(exc).__name__}: {exc}"
            duration = time.monotonic() - started_mono
            overran = job.timeout is not None and duration > job.timeout
            if overran:
                log.warning(
                    "job %s overran its timeout: %.1f s (timeout %g s)",
                    job.name,
                    duration,
                    job.timeout,
                )
            with self._lock:
                runner.running = False
                runner.runs += 1
                runner.last_end = time.time()
                runner.last_duration = duration
                if error is None:
                    runner.last_success = runner.last_end
                    runner.status = "ok"
                else:
                    runner.failures += 1
                    runner.last_error = error
                    runner.last_failure = runner.last_end
                    runner.status = "error"
                if overran:
                    runner.overruns += 1
                    runner.status = "overrun"
            return asked
