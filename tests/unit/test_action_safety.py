"""Acting safely on stale data: every action states what it expects of the live
resource and is re-checked (exclusion included) just before acting, also after a
pre-delete snapshot or backup; any exception ends one action as failed, never as
`running`, and nothing failed, running or unverified counts as done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import openstack.exceptions
import pytest
from sinks import Capture

from stackfleet.engine.execute import mismatch
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy import load_text
from stackfleet.store import action_records, leases
from stackfleet.store.audit import AuditLog

NOW = datetime.now(UTC)


def server(id: str, status: str = "SHUTOFF", **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"vm-{id}",
        "project_id": "p1",
        "status": status,
        "power_state": "SHUTDOWN" if status == "SHUTOFF" else "RUNNING",
        "task_state": None,
        "locked": False,
        "tags": [],
        "metadata": {},
        "volume_ids": [],
        **fields,
    }


def volume(id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"vol-{id}",
        "project_id": "p1",
        "status": "available",
        "size": 1,
        "attached_server_ids": [],
        **fields,
    }


def collect(store, **kinds: list[dict[str, Any]]) -> None:
    pass_id = store.begin_pass("c", "r")
    for kind, records in kinds.items():
        store.record_kind(pass_id, "c", "r", kind, records, True)
    store.finish_pass(pass_id, "complete", None, 0)


class FakeCloud:
    """Just enough of an openstacksdk connection for server and volume actions; the
    live state is `servers` / `volumes`, changed by tests (and by `during_copy`, run
    while a snapshot or backup is being made)."""

    def __init__(self) -> None:
        self.servers: dict[str, dict[str, Any]] = {}
        self.volumes: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.during_copy: Any = None
        self.compute = SimpleNamespace(
            get_server=self._get_server,
            stop_server=self._stop,
            lock_server=lambda sid, locked_reason=None: self._call("lock", sid),
            delete_server=self._delete_server,
            create_server_image=self._snapshot,
            set_server_metadata=lambda sid, **md: self.servers[sid]["metadata"].update(md),
            delete_server_metadata=self._delete_metadata,
        )
        self.image = SimpleNamespace(get_image=lambda iid: SimpleNamespace(status="active"))
        self.fips: dict[str, dict[str, Any]] = {}
        self.network = SimpleNamespace(
            get_ip=self._get_ip,
            set_tags=self._set_tags,
        )
        self.block_storage = SimpleNamespace(
            get_volume=self._get_volume,
            backups=lambda **kw: [],
            create_backup=self._backup,
            get_backup=lambda bid: SimpleNamespace(status="available", fail_reason=None),
            delete_volume=self._delete_volume,
        )

    def connection(self, cloud: str, region: str) -> FakeCloud:
        return self

    def _call(self, what: str, rid: str) -> None:
        self.calls.append((what, rid))

    def _stop(self, sid: str) -> None:
        """As Nova: the server is SHUTOFF once the stop is through (a fake whose stop
        changes nothing is a stop that failed in Nova)."""
        self._call("stop", sid)
        self.servers[sid].update(status="SHUTOFF", power_state="SHUTDOWN")

    def _get_server(self, sid: str) -> Any:
        if sid not in self.servers:
            raise openstack.exceptions.NotFoundException("gone")
        s = self.servers[sid]
        return SimpleNamespace(
            status=s["status"],
            power_state={"RUNNING": 1, "SHUTDOWN": 4}[s["power_state"]],
            is_locked=s["locked"],
            metadata=s["metadata"],
            tags=s["tags"],
            task_state=s["task_state"],
            attached_volumes=[{"id": v} for v in s["volume_ids"]],
        )

    def _delete_metadata(self, sid: str, keys: list[str]) -> None:
        self._call("delete_metadata", sid)
        for key in keys:
            self.servers[sid]["metadata"].pop(key, None)

    def _get_ip(self, fid: str) -> Any:
        if fid not in self.fips:
            raise openstack.exceptions.NotFoundException("gone")
        return SimpleNamespace(id=fid, status="DOWN", **{"tags": [], **self.fips[fid]})

    def _set_tags(self, resource: Any, tags: list[str]) -> None:
        self._call("set_tags", resource.id)
        self.fips[resource.id]["tags"] = list(tags)

    def _delete_server(self, sid: str) -> None:
        self._call("delete", sid)
        del self.servers[sid]

    def _snapshot(self, sid: str, name: str, metadata: Any = None) -> Any:
        self._call("snapshot", sid)
        if self.during_copy:
            self.during_copy()
        return SimpleNamespace(id="img-1")

    def _get_volume(self, vid: str) -> Any:
        if vid not in self.volumes:
            raise openstack.exceptions.NotFoundException("gone")
        v = self.volumes[vid]
        return SimpleNamespace(
            status=v["status"],
            attachments=[{"server_id": s} for s in v["attached_server_ids"]],
            metadata=v.get("metadata", {}),
        )

    def _backup(self, volume_id: str, name: str, force: bool) -> Any:
        self._call("backup", volume_id)
        if self.during_copy:
            self.during_copy()
        return SimpleNamespace(id="bk-1")

    def _delete_volume(self, vid: str, ignore_missing: bool = False) -> None:
        self._call("delete", vid)
        del self.volumes[vid]


@pytest.fixture(scope="module")
def hook():
    capture = Capture()
    yield capture
    capture.close()


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


def run(store, cloud: FakeCloud, body: str, settings: Settings | None = None, **kw: Any):
    settings = settings or Settings.model_validate({"verify_timeout": "1s", "poll_interval": "1s"})
    runner = PolicyRunner(store, settings, cloud)  # type: ignore[arg-type]
    return runner.run(load_text("policies:\n" + body), execute=True, **kw)


def only(report) -> Any:
    [candidate] = report.policies[0].candidates
    return candidate


DELETE_SHUTOFF = """
  - name: reap
    resource: server
    filters: [{status: SHUTOFF}]
    actions: [{type: delete, snapshot: SNAP}]
    safety: {max_percent: 100}
