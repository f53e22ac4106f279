"""kill -9 in the middle of the work, then start again: the store stays consistent and
nothing is done twice. A pass cut off is never trusted (it becomes `interrupted` when
the next pass of its region begins); an action cut off is neither repeated nor counted
as done; the audit chain still verifies."""

from __future__ import annotations

import email
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
from sinks import Capture, SmtpSink

from stackfleet.simulator.faults import FaultRule
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store
from stackfleet.store.audit import AuditLog

CLOUD = "sim"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def _cli(*args: str, env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stackfleet.cli.main", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def test_serve_killed_mid_pass_restarts_with_the_pass_interrupted(tmp_path):
    slow = FaultRule(method="GET", path=r"/servers/detail", latency_ms=1500)
    with SimulatorServer(preset("small"), faults=[slow]) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        (tmp_path / "settings.yaml").write_text("{}\n")
        db = tmp_path / "store.db"
        env = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_DB_URL": f"sqlite:///{db}",
            "STACKFLEET_CONFIG": str(tmp_path / "settings.yaml"),
        }
        store = open_store(f"sqlite:///{db}")
        args = ("serve", "--os-cloud", CLOUD, "--port", str(_free_port()), "--interval", "5",
                "--infra-config", os.devnull)  # fmt: skip
        with (tmp_path / "serve.log").open("wb") as log:
            first = _cli(*args, env=env, log=log)
            try:
                _until(
                    lambda: any(p["status"] == "running" for p in store.list_passes()),
                    60,
                    "a pass begins",
                )
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait()
            [cut] = [p for p in store.list_passes() if p["status"] == "running"]
            second = _cli(*args, env=env, log=log)
            try:
                _until(
                    lambda: any(
                        p["status"] == "complete" and p["id"] > cut["id"]
                        for p in store.list_passes()
                    ),
                    90,
                    "a complete pass after the restart",
                )
            finally:
                second.send_signal(signal.SIGINT)
                second.wait(30)
        statuses = {p["id"]: p["status"] for p in store.list_passes(limit=50)}
        assert statuses[cut["id"]] == "interrupted"
        store.close()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_action_cut_off_by_kill_9_is_not_repeated(tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    # the stop request takes 3 s to be answered: time to kill the run in the middle
    slow = FaultRule(method="POST", path=r"/servers/[^/]+/action", latency_ms=3000)
    with SimulatorServer(preset("small", now=now), faults=[slow]) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        region = server.state.regions["RegionOne"]
        target = sorted(
            s["id"]
            for s in region.servers.values()
            if s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"]
        )[0]
        policy = tmp_path / "stop.yaml"
        policy.write_text(
            f"""policies:
  - name: stop-this
    resource: server
    filters: [{{id: {target}}}, {{status: ACTIVE}}]
    actions: [stop]
    safety: {{max_percent: 100}}
"""
        )
        (tmp_path / "settings.yaml").write_text("{}\n")
        url = f"sqlite:///{tmp_path / 'store.db'}"
        env = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "STACKFLEET_DB_URL": url,
            "STACKFLEET_CONFIG": str(tmp_path / "settings.yaml"),
        }
        store = open_store(url)
        from stackfleet.engine.collect import collect

        collect(store, CLOUD, config_files=[str(clouds)])
        server.sim.request_counts.clear()
        from stackfleet.store import action_records

        def running() -> bool:
            rows, _ = action_records.list_actions(store, "running")
            return bool(rows)

        def stops() -> int:
            return sum(
                n
                for key, n in server.sim.request_counts.items()
                if key.startswith("POST") and key.endswith("/action")
            )

        with (tmp_path / "run.log").open("wb") as log:
            run = _cli("policy", "run", str(policy), "--execute", env=env, log=log)
            try:
                _until(running, 60, "the action starts")
                time.sleep(0.5)  # the stop request may be on its way
            finally:
                run.send_signal(signal.SIGKILL)
                run.wait()
            # a request in flight is counted once its 3 s latency has passed
            time.sleep(3.5)
            cut_off = stops()
            # run again at once: the cut-off action is in progress as far as anyone
            # can tell (it may still land), so it is deferred, not repeated
            again = _cli("policy", "run", str(policy), "--execute", env=env, log=log)
            assert again.wait(120) == 0, (tmp_path / "run.log").read_text()
        # the cut-off request may or may not have reached the cloud (the simulator drops
        # a request whose client went away); either way the second run sent none
        assert cut_off <= 1 and stops() == cut_off, server.sim.request_counts
        [row], _ = action_records.list_actions(store)
        assert row["status"] == "running"  # no outcome was recorded; never counted done
        log_entries, _ = AuditLog(store).list(limit=50)
        assert [e["event"] for e in log_entries] == ["action.started"]
        assert AuditLog(store).verify().ok
        store.close()


