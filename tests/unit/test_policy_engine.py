"""Policy runs over the store: findings open and resolve with complete passes, the
safety gate decides what may run, actions are idempotent, and the audit log is a
hash chain that detects edits and deletions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sinks import Capture
from sqlalchemy import delete, text, update

from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy import load_files, load_text
from stackfleet.store import action_records
from stackfleet.store.audit import GENESIS, AuditLog
from stackfleet.store.findings import list_findings
from stackfleet.store.schema import AuditEntry, AuditHead

NOW = datetime.now(UTC)


def server(id: str, status: str = "SHUTOFF", **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"vm-{id}",
        "project_id": "p1",
        "status": status,
        "tags": [],
        "metadata": {},
        **fields,
    }


def collect(store, complete: dict[str, bool] | None = None, **kinds: list[dict[str, Any]]) -> int:
    """Record one pass that saw `kinds` (cloud c, region r)."""
    pass_id = store.begin_pass("c", "r")
    for kind, records in kinds.items():
        store.record_kind(pass_id, "c", "r", kind, records, (complete or {}).get(kind, True))
    store.finish_pass(pass_id, "complete", None, 0)
    return pass_id


def policies(body: str) -> list:
    return load_text("policies:\n" + body)


SHUTOFF = """
  - name: shutoff
    resource: server
    filters: [{status: SHUTOFF}]
"""


HOOK: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def notice_webhook():
    """Notices need somewhere to go (one that reaches nobody is not verified): the
    default settings of these tests send them to a local webhook."""
    capture = Capture()
    HOOK["url"] = capture.url
    yield capture
    capture.close()


def run(store, text: str, execute: bool = False, settings: Settings | None = None, **kw: Any):
    settings = settings or Settings.model_validate({"notify": {"webhook": HOOK["url"]}})
    return PolicyRunner(store, settings).run(policies(text), execute=execute, **kw)


def verdicts(report) -> list[tuple[str, str]]:
    return sorted((c.record["id"], c.verdict) for p in report.policies for c in p.candidates)


def test_a_match_opens_a_finding_once(store):
    collect(store, server=[server("a"), server("b", "ACTIVE")])
    run(store, SHUTOFF)
    run(store, SHUTOFF)
    rows, total = list_findings(store, status="open")
    assert total == 1
    assert (rows[0]["policy"], rows[0]["resource_id"]) == ("shutoff", "a")


def test_a_finding_resolves_when_a_complete_pass_no_longer_matches(store):
    collect(store, server=[server("a")])
    run(store, SHUTOFF)
    collect(store, server=[server("a", "ACTIVE")])
    report = run(store, SHUTOFF)
    assert report.policies[0].findings.resolved == 1
    [row], _ = list_findings(store, status="resolved")
    assert row["resource_id"] == "a" and row["resolved_at"]


def test_a_finding_resolves_when_the_resource_is_gone(store):
    collect(store, server=[server("a")])
    run(store, SHUTOFF)
    collect(store, server=[])
    run(store, SHUTOFF)
    assert list_findings(store, status="open")[1] == 0


def test_an_incomplete_pass_resolves_nothing(store):
    collect(store, server=[server("a"), server("b")])
    run(store, SHUTOFF)
    # a failed listing saw only b: a is neither gone nor resolved
    collect(store, complete={"server": False}, server=[server("b", "ACTIVE")])
    report = run(store, SHUTOFF)
    assert report.policies[0].incomplete == {("c", "r"): ["server"]}
    assert {r["resource_id"] for r in list_findings(store, status="open")[0]} == {"a", "b"}


FIP_RELEASE = """
  - name: fips
    resource: floating_ip
    filters: [{type: relation, relation: port, absent: true}]
    actions: [release]
    safety: {max_percent: 100}
