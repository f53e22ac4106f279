"""The daemon's jobs (engine/daemon.py) and what the API says of them (api/jobs.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from stackfleet.api import create_app
from stackfleet.core.errors import ConfigError
from stackfleet.engine import daemon_config, quota_sweep
from stackfleet.engine.daemon import Daemon
from stackfleet.engine.daemon_config import DaemonConfig
from stackfleet.engine.scheduler import Job, Scheduler
from stackfleet.engine.settings import Settings
from stackfleet.sources.infra_config import InfraConfig
from stackfleet.sources.openstack import capacity
from stackfleet.store import Store


def daemon(store: Store, **options: object) -> Daemon:
    config = DaemonConfig(clouds=["nowhere"], **options)  # type: ignore[arg-type]
    return Daemon(store, config, settings=Settings(), infra=InfraConfig())


def test_the_daemon_runs_only_the_jobs_with_something_to_do(store: Store) -> None:
    assert daemon(store).scheduler.names == ["collect", "quotas", "events"]
    with_policies = daemon(store, policy_files=["pack:waste"], bmc_map="bmc-map.yaml")
    assert with_policies.scheduler.names == ["collect", "policies", "quotas", "hardware", "events"]


def test_a_daemon_that_is_not_the_leader_leaves_out_leader_only_jobs(store: Store) -> None:
    worker = daemon(store, policy_files=["pack:waste"], leader=False)
    assert "policies" not in worker.scheduler.names
    assert "collect" in worker.scheduler.names


def test_jobs_of_other_layers_are_handed_in_and_follow_the_same_rules(store: Store) -> None:
    from stackfleet.patching.jobs import campaign_jobs

    config = DaemonConfig(clouds=["nowhere"])
    given = Daemon(
        store, config, settings=Settings(), infra=InfraConfig(), job_factories=(campaign_jobs,)
    )
    assert given.scheduler.names[-2:] == ["campaigns", "drift"]
    follower = Daemon(
        store,
        DaemonConfig(clouds=["nowhere"], leader=False),
        settings=Settings(),
        infra=InfraConfig(),
        job_factories=(campaign_jobs,),
    )
    assert "campaigns" not in follower.scheduler.names  # leader only
    only = Daemon(
        store,
        DaemonConfig(clouds=["nowhere"], jobs=["drift"]),
        settings=Settings(),
        infra=InfraConfig(),
        job_factories=(campaign_jobs,),
    )
    assert only.scheduler.names == ["drift"]


def test_the_daemon_runs_the_jobs_it_is_given(store: Store) -> None:
    assert daemon(store, jobs=["quotas"]).scheduler.names == ["quotas"]
    with pytest.raises(ConfigError, match="unknown job"):
        DaemonConfig(clouds=["c"], jobs=["collect", "cleanup"])


def test_the_config_defaults_are_those_of_the_engine() -> None:
    assert daemon_config.DEFAULT_QUOTA_INTERVAL == quota_sweep.DEFAULT_QUOTA_INTERVAL
    assert daemon_config.DEFAULT_AGENT_INTERVAL == capacity.DEFAULT_AGENT_INTERVAL


def test_a_failing_collection_is_a_failed_job_and_the_daemon_goes_on(store: Store) -> None:
    collecting = daemon(store, jobs=["collect"])
    state = collecting.scheduler.run_once("collect")
    assert state.failures == 1 and "nowhere" in (state.last_error or "")
    assert collecting.scheduler.run_once("collect").runs == 2


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    jobs = Scheduler([Job("sweep", lambda: None, interval=60, timeout=30)])
    yield jobs
    jobs.stop(timeout=5)


def test_without_a_daemon_the_api_has_no_jobs(store: Store) -> None:
    with TestClient(create_app(store)) as client:
        assert client.get("/v1/jobs").json() == {"items": []}
        assert 'stackfleet_job_runs_total{job="' not in client.get("/metrics").text


def test_the_api_lists_the_daemons_jobs_and_their_metrics(
    store: Store, scheduler: Scheduler
) -> None:
    scheduler.start()
    deadline = time.monotonic() + 5
    while scheduler.state("sweep").runs < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with TestClient(create_app(store, jobs=scheduler.jobs)) as client:
        [job] = client.get("/v1/jobs").json()["items"]
        metrics = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert (job["name"], job["interval"], job["timeout"], job["runs"]) == ("sweep", 60, 30, 1)
    assert job["status"] == "ok" and not job["running"] and job["last_success"]
    assert job["next_run"] > job["last_end"]
    [runs] = metrics["stackfleet_job_runs"].samples
    assert (runs.name, runs.labels, runs.value) == (
        "stackfleet_job_runs_total",
        {"job": "sweep"},
        1,
    )
    assert metrics["stackfleet_job_last_success_timestamp_seconds"].samples[0].value > 0


def test_the_daemon_checkpoints_the_audit_log_outside_the_database(store: Store, tmp_path) -> None:
    import json

    from stackfleet.store.audit import AuditLog

    AuditLog(store).append("test.event", {})
    points = tmp_path / "worm" / "audit.jsonl"
    settings = Settings.model_validate({"audit": {"checkpoints": str(points)}})
    config = DaemonConfig(clouds=["nowhere"], jobs=["audit"])
    anchored = Daemon(store, config, settings=settings, infra=InfraConfig())
    assert anchored.scheduler.names == ["audit"]
    state = anchored.scheduler.run_once("audit")
    assert state.failures == 0 and state.leader_only
    assert json.loads(points.read_text())["seq"] == 1
    assert AuditLog(store).verify(points).checkpoints == 1
