"""The scheduler of the daemon's periodic jobs (engine/scheduler.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from stackfleet.core.errors import CloudError
from stackfleet.engine.scheduler import Job, NextRun, Scheduler, UnknownJobError


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    jobs = Scheduler()
    yield jobs
    jobs.stop(timeout=5)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_job_runs_at_start_then_every_interval(scheduler: Scheduler) -> None:
    starts: list[float] = []
    scheduler.add(Job("tick", lambda: starts.append(time.monotonic()), interval=0.2))
    scheduler.start()
    wait_for(lambda: len(starts) >= 3)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 0.2 for gap in gaps)
    assert all(gap < 2.0 for gap in gaps)  # a loaded machine is slow, not this slow
    state = scheduler.state("tick")
    assert state.runs >= 3 and state.failures == 0 and state.status == "ok"
    assert state.last_success is not None and state.last_duration is not None


def test_the_interval_is_counted_from_the_end_of_a_run(scheduler: Scheduler) -> None:
    starts: list[float] = []

    def slow() -> None:
        starts.append(time.monotonic())
        time.sleep(0.2)

    scheduler.add(Job("slow", slow, interval=0.1))
    scheduler.start()
    wait_for(lambda: len(starts) >= 2)
    assert starts[1] - starts[0] >= 0.3


def test_a_raising_job_records_the_error_and_keeps_running(scheduler: Scheduler) -> None:
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    scheduler.add(Job("flaky", flaky, interval=0.05))
    scheduler.start()
    wait_for(lambda: len(calls) >= 3)
    state = scheduler.state("flaky")
    assert state.failures == 1 and state.runs >= 2
    assert state.last_error == "RuntimeError: boom"
    assert state.last_failure is not None and state.last_success is not None
    assert state.last_success > state.last_failure
    assert state.status == "ok"


def test_a_stackfleet_error_is_recorded_with_its_message(scheduler: Scheduler) -> None:
    def unreachable() -> None:
        raise CloudError("cloud c1 did not answer")

    scheduler.add(Job("collect", unreachable, interval=60))
    state = scheduler.run_once("collect")
    assert (state.status, state.last_error, state.failures) == (
        "error",
        "cloud c1 did not answer",
        1,
    )
    assert state.last_success is None


def test_a_run_beyond_its_timeout_is_reported_as_overrun(scheduler: Scheduler) -> None:
    release = threading.Event()
    scheduler.add(Job("stuck", lambda: release.wait(5), interval=60, timeout=0.1))
    scheduler.start()
    wait_for(lambda: scheduler.state("stuck").status == "overrun")
    assert scheduler.state("stuck").running
    release.set()
    wait_for(lambda: not scheduler.state("stuck").running)
    state = scheduler.state("stuck")
    assert (state.status, state.overruns, state.runs) == ("overrun", 1, 1)
    # it did finish: the run still counts as a success
    assert state.failures == 0 and state.last_success is not None


def test_stop_is_prompt_while_jobs_wait(scheduler: Scheduler) -> None:
    scheduler.add(Job("hourly", lambda: None, interval=3600))
    scheduler.add(Job("daily", lambda: None, interval=86400, initial_delay=86400))
    scheduler.start()
    wait_for(lambda: scheduler.state("hourly").runs == 1)
    started = time.monotonic()
    assert scheduler.stop(timeout=5) == []
    assert time.monotonic() - started < 1.0
    assert scheduler.state("daily").runs == 0


def test_stop_names_a_job_still_in_its_run(scheduler: Scheduler) -> None:
    release = threading.Event()
    scheduler.add(Job("long", lambda: release.wait(5), interval=60))
    scheduler.start()
    wait_for(lambda: scheduler.state("long").running)
    assert scheduler.stop(timeout=0.1) == ["long"]
    release.set()


def test_run_now_wakes_a_waiting_job(scheduler: Scheduler) -> None:
    runs: list[int] = []
    scheduler.add(Job("hourly", lambda: runs.append(1), interval=3600))
    scheduler.start()
    wait_for(lambda: len(runs) == 1)
    assert scheduler.state("hourly").next_run is not None
    scheduler.run_now("hourly")
    wait_for(lambda: len(runs) == 2)
    with pytest.raises(UnknownJobError):
        scheduler.run_now("nightly")


def test_a_job_may_ask_to_run_again_sooner(scheduler: Scheduler) -> None:
    runs: list[int] = []

    def impatient() -> NextRun | None:
        runs.append(1)
        return NextRun(0.05) if len(runs) < 3 else None

    scheduler.add(Job("impatient", impatient, interval=3600))
    scheduler.start()
    wait_for(lambda: len(runs) == 3, timeout=3)


def test_the_first_run_waits_the_initial_delay(scheduler: Scheduler) -> None:
    scheduler.add(Job("later", lambda: None, interval=3600, initial_delay=3600))
    scheduler.start()
    time.sleep(0.1)
    state = scheduler.state("later")
    assert state.runs == 0 and state.status == "idle"
    assert state.next_run is not None and state.next_run > time.time() + 3000


def test_a_job_needs_a_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        Job("never", lambda: None, interval=0)