"""


def test_an_incomplete_listing_of_a_related_kind_blocks_destructive_actions(store):
    collect(
        store,
        complete={"port": False},
        floating_ip=[
            {"id": "f1", "name": "1.2.3.4", "project_id": "p1", "status": "DOWN", "port_id": None}
        ],
        port=[],
    )
    report = run(store, FIP_RELEASE, execute=True)
    [candidate] = report.policies[0].candidates
    assert candidate.verdict == "blocked"
    assert "incomplete for port" in candidate.reason
    assert list_findings(store)[1] == 0


def test_release_skips_a_floating_ip_that_points_at_a_port(store):
    collect(
        store,
        floating_ip=[
            {"id": "f1", "name": "1.2.3.4", "project_id": "p1", "status": "DOWN", "port_id": "p9"}
        ],
        port=[],
    )
    report = run(store, FIP_RELEASE, execute=True)
    assert report.policies[0].candidates == []
    [(record, skip)] = report.policies[0].skipped
    assert skip.reason == "associated with port p9"


def test_dry_run_plans_with_a_diff_and_changes_nothing(store):
    collect(store, server=[server("a")])
    report = run(store, SHUTOFF.replace("filters", "actions: [lock]\n    filters"))
    [candidate] = report.policies[0].candidates
    assert candidate.verdict == "planned"
    assert candidate.plan.diff_lines() == ["-locked: False", "+locked: True"]
    assert action_records.list_actions(store)[1] == 0
    assert AuditLog(store).list()[1] == 0


def test_deleting_a_server_plans_to_keep_its_attached_volumes(store):
    collect(store, server=[server("a", volume_ids=["v1", "v2"]), server("b")])
    text = SHUTOFF + "    actions: [delete]\n    safety: {max_percent: 100}\n"
    plans = {c.record["id"]: c.plan.diff_lines() for c in run(store, text).policies[0].candidates}
    assert plans["a"] == ["-server: vm-a (SHUTOFF)", "+volumes kept (detached): v1, v2"]
    assert plans["b"] == ["-server: vm-b (SHUTOFF)"]


def test_blast_radius_blocks_a_policy_matching_too_much_of_a_kind(store):
    collect(store, server=[server(str(i), "ACTIVE") for i in range(10)])
    stop_active = """
  - name: stop-all
    resource: server
    filters: [{status: ACTIVE}]
    actions: [stop]
"""
    capped = run(store, stop_active + "    safety: {max_percent: 50}\n")
    assert {c.verdict for c in capped.policies[0].candidates} == {"blocked"}
    assert (
        capped.policies[0]
        .candidates[0]
        .reason.startswith(
            "blast radius: 10 of 10 servers in c/r (plus 0 earlier in this run) exceeds "
            "max_percent 50% (at most 5)"
        )
    )
    allowed = run(store, stop_active + "    safety: {max_percent: 100}\n")
    assert {c.verdict for c in allowed.policies[0].candidates} == {"planned"}


def test_the_exclusion_tag_and_metadata_key_exclude_resources(store):
    collect(
        store,
        server=[
            server("a", tags=["stackfleet-exclude"]),
            server("b", metadata={"stackfleet-exclude": "yes"}),
            server("c"),
        ],
    )
    text = SHUTOFF + "    actions: [lock]\n"
    assert verdicts(run(store, text)) == [("a", "excluded"), ("b", "excluded"), ("c", "planned")]


def test_excluded_projects_by_name_or_id_are_never_acted_on(store):
    collect(
        store,
        server=[
            server("a", project_id="p-admin"),
            server("b", project_id="p2"),
            server("c", project_id="p3"),
        ],
        project=[
            {"id": "p-admin", "name": "admin"},
            {"id": "p2", "name": "research"},
            {"id": "p3", "name": "web"},
        ],
    )
    text = SHUTOFF + "    actions: [lock]\n    safety: {exclude_projects: [admin, p2]}\n"
    assert verdicts(run(store, text)) == [("a", "excluded"), ("b", "excluded"), ("c", "planned")]


NOTIFY = """
  - name: tell
    resource: server
    filters: [{status: SHUTOFF}]
    actions: [{type: notify, to: [ops@example.org]}]
"""


def test_per_run_rate_limit_defers_the_rest(store):
    collect(store, server=[server(str(i)) for i in range(5)])
    report = run(store, NOTIFY + "    safety: {max_actions: 2}\n", execute=True)
    assert sorted(c.verdict for c in report.policies[0].candidates) == [
        "deferred",
        "deferred",
        "deferred",
        "succeeded",
        "succeeded",
    ]


def test_rate_limit_over_time_counts_earlier_runs(store):
    collect(store, server=[server(str(i)) for i in range(3)])
    limited = NOTIFY + "    safety: {rate_limit: {count: 2, per: 1h}}\n"
    first = run(store, limited, execute=True)
    assert sorted(c.verdict for c in first.policies[0].candidates) == [
        "deferred",
        "succeeded",
        "succeeded",
    ]
    second = run(store, limited, execute=True)
    assert sorted(c.verdict for c in second.policies[0].candidates) == ["deferred", "done", "done"]


def test_an_action_is_not_repeated_by_a_later_run(store):
    collect(store, server=[server("a")])
    first = run(store, NOTIFY, execute=True)
    second = run(store, NOTIFY, execute=True)
    assert verdicts(first) == [("a", "succeeded")]
    assert verdicts(second) == [("a", "done")]
    assert action_records.list_actions(store)[1] == 1


def test_an_approval_queues_the_action_until_approved(store):
    collect(store, server=[server("a")])
    text = NOTIFY + "    safety: {require_approval: true}\n"
    first = run(store, text, execute=True)
    [candidate] = first.policies[0].candidates
    assert candidate.verdict == "awaiting-approval"
    assert run(store, text, execute=True).policies[0].candidates[0].verdict == "awaiting-approval"
    action_records.decide(store, candidate.action_id, True, "alice", NOW)
    assert verdicts(run(store, text, execute=True)) == [("a", "succeeded")]
    events = [e["event"] for e in reversed(AuditLog(store).list()[0])]
    assert events == ["approval.requested", "action.started", "action.completed"]


def test_a_rejected_action_never_runs(store):
    collect(store, server=[server("a")])
    text = NOTIFY + "    safety: {require_approval: true}\n"
    [candidate] = run(store, text, execute=True).policies[0].candidates
    action_records.decide(store, candidate.action_id, False, "bob", NOW)
    assert verdicts(run(store, text, execute=True)) == [("a", "rejected")]


def test_executed_actions_have_audit_entries_before_and_after(store):
    collect(store, server=[server("a")])
    run(store, NOTIFY, execute=True)
    entries, _ = AuditLog(store).list()
    assert [e["event"] for e in reversed(entries)] == ["action.started", "action.completed"]
    assert all(e["target"] == "c/r/server/a" and e["policy"] == "tell" for e in entries)
    assert entries[0]["details"]["verified"] is True


def state_age_policy(days: int) -> str:
    return f"""
  - name: long-off
    resource: server
    filters:
      - status: SHUTOFF
      - {{type: age, state: status, older_than: {days}d}}