"""


def test_delete_plans_what_it_expects_of_the_server(store, cloud):
    collect(store, server=[server("a", volume_ids=["v1"])])
    report = PolicyRunner(store, Settings()).run(
        load_text("policies:\n" + DELETE_SHUTOFF.replace("SNAP", "false"))
    )
    expects = only(report).plan.expects
    assert expects == {
        "status": "SHUTOFF",
        "power_state": "SHUTDOWN",
        "locked": False,
        "volume_ids": ["v1"],
        "task_state": None,
    }


def test_a_server_started_again_after_the_pass_is_not_deleted(store, cloud):
    collect(store, server=[server("a")])
    cloud.servers["a"] = server("a", "ACTIVE")
    candidate = only(run(store, cloud, DELETE_SHUTOFF.replace("SNAP", "false")))
    assert candidate.verdict == "skipped"
    assert "status is now 'ACTIVE'" in candidate.reason
    assert cloud.calls == [] and "a" in cloud.servers


def test_a_server_tagged_for_exclusion_after_the_pass_is_not_deleted(store, cloud):
    collect(store, server=[server("a")])
    cloud.servers["a"] = server("a", tags=["stackfleet-exclude"])
    candidate = only(run(store, cloud, DELETE_SHUTOFF.replace("SNAP", "false")))
    assert candidate.verdict == "skipped"
    assert "excluded by tag 'stackfleet-exclude' (on the live record)" in candidate.reason
    assert cloud.calls == []
    [entry] = AuditLog(store).list()[0]
    assert entry["event"] == "action.skipped"


def test_an_unchanged_server_is_deleted(store, cloud):
    collect(store, server=[server("a")])
    cloud.servers["a"] = server("a")
    candidate = only(run(store, cloud, DELETE_SHUTOFF.replace("SNAP", "false")))
    assert candidate.verdict == "succeeded"
    assert cloud.calls == [("delete", "a")]


def test_a_server_started_during_its_snapshot_is_kept(store, cloud):
    collect(store, server=[server("a")])
    cloud.servers["a"] = server("a")
    cloud.during_copy = lambda: cloud.servers["a"].update(status="ACTIVE", power_state="RUNNING")
    candidate = only(run(store, cloud, DELETE_SHUTOFF.replace("SNAP", "true")))
    assert candidate.verdict == "skipped"
    assert "status is now 'ACTIVE'" in candidate.reason and "nothing deleted" in candidate.reason
    assert cloud.calls == [("snapshot", "a")] and "a" in cloud.servers
    [row] = action_records.list_actions(store)[0]
    assert row["status"] == "skipped" and row["result"] == {
        "snapshot_image_id": "img-1",
        "snapshot_name": f"vm-a-stackfleet-{NOW:%Y%m%d}",
    }


def test_a_volume_attached_during_its_backup_is_kept(store, cloud):
    collect(store, volume=[volume("v")])
    cloud.volumes["v"] = volume("v")
    cloud.during_copy = lambda: cloud.volumes["v"].update(
        status="in-use", attached_server_ids=["s1"]
    )
    body = """
  - name: old-volumes
    resource: volume
    filters: [{status: available}]
    actions: [{type: delete, backup: true}]
    safety: {max_percent: 100}