def _serve_env(tmp_path, clouds, settings: str) -> tuple[dict[str, str], str]:
    (tmp_path / "settings.yaml").write_text(settings)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {
        **os.environ,
        "OS_CLIENT_CONFIG_FILE": str(clouds),
        "STACKFLEET_DB_URL": url,
        "STACKFLEET_CONFIG": str(tmp_path / "settings.yaml"),
    }
    return env, url


def _job_runs(port: int, name: str) -> int:
    """How many times the daemon's job `name` ran (0 while the API is not up)."""
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/jobs", timeout=5)
    except httpx.HTTPError:
        return 0
    if answer.status_code != 200:
        return 0
    return next((j["runs"] for j in answer.json()["items"] if j["name"] == name), 0)


def _serve_until(args, env, log, port: int, job: str, runs: int, what: str) -> None:
    """Start serve, wait until its job `job` ran `runs` times, stop it (Ctrl-C)."""
    proc = _cli(*args, env=env, log=log)
    try:
        _until(lambda: _job_runs(port, job) >= runs, 120, what)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def _kill_when(args, env, log, held) -> None:
    """Start serve and kill -9 it once the sink holds a delivery (sent, unanswered)."""
    proc = _cli(*args, env=env, log=log)
    try:
        _until(held.is_set, 120, "a delivery reaches the slow sink")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _lease_policy(tmp_path, server) -> str:
    """A lease policy over one long-stopped server of the simulator: its mark step
    tags it and notifies its owner."""
    target = server.state.ground_truth["RegionOne"]["long_shutoff_servers"][0]
    policy = tmp_path / "lease.yaml"
    policy.write_text(
        f"""policies:
  - name: reclaim-one
    resource: server
    mode: {{type: periodic, interval: 0s}}
    filters: [{{id: {target}}}, {{status: SHUTOFF}}]
    actions:
      - type: lifecycle
        stop_after: 7d
        delete_after: 5d
        cancel_when: [{{not: {{status: SHUTOFF}}}}]
    safety: {{max_percent: 100}}
"""
    )
    return str(policy)


def _lease_serve_args(port: int, policy: str) -> tuple[str, ...]:
    return ("serve", "--os-cloud", CLOUD, "--port", str(port), "--interval", "5",
            "--infra-config", os.devnull, "--policy", policy,
            "--execute-actions")  # fmt: skip


def _kill_during_notice_then_serve(tmp_path, env, policy: str, sink: Capture) -> None:
    """Serve the lease policy, kill -9 it while `sink` holds the notice, then serve
    again for two policy runs (each after a pass)."""
    port = _free_port()
    args = _lease_serve_args(port, policy)
    with (tmp_path / "serve.log").open("wb") as log:
        _kill_when(args, env, log, sink.holding)
        sink.release.set()
        _serve_until(args, env, log, port, "policies", 2, "two policy runs")


