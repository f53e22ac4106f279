"""A pass writes only what changed: an unchanged resource keeps its row (record, history,
change time) while its last-seen time follows the newest complete listing of its kind
(`kinds_seen`); a changed one is updated; a vanished one is marked gone and keeps the
time it was last seen. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from stackfleet.store import open_store
from stackfleet.store.encoding import encode_json, record_hash
from stackfleet.store.engine import MIGRATIONS, make_engine
from stackfleet.store.evaluation import load_records
from stackfleet.store.schema import Resource


def server(sid: str, status: str = "ACTIVE", host: str = "cmp1") -> dict:
    return {"id": sid, "name": f"vm-{sid}", "status": status, "project_id": "p1", "host": host}


def one_pass(store, records: list[dict], complete: bool = True) -> int:
    pass_id = store.begin_pass("c1", "r1")
    store.record_kind(pass_id, "c1", "r1", "server", records, complete)
    store.finish_pass(pass_id, "complete" if complete else "partial", None, 1)
    return pass_id


def stored_row(store, sid: str) -> tuple:
    """The row as written: its own seen time and pass, change time and hash."""
    with store.sessions() as session:
        return session.execute(
            select(
                Resource.row_seen, Resource.last_pass_id, Resource.last_changed, Resource.attrs_hash
            ).where(Resource.resource_id == sid)
        ).one()


def shown(store, sid: str) -> dict:
    return store.get_resource("server", sid)


def test_an_unchanged_resource_is_not_rewritten_but_shows_the_newest_pass(any_store):
    one_pass(any_store, [server("a")])
    first = shown(any_store, "a")
    row = stored_row(any_store, "a")
    one_pass(any_store, [server("a")])
    one_pass(any_store, [server("a")])
    now = shown(any_store, "a")
    assert stored_row(any_store, "a") == row
    assert now["changes"] == [] and now["last_changed"] == first["last_changed"]
    assert now["last_seen"] > first["last_seen"]
    assert now["first_seen"] == first["first_seen"]


def test_a_changed_resource_is_updated_with_its_history(any_store):
    one_pass(any_store, [server("a"), server("b")])
    before = shown(any_store, "a")
    one_pass(any_store, [server("a", status="SHUTOFF"), server("b")])
    after = shown(any_store, "a")
    assert after["status"] == "SHUTOFF"
    assert [(c["field"], c["old"], c["new"]) for c in after["changes"]] == [
        ("status", "ACTIVE", "SHUTOFF")
    ]
    assert after["last_changed"] > before["last_changed"]
    assert shown(any_store, "b")["changes"] == []


def test_a_vanished_resource_is_gone_and_keeps_when_it_was_last_seen(any_store):
    one_pass(any_store, [server("a"), server("b")])
    one_pass(any_store, [server("a"), server("b")])
    seen = shown(any_store, "b")["last_seen"]
    one_pass(any_store, [server("a")])
    gone = shown(any_store, "b")
    assert gone["deleted_at"] is not None
    assert gone["last_seen"] == seen
    one_pass(any_store, [server("a")])
    assert shown(any_store, "b")["last_seen"] == seen
    assert shown(any_store, "a")["last_seen"] > seen


def test_an_incomplete_pass_advances_only_what_it_saw(any_store):
    one_pass(any_store, [server("a"), server("b")])
    before = shown(any_store, "b")["last_seen"]
    one_pass(any_store, [server("a")], complete=False)
    assert shown(any_store, "a")["last_seen"] > before
    assert shown(any_store, "b")["last_seen"] == before
    assert shown(any_store, "b")["deleted_at"] is None


def test_a_resource_an_event_marks_gone_keeps_its_last_pass_time(any_store):
    one_pass(any_store, [server("a")])
    one_pass(any_store, [server("a")])
    seen = shown(any_store, "a")["last_seen"]
    assert any_store.mark_resource_gone("c1", "r1", "server", "a")
    one_pass(any_store, [], complete=False)
    assert shown(any_store, "a")["last_seen"] == seen


def test_an_interrupted_pass_finishing_a_kind_late_does_not_replace_the_newer_listing(any_store):
    one_pass(any_store, [server("a")])
    late = any_store.begin_pass("c1", "r1")
    newer = one_pass(any_store, [server("a")])
    seen = shown(any_store, "a")["last_seen"]
    any_store.record_kind(late, "c1", "r1", "server", [server("a")], True)
    assert shown(any_store, "a")["last_seen"] == seen
    assert newer > late


def test_policies_read_the_kinds_newest_listing_time(any_store):
    one_pass(any_store, [server("a"), server("b")])
    one_pass(any_store, [server("a"), server("b")])
    [a, b] = sorted(load_records(any_store, "server"), key=lambda r: r["id"])
    listed = datetime.fromisoformat(shown(any_store, "a")["last_seen"])
    assert a["last_seen"] == b["last_seen"] == listed


def _migrate(url: str, revision: str, down: bool = False) -> None:
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()


def test_a_first_pass_after_upgrading_from_0012_works(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _migrate(url, "0012_health")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO passes (id, cloud, region, started_at, finished_at, status, requests) "
                "VALUES (1, 'c1', 'r1', '2026-12-01 10:00:00.000000', "
                "'2026-12-01 10:01:00.000000', 'complete', 1)"
            )
        )
        for sid in ("a", "b"):
            connection.execute(
                text(
                    "INSERT INTO resources (cloud, region, kind, resource_id, name, project_id, "
                    "status, attrs, attrs_hash, first_seen, last_seen, last_changed, "
                    "last_pass_id) VALUES ('c1', 'r1', 'server', :sid, :name, 'p1', 'ACTIVE', "
                    ":attrs, :hash, '2026-12-01 10:00:30.000000', '2026-12-01 10:00:30.000000', "
                    "'2026-12-01 10:00:30.000000', 1)"
                ),
                # as 0012 stored a record: its JSON text and that text's hash
                {
                    "sid": sid,
                    "name": f"vm-{sid}",
                    "attrs": encode_json(server(sid)).decode(),
                    "hash": record_hash(server(sid)),
                },
            )
    engine.dispose()
    store = open_store(url)
    try:
        # before any new pass, the rows read as they were written
        assert shown(store, "b")["last_seen"].startswith("2026-12-01T10:00:30")
        one_pass(store, [server("a")])
        a, b = shown(store, "a"), shown(store, "b")
        assert a["status"] == "ACTIVE" and a["name"] == "vm-a" and a["changes"] == []
        assert a["last_changed"].startswith("2026-12-01T10:00:30")
        assert a["last_seen"] > "2026-12-02"
        assert b["deleted_at"] is not None
        assert b["last_seen"].startswith("2026-12-01T10:00:30")
    finally:
        store.close()


def test_a_downgrade_to_0012_writes_the_last_seen_times_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    store = open_store(url)
    one_pass(store, [server("a")])
    one_pass(store, [server("a")])
    seen = shown(store, "a")["last_seen"]
    store.close()
    _migrate(url, "0012_health", down=True)
    engine = make_engine(url)
    with engine.connect() as connection:
        written = connection.execute(text("SELECT last_seen FROM resources")).scalar_one()
    engine.dispose()
    assert datetime.fromisoformat(str(written)) == datetime.fromisoformat(seen).replace(tzinfo=None)