"""
    candidate = only(run(store, cloud, body))
    assert candidate.verdict == "skipped"
    assert "nothing deleted" in candidate.reason
    assert cloud.calls == [("backup", "v")] and "v" in cloud.volumes


def test_a_volume_tagged_for_exclusion_by_metadata_is_not_deleted(store, cloud):
    """Volume records carry no metadata: only the live re-read can see the key."""
    collect(store, volume=[volume("v")])
    cloud.volumes["v"] = volume("v", metadata={"stackfleet-exclude": "yes"})
    body = """
  - name: old-volumes
    resource: volume
    filters: [{status: available}]
    actions: [delete]
    safety: {max_percent: 100}
"""
    candidate = only(run(store, cloud, body))
    assert candidate.verdict == "skipped" and "metadata key" in candidate.reason
    assert cloud.calls == []


def test_a_field_the_plan_expects_but_the_live_record_lacks_means_do_not_act():
    assert "has no 'status'" in mismatch({"status": "SHUTOFF"}, {"tags": []})
    assert mismatch({"status": "SHUTOFF"}, {"status": "SHUTOFF"}) == ""
    assert mismatch({"port_id": None}, {"port_id": ""}) == ""


STOP_ACTIVE = """
  - name: stopper
    resource: server
    filters: [{status: ACTIVE}]
    actions: [stop]
    safety: {max_percent: 100}
"""


def test_any_exception_fails_one_action_and_the_run_goes_on(store, cloud):
    collect(store, server=[server("a", "ACTIVE"), server("b", "ACTIVE")])
    cloud.servers["a"] = server("a", "ACTIVE")
    cloud.servers["b"] = server("b", "ACTIVE")

    def broken(sid: str) -> None:
        if sid == "a":
            raise RuntimeError("boom")
        cloud.calls.append(("stop", sid))
        cloud.servers[sid].update(status="SHUTOFF", power_state="SHUTDOWN")

    cloud.compute.stop_server = broken
    report = run(store, cloud, STOP_ACTIVE)
    verdicts = {c.record["id"]: (c.verdict, c.reason) for c in report.policies[0].candidates}
    assert verdicts["a"] == ("failed", "RuntimeError: boom")
    assert verdicts["b"][0] == "succeeded"
    rows = {r["resource_id"]: r for r in action_records.list_actions(store)[0]}
    assert rows["a"]["status"] == "failed" and rows["a"]["error"] == "RuntimeError: boom"
    events = [(e["target"], e["event"]) for e in AuditLog(store).list()[0]]
    assert ("c/r/server/a", "action.started") in events
    assert ("c/r/server/a", "action.failed") in events


def test_a_notice_with_a_newline_in_a_header_fails_and_is_not_done(store, cloud, hook):
    collect(store, server=[server("a", name="vm\nBcc: everyone@example.org")])
    settings = Settings.model_validate(
        {"notify": {"smtp_host": "127.0.0.1", "smtp_port": 9, "webhook": hook.url}}
    )
    body = """
  - name: tell
    resource: server
    filters: [{status: SHUTOFF}]
    actions: [{type: notify, to: [ops@example.org], subject: "about {name}"}]
