"""Racing writers (two workers, or a stalled leader and its successor) cannot open two
findings for one policy and resource: the database refuses the second."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from stackfleet.store.findings import sync_findings
from stackfleet.store.schema import Finding

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _record(i: int) -> dict:
    return {"cloud": "c", "region": "r", "kind": "server", "id": f"srv-{i}", "name": f"s{i}"}


def _open_count(store) -> int:
    with store.session() as session:
        return len(list(session.scalars(select(Finding.id).where(Finding.status == "open"))))


def test_the_database_refuses_a_second_open_finding(any_store):
    row = {
        "policy": "p",
        "cloud": "c",
        "region": "r",
        "kind": "server",
        "resource_id": "srv-1",
        "severity": "low",
        "status": "open",
        "opened_at": NOW,
        "last_matched_at": NOW,
    }
    with any_store.sessions.begin() as session:
        session.execute(insert(Finding), [row])
    with pytest.raises(IntegrityError), any_store.sessions.begin() as session:
        session.execute(insert(Finding), [row])
    # a resolved one does not block a new open finding
    with any_store.sessions.begin() as session:
        session.execute(insert(Finding), [{**row, "resource_id": "srv-2", "status": "resolved"}])
        session.execute(insert(Finding), [{**row, "resource_id": "srv-2"}])


def test_concurrent_evaluations_open_each_finding_once(any_store):
    records = [_record(i) for i in range(40)]
    barrier = threading.Barrier(4)
    results: list[dict] = []
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            barrier.wait()
            sync = sync_findings(any_store, "p", "low", records, {("c", "r")}, NOW)
            results.append(sync.ids)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _open_count(any_store) == len(records)
    # every racer maps each resource to the same finding id (hence the same action keys)
    for ids in results[1:]:
        assert ids == results[0]