"""


def test_state_age_uses_the_services_save_stamp_and_keeps_it(store):
    stopped = (NOW - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    collect(store, server=[server("a", updated=stopped)])
    assert run(store, state_age_policy(30)).policies[0].matched
    # a metadata edit bumps `updated` but not the state: still SHUTOFF for 40 days
    touched = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    collect(store, server=[server("a", updated=touched, metadata={"k": "v"})])
    assert [r["id"] for r in run(store, state_age_policy(30)).policies[0].matched] == ["a"]


def test_state_age_restarts_when_the_state_changes(store):
    stopped = (NOW - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    collect(store, server=[server("a", updated=stopped)])
    run(store, state_age_policy(30))
    collect(store, server=[server("a", "ACTIVE", updated=stopped)])
    collect(store, server=[server("a", "SHUTOFF", updated=stopped)])
    assert run(store, state_age_policy(30)).policies[0].matched == []


def test_audit_verify_passes_an_intact_chain(store):
    log = AuditLog(store)
    for n in range(5):
        log.append("test.event", {"n": n, "at": NOW})
    result = log.verify()
    assert result.ok and result.entries == 5 and result.head_seq == 5


def test_audit_verify_detects_an_edited_entry(store):
    log = AuditLog(store)
    for n in range(4):
        log.append("test.event", {"n": n})
    with store.sessions.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(details={"n": 99}))
    result = log.verify()
    assert not result.ok
    assert "entry 2 was edited: its content does not match its hash" in result.problems


def test_audit_verify_detects_a_deleted_entry(store):
    log = AuditLog(store)
    for n in range(4):
        log.append("test.event", {"n": n})
    with store.sessions.begin() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    result = log.verify()
    assert not result.ok
    assert any("entry 3 deleted" in p for p in result.problems)


def test_audit_verify_detects_deleting_the_newest_entries(store):
    log = AuditLog(store)
    for n in range(4):
        log.append("test.event", {"n": n})
    with store.sessions.begin() as session:
        session.execute(text("DELETE FROM audit_log WHERE seq >= 3"))
    result = log.verify()
    assert not result.ok
    assert any("newest entries were deleted" in p for p in result.problems)


def test_audit_verify_detects_a_rewritten_entry_with_a_fresh_hash(store):
    log = AuditLog(store)
    for n in range(3):
        log.append("test.event", {"n": n})
    from stackfleet.store.audit import _content, entry_hash

    with store.sessions.begin() as session:
        row = session.get(AuditEntry, 1)
        row.details = {"n": 42}
        row.hash = entry_hash(
            row.prev_hash, _content(1, row.at, row.actor, row.event, None, None, None, {"n": 42})
        )
    result = log.verify()
    assert not result.ok
    assert any("entry 2 does not follow entry 1" in p for p in result.problems)


def test_the_default_lease_goes_to_new_servers_not_to_every_server_seen_first(store):
    [lease] = [p for p in load_files(["pack:waste"]) if p.name == "server-lease"]
    collect(
        store,
        server=[
            server("new", "ACTIVE", created=(NOW - timedelta(hours=3)).isoformat()),
            server("old", "ACTIVE", created=(NOW - timedelta(days=200)).isoformat()),
        ],
    )
    report = PolicyRunner(store, Settings()).run([lease], record_findings=False)
    assert [r["id"] for r in report.policies[0].matched] == ["new"]


def test_a_notice_that_reaches_nobody_is_not_verified(store):
    """Without SMTP, recipients or a webhook a notice tells nobody: it fails, so a
    lifecycle never starts its grace period on the strength of it."""
    collect(store, server=[server("a")])
    report = run(store, NOTIFY, execute=True, settings=Settings())
    [candidate] = report.policies[0].candidates
    assert candidate.verdict == "unverified"
    assert "reached nobody" in candidate.reason


def _keyed(store, tmp_path, name="audit.key"):
    from stackfleet.store.audit import load_key

    return AuditLog(store, load_key(tmp_path / name))


def test_the_audit_key_is_made_once_readable_by_its_owner_only(tmp_path):
    from stackfleet.store.audit import load_key

    first = load_key(tmp_path / "audit.key")
    assert (tmp_path / "audit.key").stat().st_mode & 0o777 == 0o600
    assert load_key(tmp_path / "audit.key").id == first.id
    assert first.secret.hex() not in repr(first)


def test_a_database_writer_without_the_key_cannot_forge_an_entry(store, tmp_path):
    """Rewriting an entry and recomputing its hash as plain SHA-256 (or under another
    key) is caught: the entry no longer carries the audit key's HMAC."""
    from stackfleet.store.audit import _content, entry_hash, load_key

    log = _keyed(store, tmp_path)
    for n in range(3):
        log.append("test.event", {"n": n})
    other = load_key(tmp_path / "attacker.key")
    with store.sessions.begin() as session:
        row = session.get(AuditEntry, 3)
        content = _content(3, row.at, row.actor, row.event, None, None, None, {"n": 42})
        row.details = {"n": 42}
        row.hash = entry_hash(row.prev_hash, content, other)
        session.execute(update(AuditHead).values(hash=row.hash))
    result = log.verify()
    assert not result.ok and any("entry 3 was edited" in p for p in result.problems)
    with store.sessions.begin() as session:
        row = session.get(AuditEntry, 3)
        row.key_id = None
        row.hash = entry_hash(row.prev_hash, content)
        session.execute(update(AuditHead).values(hash=row.hash))
    result = log.verify()
    assert not result.ok
    assert any("entry 3 is unkeyed" in p for p in result.problems)