"""
    first = only(run(store, cloud, body, settings=settings))
    assert first.verdict == "failed" and "linefeed" in first.reason
    assert not first.took
    second = only(run(store, cloud, body, settings=settings))
    assert second.verdict == "failed"  # tried again, never counted done
    [row] = action_records.list_actions(store)[0]
    assert row["status"] == "failed"


def _running_action(store, cloud, started: datetime) -> int:
    """Plan the stop of server a, then leave its record `running` as a crashed run
    would, started at `started`."""
    collect(store, server=[server("a", "ACTIVE")])
    cloud.servers["a"] = server("a", "ACTIVE")
    report = PolicyRunner(store, Settings()).run(load_text("policies:\n" + STOP_ACTIVE))
    key = only(report).key
    return action_records.create(
        store,
        idempotency_key=key,
        policy="stopper",
        action="stop",
        cloud="c",
        region="r",
        kind="server",
        resource_id="a",
        status="running",
        destructive=True,
        plan={},
        created_at=started,
        updated_at=started,
        executed_at=started,
    )


def test_a_crashed_runs_running_action_is_not_done_and_is_tried_again(store, cloud):
    action_id = _running_action(store, cloud, NOW - timedelta(hours=3))
    candidate = only(run(store, cloud, STOP_ACTIVE))
    assert candidate.action_id == action_id
    assert candidate.verdict in ("succeeded", "unverified")
    assert ("stop", "a") in cloud.calls


def test_an_action_running_in_another_run_is_neither_repeated_nor_done(store, cloud):
    _running_action(store, cloud, NOW - timedelta(minutes=1))
    candidate = only(run(store, cloud, STOP_ACTIVE))
    assert candidate.verdict == "deferred" and "in progress in another run" in candidate.reason
    assert not candidate.took
    assert cloud.calls == []


FIP_LIFECYCLE = """
  - name: fips
    resource: floating_ip
    filters: [{port_id: empty}]
    actions: [{type: lifecycle, stop_after: 7d}]
"""


def test_a_floating_ip_attached_since_the_pass_is_neither_marked_nor_noticed(store, cloud, hook):
    """The lifecycle's mark and notice re-check the floating IP's own port_id on the
    live record: a pass that missed the association cannot make it look unused."""
    collect(
        store,
        floating_ip=[{"id": "f1", "name": "1.2.3.4", "project_id": "p1", "port_id": None}],
    )
    cloud.fips["f1"] = {"port_id": "port-9"}
    settings = Settings.model_validate({"notify": {"webhook": hook.url}})
    posts = len(hook.posts)
    report = run(store, cloud, FIP_LIFECYCLE, settings=settings)
    verdicts = {c.plan.action: (c.verdict, c.reason) for c in report.policies[0].candidates}
    assert verdicts["tag"][0] == "skipped"
    assert "port_id is now 'port-9'" in verdicts["tag"][1]
    assert verdicts["notify"][0] == "blocked"
    assert "port_id is now 'port-9'" in verdicts["notify"][1]
    assert cloud.calls == [] and len(hook.posts) == posts
    assert leases.list_leases(store) == []


def test_an_unattached_floating_ip_is_marked_and_noticed(store, cloud, hook):
    collect(
        store,
        floating_ip=[{"id": "f1", "name": "1.2.3.4", "project_id": "p1", "port_id": None}],
    )
    cloud.fips["f1"] = {"port_id": None}
    settings = Settings.model_validate({"notify": {"webhook": hook.url}})
    report = run(store, cloud, FIP_LIFECYCLE, settings=settings)
    assert {c.verdict for c in report.policies[0].candidates} == {"succeeded"}
    assert [row["stage"] for row in leases.list_leases(store)] == ["marked"]


SHUTOFF_LIFECYCLE = """
  - name: lease
    resource: server
    filters: [{status: SHUTOFF}]
    actions: [{type: lifecycle, stop_after: 7d, delete_after: 5d}]
