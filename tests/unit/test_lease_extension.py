"""Owners' lease extensions: the cap check and the extension are one transaction that
holds the lifecycle row, so two extensions at once cannot both pass the cap (SQLite
and PostgreSQL); a run recording a step keeps an extension made meanwhile."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stackfleet.core.errors import ConflictError
from stackfleet.store import leases

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DAY = 86400.0


def lease(store, resource: str = "vm-1", cap_days: float = 10) -> int:
    return leases.create(
        store,
        policy="lease",
        cloud="c",
        region="r",
        kind="server",
        resource_id=resource,
        resource_name=resource,
        project_id="p1",
        stage="marked",
        started_at=NOW,
        next_at=NOW + timedelta(days=7),
        updated_at=NOW,
        extended_seconds=0.0,
        max_extension_seconds=cap_days * DAY,
        reminded=[],
        history=[{"step": "mark", "at": NOW.isoformat()}],
    )


def test_two_extensions_at_once_cannot_both_pass_the_cap(any_store, monkeypatch):
    lease(any_store, cap_days=10)
    # widen the window between reading the row and writing it back
    slow: set[int] = set()
    aware = leases.aware

    def slow_aware(value: Any) -> Any:
        me = threading.get_ident()
        if me not in slow:
            slow.add(me)
            time.sleep(0.5)
        return aware(value)

    monkeypatch.setattr(leases, "aware", slow_aware)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def extend() -> None:
        start.wait()
        try:
            leases.extend(any_store, "vm-1", 7, NOW)
            outcomes.append("extended")
        except ConflictError as exc:
            outcomes.append(f"refused: {exc}")
        except Exception as exc:  # noqa: BLE001 - the test reports what happened
            outcomes.append(f"error: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=extend) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(o.split(":")[0] for o in outcomes) == ["extended", "refused"], outcomes
    assert "3 days are left" in next(o for o in outcomes if o.startswith("refused"))
    [row] = leases.list_leases(any_store)
    assert row["extended_days"] == 7
    assert row["next_at"] == (NOW + timedelta(days=14)).isoformat()
    assert [h["step"] for h in row["history"]] == ["mark", "extended"]


def test_extensions_add_up_to_the_cap_and_no_further(any_store):
    lease(any_store, cap_days=10)
    leases.extend(any_store, "vm-1", 4, NOW)
    leases.extend(any_store, "vm-1", 6, NOW)
    with pytest.raises(ConflictError, match="0 days are left"):
        leases.extend(any_store, "vm-1", 1, NOW)


def test_recording_a_step_keeps_an_extension_made_meanwhile(any_store):
    lease_id = lease(any_store)
    leases.extend(any_store, "vm-1", 2, NOW)
    leases.record_step(
        any_store,
        lease_id,
        NOW,
        history_entry={"step": "refresh", "at": NOW.isoformat()},
        reminder="marked:2d",
    )
    [row] = leases.list_leases(any_store)
    assert [h["step"] for h in row["history"]] == ["mark", "extended", "refresh"]
    assert row["next_at"] == (NOW + timedelta(days=9)).isoformat()
    assert row["reminded"] == ["marked:2d"]
