"""GET /v1/jobs and the job metrics on /metrics: what the daemon's periodic jobs did
(engine/scheduler.py). The API gets the daemon's scheduler from `stackfleet serve`;
an API without a daemon (`stackfleet api`, tests) has no jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import BaseModel, Field

from stackfleet.engine.scheduler import JobState

router = APIRouter()

# what the API needs of a scheduler: its jobs' states (Scheduler.jobs, Daemon.jobs)
JobsView = Callable[[], list[JobState]]


class JobInfo(BaseModel):
    """One periodic job of the daemon."""

    name: str
    description: str
    interval: float = Field(description="Seconds from the end of a run to the next run.")
    jitter: float = Field(description="Up to this many seconds more, at random, per wait.")
    timeout: float | None = Field(
        description="Seconds a run is expected to take at most (longer: overrun)."
    )
    leader_only: bool = Field(description="Run only by the leader of several daemons.")
    status: Literal["idle", "running", "ok", "error", "overrun"] = Field(
        description="idle (not run yet), running, ok or error (the newest run), overrun "
        "(running beyond its timeout, or the newest run did)."
    )
    running: bool
    last_start: datetime | None
    last_end: datetime | None
    last_duration_seconds: float | None
    last_success: datetime | None
    last_error: str | None = Field(description="The newest failure's error (kept after).")
    last_failure: datetime | None
    runs: int
    failures: int
    overruns: int
    next_run: datetime | None = Field(description="When the job runs next (null: running).")


class JobList(BaseModel):
    items: list[JobInfo]


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def job_info(state: JobState) -> JobInfo:
    return JobInfo(
        name=state.name,
        description=state.description,
        interval=state.interval,
        jitter=state.jitter,
        timeout=state.timeout,
        leader_only=state.leader_only,
        status=state.status,
        running=state.running,
        last_start=_time(state.last_start),
        last_end=_time(state.last_end),
        last_duration_seconds=state.last_duration,
        last_success=_time(state.last_success),
        last_error=state.last_error,
        last_failure=_time(state.last_failure),
        runs=state.runs,
        failures=state.failures,
        overruns=state.overruns,
        next_run=_time(state.next_run),
    )


def job_states(app: Any) -> list[JobState]:
    view: JobsView | None = getattr(app.state, "jobs", None)
    return view() if view is not None else []


@router.get("/v1/jobs", response_model=JobList, tags=["jobs"])
def list_jobs(request: Request) -> Any:
    """The daemon's periodic jobs: schedule, newest run, counts (empty without a daemon)."""
    return JobList(items=[job_info(s) for s in job_states(request.app)])


class ClusterInfo(BaseModel):
    """This daemon's view of the scale-out workers (docs/scale-out.md)."""

    distributed: bool = Field(description="False: a lone process (no coordination URL).")
    member_id: str | None = Field(description="This worker's member id in the group.")
    members: list[str] = Field(description="The live workers, as this one sees them.")
    leader: bool = Field(description="Whether this worker runs the leader-only jobs now.")
    partitions: list[str] = Field(
        description="The (cloud, region) partitions this worker collects: collect:CLOUD/REGION."
    )


LONE = ClusterInfo(distributed=False, member_id=None, members=[], leader=True, partitions=[])


@router.get("/v1/cluster", response_model=ClusterInfo, tags=["jobs"])
def cluster(request: Request) -> Any:
    """Scale-out: the live workers, whether this one leads, which partitions it collects
    (a lone daemon, or an API without one: not distributed)."""
    view: Callable[[], dict[str, Any]] | None = getattr(request.app.state, "cluster", None)
    return ClusterInfo(**view()) if view is not None else LONE


# name -> help; docs/daemon.md lists the same
JOB_METRICS = {
    "stackfleet_job_last_success_timestamp_seconds": "When the job's newest successful "
    "run ended (Unix time).",
    "stackfleet_job_duration_seconds": "How long the job's newest run took.",
    "stackfleet_job_running": "1 while the job is running, else 0.",
    "stackfleet_job_runs": "Runs of the job since the daemon started.",
    "stackfleet_job_failures": "Runs of the job that failed since the daemon started.",
    "stackfleet_job_overruns": "Runs of the job that took longer than its timeout.",
}
COUNTERS = ("stackfleet_job_runs", "stackfleet_job_failures", "stackfleet_job_overruns")


class JobCollector:
    """The jobs' gauges and counters, read from the scheduler at each scrape."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for name, text in JOB_METRICS.items():
            kind = CounterMetricFamily if name in COUNTERS else GaugeMetricFamily
            families[name] = kind(name, text, labels=["job"])
        return families

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        for state in job_states(self.app):
            labels = [state.name]
            if state.last_success is not None:
                families["stackfleet_job_last_success_timestamp_seconds"].add_metric(
                    labels, state.last_success
                )
            if state.last_duration is not None:
                families["stackfleet_job_duration_seconds"].add_metric(labels, state.last_duration)
            families["stackfleet_job_running"].add_metric(labels, float(state.running))
            families["stackfleet_job_runs"].add_metric(labels, state.runs)
            families["stackfleet_job_failures"].add_metric(labels, state.failures)
            families["stackfleet_job_overruns"].add_metric(labels, state.overruns)
        return list(families.values())


def install(app: FastAPI, jobs: JobsView | None = None) -> None:
    """Add GET /v1/jobs to `app` and the job metrics to its registry; `jobs`: the
    daemon's (Scheduler.jobs), or None (no daemon: no jobs)."""
    app.state.jobs = jobs
    app.include_router(router)
    app.state.registry.register(JobCollector(app))