def test_serve_killed_while_a_lease_notice_is_sent_does_not_send_it_again(tmp_path):
    """The mark step of a new lease tags the server, then posts the owner's notice to a
    webhook that records it and answers slowly; serve is killed while it waits. After
    the restart the notice is in doubt (it did arrive): it is not sent again, the tag
    is not set again, and no lease step is recorded on the strength of it."""
    now = datetime.now(UTC).replace(microsecond=0)
    sink = Capture(hold=frozenset({0}))
    with SimulatorServer(preset("small", now=now)) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        policy = _lease_policy(tmp_path, server)
        env, url = _serve_env(tmp_path, clouds, f"notify: {{webhook: {sink.url}/notice}}\n")
        try:
            _kill_during_notice_then_serve(tmp_path, env, policy, sink)
        finally:
            sink.close()
        store = open_store(url)
        from stackfleet.store import action_records, leases

        assert [path for path, _ in sink.posts] == ["/notice"], sink.posts
        rows, _ = action_records.list_actions(store)
        done = [(r["action"], r["status"]) for r in rows]
        assert len(done) == len({a for a, _ in done}), done  # no action twice
        assert ("notify", "running") in done  # in doubt: never counted as sent
        # no lease started on a notice nobody can say arrived
        assert not [r for r in leases.list_leases(store) if r["stage"] == "marked"]
        assert AuditLog(store).verify().ok
        store.close()
        with sqlite3.connect(tmp_path / "store.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _message_id(message: str) -> str:
    return str(email.message_from_string(message)["Message-ID"]).strip()


def test_a_lease_notice_in_doubt_is_sent_again_with_the_same_idempotency_key(tmp_path):
    """Serve is killed while the webhook holds a lease's mark notice (its e-mail went
    out just before). Once the notice has been in doubt for `running_stale_after`, the
    restarted daemon sends it again: e-mail and webhook carry the same key as the first
    time (the `Message-ID`; the `Idempotency-Key` header and body field), so the owner's
    mail store and the webhook's receiver can drop the repeat."""
    now = datetime.now(UTC).replace(microsecond=0)
    sink = Capture(hold=frozenset({0}))
    mail = SmtpSink()
    with SimulatorServer(preset("small", now=now)) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        policy = _lease_policy(tmp_path, server)
        env, url = _serve_env(
            tmp_path,
            clouds,
            f"notify: {{webhook: {sink.url}/notice, smtp_host: 127.0.0.1, "
            f"smtp_port: {mail.port}, smtp_from: fleet@example.org, keystone_email: false, "
            "default_recipients: [owner@example.org]}\n"
            "safety: {running_stale_after: 1s}\n",
        )
        try:
            _kill_during_notice_then_serve(tmp_path, env, policy, sink)
        finally:
            sink.close()
            mail.close()
        store = open_store(url)
        from stackfleet.store import action_records, leases

        # sent twice (in doubt, then again), with one key
        assert len(sink.posts) == 2, sink.posts
        keys = {h.get("Idempotency-Key") for h in sink.headers}
        [key] = keys
        assert key and [body["idempotency_key"] for _, body in sink.posts] == [key, key]
        assert len(mail.messages) == 2, mail.messages
        first, second = (_message_id(m) for m in mail.messages)
        assert first == second and key in first
        # the retry took: the lease started, the notice counted sent once
        notices = [r for r in action_records.list_actions(store)[0] if r["action"] == "notify"]
        assert [(r["status"], r["idempotency_key"]) for r in notices] == [("succeeded", key)]
        assert [r["stage"] for r in leases.list_leases(store)] == ["marked"]
        assert AuditLog(store).verify().ok
        store.close()


def test_serve_killed_during_an_alert_dispatch_repeats_no_group_told_and_loses_none(tmp_path):
    """Three firing alerts, one group each, to a webhook that records the second
    message and answers slowly; serve is killed while it waits. After the restart the
    first group, told before the kill, is not told again within its repeat interval
    (1 h); the third, never sent, is sent; the second is in doubt and told at most once
    more (at least once, as Alertmanager)."""
    sink = Capture(hold=frozenset({1}))
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        env, url = _serve_env(
            tmp_path,
            clouds,
            f"""alerts:
  receivers:
    - name: ops
      type: webhook
      url: {sink.url}/alerts
      group_by: [alertname]
      group_wait: 0s
      group_interval: 1s
      repeat_interval: 1h
""",
        )
        store = open_store(url)
        from stackfleet.alerts.lifecycle import ingest

        names = ["DiskFull", "FanFailed", "LinkDown"]
        ingest(
            store,
            [{"labels": {"alertname": n, "severity": "warning"}} for n in names],
            "api",
            datetime.now(UTC),
        )
        port = _free_port()
        args = ("serve", "--os-cloud", CLOUD, "--port", str(port), "--interval", "5",
                "--infra-config", os.devnull)  # fmt: skip
        try:
            with (tmp_path / "serve.log").open("wb") as log:
                _kill_when(args, env, log, sink.holding)
                sink.release.set()
                told_before = [p["groupLabels"]["alertname"] for _, p in sink.posts]
                _serve_until(args, env, log, port, "alerts", 3, "three dispatch rounds")
        finally:
            sink.close()
        told = [p["groupLabels"]["alertname"] for _, p in sink.posts]
        first, in_doubt = told_before
        [never_sent] = set(names) - {first, in_doubt}
        assert told.count(first) == 1, told
        assert told.count(never_sent) == 1, told
        assert told.count(in_doubt) <= 2, told
        from stackfleet.store.alerts import list_alerts

        assert {a["notified_status"] for a in list_alerts(store)} == {"firing"}
        store.close()