def test_entries_from_before_the_key_pass_as_an_unkeyed_prefix(store, tmp_path):
    from stackfleet.store.audit import _content, entry_hash

    # an older release wrote entry 1 as plain SHA-256 and no key_id
    old = datetime(2026, 1, 1, tzinfo=UTC)
    content = _content(1, old, "stackfleet", "old.event", None, None, None, {})
    digest = entry_hash(GENESIS, content)
    with store.sessions.begin() as session:
        session.add(
            AuditEntry(
                seq=1,
                at=old,
                actor="stackfleet",
                event="old.event",
                details={},
                prev_hash=GENESIS,
                hash=digest,
                key_id=None,
            )
        )
        session.add(AuditHead(id=1, seq=1, hash=digest))
    log = _keyed(store, tmp_path)
    log.append("new.event", {})
    result = log.verify()
    assert result.ok and result.unkeyed == 1 and result.entries == 2


def test_a_checkpoint_outside_the_database_catches_a_truncated_log(store, tmp_path):
    """Deleting the newest entries and moving the head back leaves a consistent chain:
    only the checkpoint kept elsewhere shows that entry 4 existed."""
    log = _keyed(store, tmp_path)
    for n in range(4):
        log.append("test.event", {"n": n})
    points = tmp_path / "checkpoints.jsonl"
    log.checkpoint(points)
    assert log.verify(points).ok and log.verify(points).checkpoints == 1
    with store.sessions.begin() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
        prev = session.get(AuditEntry, 3)
        session.execute(update(AuditHead).values(seq=3, hash=prev.hash))
    assert log.verify().ok  # the chain alone cannot tell
    result = log.verify(points)
    assert not result.ok
    assert any("entry 4, checkpointed at" in p and "is gone" in p for p in result.problems)


def test_an_edited_checkpoint_is_refused_naming_its_line(store, tmp_path):
    log = _keyed(store, tmp_path)
    log.append("test.event", {})
    points = tmp_path / "checkpoints.jsonl"
    log.checkpoint(points)
    point = json.loads(points.read_text())
    point["seq"] = 0
    points.write_text(json.dumps(point) + "\nnot json\n")
    problems = log.verify(points).problems
    assert any(f"{points}:1: the checkpoint's signature is wrong" in p for p in problems)
    assert any(f"{points}:2: not a checkpoint" in p for p in problems)