"""


def test_a_lease_extended_while_a_run_goes_on_holds_the_step_back(store, cloud, hook, monkeypatch):
    """The owner extends after the run read the lifecycles: the stop step planned on
    the old deadline does not run, and recording nothing loses the extension."""
    collect(store, server=[server("a")])
    cloud.servers["a"] = server("a")
    settings = Settings.model_validate(
        {"notify": {"webhook": hook.url}, "verify_timeout": "1s", "poll_interval": "1s"}
    )
    run(store, cloud, SHUTOFF_LIFECYCLE, settings=settings, now=NOW)
    [row] = leases.list_leases(store)
    assert row["stage"] == "marked"
    read = leases.active

    def read_then_extended(store_: Any, policy: str) -> Any:
        rows = read(store_, policy)
        leases.extend(store_, "a", 3, NOW + timedelta(days=8))
        return rows

    monkeypatch.setattr(leases, "active", read_then_extended)
    cloud.calls.clear()
    report = run(store, cloud, SHUTOFF_LIFECYCLE, settings=settings, now=NOW + timedelta(days=8))
    candidates = report.policies[0].candidates
    assert candidates and {c.verdict for c in candidates} == {"deferred"}
    assert all("the lease was extended" in c.reason for c in candidates)
    assert cloud.calls == []
    [after] = leases.list_leases(store)
    assert after["stage"] == "marked" and after["extended_days"] == 3
    assert [h["step"] for h in after["history"]] == ["mark", "extended"]


def test_a_server_excluded_after_the_pass_gets_no_lifecycle_notice(store, cloud, hook):
    """The mark is skipped on the live record (excluded since the pass): the step's
    notice does not go out on the strength of the stale record."""
    collect(store, server=[server("a")])
    cloud.servers["a"] = server("a", metadata={"stackfleet-exclude": "1"})
    settings = Settings.model_validate({"notify": {"webhook": hook.url}})
    posts = len(hook.posts)
    report = run(store, cloud, SHUTOFF_LIFECYCLE, settings=settings, now=NOW)
    verdicts = {c.plan.action: (c.verdict, c.reason) for c in report.policies[0].candidates}
    assert verdicts["set-metadata"][0] == "skipped"
    assert verdicts["notify"][0] == "blocked"
    assert "was skipped (excluded by metadata key" in verdicts["notify"][1]
    assert len(hook.posts) == posts and leases.list_leases(store) == []


def test_a_reminder_about_a_floating_ip_attached_since_the_pass_is_not_sent(store, cloud, hook):
    collect(
        store,
        floating_ip=[{"id": "f1", "name": "1.2.3.4", "project_id": "p1", "port_id": None}],
    )
    cloud.fips["f1"] = {"port_id": None}
    settings = Settings.model_validate({"notify": {"webhook": hook.url}})
    run(store, cloud, FIP_LIFECYCLE, settings=settings, now=NOW)
    cloud.fips["f1"]["port_id"] = "port-9"
    posts = len(hook.posts)
    report = run(store, cloud, FIP_LIFECYCLE, settings=settings, now=NOW + timedelta(days=5.5))
    [notice] = report.policies[0].candidates
    assert notice.plan.action == "notify" and notice.verdict == "skipped"
    assert "port_id is now 'port-9'" in notice.reason
    assert len(hook.posts) == posts
    [row] = leases.list_leases(store)
    assert row["reminded"] == []


def test_a_dry_run_leaves_a_crashed_runs_record_alone(store, cloud):
    action_id = _running_action(store, cloud, NOW - timedelta(hours=3))
    report = PolicyRunner(store, Settings(), cloud).run(load_text("policies:\n" + STOP_ACTIVE))
    assert only(report).verdict == "planned"
    assert action_records.get(store, action_id)["status"] == "running"
    assert cloud.calls == []


def test_a_lease_never_starts_on_a_notice_that_crashed(store, cloud):
    """A name with a newline makes the e-mail header unbuildable (ValueError, not an
    ActionError): the notice fails, the run goes on, and no later run counts it sent."""
    collect(store, server=[server("a", name="vm-a\nBcc: everyone@example.org")])
    cloud.servers["a"] = server("a")
    settings = Settings.model_validate(
        {
            "notify": {
                "smtp_host": "127.0.0.1",
                "smtp_port": 9,
                "default_recipients": ["ops@example.org"],
                "keystone_email": False,
            }
        }
    )
    for _ in range(2):
        report = run(store, cloud, SHUTOFF_LIFECYCLE, settings=settings, now=NOW)
        verdicts = {c.plan.action: c.verdict for c in report.policies[0].candidates}
        assert verdicts["notify"] == "failed"
        # the mark took: its step is begun (pending), no lease runs
        assert [r["stage"] for r in leases.list_leases(store)] == ["pending"]
        assert leases.list_leases(store, stage="active") == []
    [notice] = [r for r in action_records.list_actions(store)[0] if r["action"] == "notify"]
    assert notice["status"] == "failed" and "ValueError" in notice["error"]


UNREACHABLE_SMTP = {
    "notify": {
        "smtp_host": "127.0.0.1",
        "smtp_port": 9,
        "default_recipients": ["ops@example.org"],
        "keystone_email": False,
    }
}


def test_a_begun_mark_step_is_carried_on_with_the_same_deadline(store, cloud):
    """The mark took, the notice failed: the next run (a day later) tries the notice
    again under the same key, says the same deadline, and does not mark again."""
    collect(store, server=[server("a")])
    cloud.servers["a"] = server("a")
    settings = Settings.model_validate(UNREACHABLE_SMTP)
    first = run(store, cloud, SHUTOFF_LIFECYCLE, settings=settings, now=NOW)
    [row] = leases.list_leases(store)
    mark = cloud.servers["a"]["metadata"]["stackfleet-lifecycle"]
    second = run(store, cloud, SHUTOFF_LIFECYCLE, settings=settings, now=NOW + timedelta(days=1))
    keys = [{c.plan.action: c.key for c in r.policies[0].candidates} for r in (first, second)]
    assert keys[0] == keys[1]
    verdicts = {c.plan.action: c.verdict for c in second.policies[0].candidates}
    assert verdicts == {"set-metadata": "done", "notify": "failed"}
    assert cloud.servers["a"]["metadata"]["stackfleet-lifecycle"] == mark
    assert [r["stage"] for r in leases.list_leases(store)] == ["pending"]
    assert leases.list_leases(store)[0]["next_at"] == row["next_at"]


def test_a_begun_mark_step_on_a_server_used_again_takes_its_mark_back(store, cloud):
    """The mark took, the notice failed, then the server is started: the begun step
    ends (cancelled), the mark is removed, and nobody is told of a lease that never
    began."""
    collect(store, server=[server("a")])
    cloud.servers["a"] = server("a")
    settings = Settings.model_validate(UNREACHABLE_SMTP)
    run(store, cloud, SHUTOFF_LIFECYCLE, settings=settings, now=NOW)
    assert "stackfleet-lifecycle" in cloud.servers["a"]["metadata"]
    cloud.servers["a"]["status"] = "ACTIVE"
    # the pass sees the server running, with the mark the begun step set
    collect(store, server=[server("a", "ACTIVE", metadata=dict(cloud.servers["a"]["metadata"]))])
    report = run(store, cloud, SHUTOFF_LIFECYCLE, settings=settings, now=NOW + timedelta(hours=1))
    assert [c.plan.action for c in report.policies[0].candidates] == ["clear-metadata"]
    assert "stackfleet-lifecycle" not in cloud.servers["a"]["metadata"]
    assert [r["stage"] for r in leases.list_leases(store)] == ["cancelled"]
