"""The store: passes, upserts, history, and the rule that only a complete listing
marks resources gone. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from stackfleet.core.errors import InvalidQueryError, NotFoundError
from stackfleet.store import Store


def server(sid: str, status: str = "ACTIVE", host: str = "cmp1", **extra) -> dict:
    return {
        "id": sid,
        "name": f"vm-{sid}",
        "status": status,
        "project_id": "p1",
        "host": host,
        "hypervisor_hostname": host,
        "vcpus": 2,
        "locked": False,
        "tags": [],
        **extra,
    }


def one_pass(
    store: Store, records: list[dict], complete: bool = True, kind="server", cloud="c1", region="r1"
) -> int:
    pass_id = store.begin_pass(cloud, region)
    store.record_kind(pass_id, cloud, region, kind, records, complete)
    store.finish_pass(pass_id, "complete" if complete else "partial", None, 1)
    return pass_id


def test_complete_pass_marks_unseen_resources_gone(any_store):
    one_pass(any_store, [server("a"), server("b")])
    one_pass(any_store, [server("a")])
    live, total = any_store.list_resources("server")
    assert [r["id"] for r in live] == ["a"] and total == 1
    everything, _ = any_store.list_resources("server", include_deleted=True)
    gone = {r["id"]: r["deleted_at"] for r in everything}
    assert gone["b"] is not None and gone["a"] is None


def test_incomplete_pass_marks_nothing_gone(any_store):
    one_pass(any_store, [server("a"), server("b")])
    one_pass(any_store, [], complete=False)
    live, _ = any_store.list_resources("server")
    assert {r["id"] for r in live} == {"a", "b"}


def test_resource_seen_again_comes_back(any_store):
    one_pass(any_store, [server("a")])
    one_pass(any_store, [])
    one_pass(any_store, [server("a")])
    live, _ = any_store.list_resources("server")
    assert [r["id"] for r in live] == ["a"]


def test_history_records_status_and_host_changes(any_store):
    one_pass(any_store, [server("a")])
    one_pass(any_store, [server("a", status="SHUTOFF", host="cmp2")])
    detail = any_store.get_resource("server", "a")
    changes = {(c["field"], c["old"], c["new"]) for c in detail["changes"]}
    assert ("status", "ACTIVE", "SHUTOFF") in changes
    assert ("host", "cmp1", "cmp2") in changes
    assert detail["first_seen"] <= detail["last_changed"]


def test_unchanged_resource_records_no_history(any_store):
    one_pass(any_store, [server("a")])
    one_pass(any_store, [server("a")])
    assert any_store.get_resource("server", "a")["changes"] == []


def test_filters_use_field_types(any_store):
    one_pass(any_store, [server("a", vcpus=2), server("b", vcpus=8, locked=True)])
    assert [r["id"] for r in any_store.list_resources("server", {"vcpus": "8"})[0]] == ["b"]
    assert [r["id"] for r in any_store.list_resources("server", {"locked": "true"})[0]] == ["b"]
    assert [r["id"] for r in any_store.list_resources("server", {"host": "cmp1"})[0]] == ["a", "b"]


def test_list_filter_matches_membership(any_store):
    one_pass(any_store, [server("a", tags=["keep"]), server("b", tags=[])])
    assert [r["id"] for r in any_store.list_resources("server", {"tags": "keep"})[0]] == ["a"]


def test_bad_filters_name_the_problem(any_store):
    with pytest.raises(InvalidQueryError, match="no field 'colour'"):
        any_store.list_resources("server", {"colour": "red"})
    with pytest.raises(InvalidQueryError, match="expected an integer"):
        any_store.list_resources("server", {"vcpus": "many"})
    with pytest.raises(InvalidQueryError, match="unknown resource kind"):
        any_store.list_resources("spaceship")


def test_paging_keeps_the_total(any_store):
    one_pass(any_store, [server(str(i)) for i in range(10)])
    page, total = any_store.list_resources("server", limit=3, offset=3)
    assert total == 10 and len(page) == 3


def test_clouds_and_regions_are_kept_apart(any_store):
    one_pass(any_store, [server("a")], cloud="c1", region="r1")
    one_pass(any_store, [server("a")], cloud="c1", region="r2")
    one_pass(any_store, [], cloud="c1", region="r2")  # complete and empty in r2 only
    live, _ = any_store.list_resources("server")
    assert [(r["id"], r["region"]) for r in live] == [("a", "r1")]


def test_relations_both_ways(any_store):
    one_pass(any_store, [server("a")])
    pass_id = any_store.begin_pass("c1", "r1")
    any_store.record_kind(
        pass_id,
        "c1",
        "r1",
        "port",
        [{"id": "p1", "name": "", "status": "ACTIVE", "device_id": "a", "network_id": "n1"}],
        True,
    )
    any_store.record_kind(
        pass_id,
        "c1",
        "r1",
        "hypervisor",
        [
            {
                "id": "h1",
                "name": "cmp1",
                "status": "up",
                "hypervisor_hostname": "cmp1",
                "host": "cmp1",
            }
        ],
        True,
    )
    detail = any_store.get_resource("server", "a")
    assert [p["id"] for p in detail["relations"]["ports"]] == ["p1"]
    assert [h["id"] for h in detail["relations"]["hypervisor"]] == ["h1"]
    hyp = any_store.get_resource("hypervisor", "h1")
    assert [s["id"] for s in hyp["relations"]["servers"]] == ["a"]


def test_missing_resource_is_not_found(any_store):
    with pytest.raises(NotFoundError):
        any_store.get_resource("server", "nope")


def test_pass_records_list_per_kind_outcome(any_store):
    pass_id = any_store.begin_pass("c1", "r1")
    any_store.record_kind(pass_id, "c1", "r1", "server", [server("a")], True)
    any_store.record_kind(pass_id, "c1", "r1", "port", [], False, error="HTTP 500")
    any_store.finish_pass(pass_id, "partial", "port: HTTP 500", 3)
    [record] = any_store.list_passes()
    assert record["status"] == "partial"
    assert record["kinds"]["port"] == {
        "complete": False,
        "count": 0,
        "requests": 0,
        "seconds": 0.0,
        "error": "HTTP 500",
    }


def test_an_empty_filter_value_matches_unset_fields(any_store):
    one_pass(any_store, [server("a", key_name=None), server("b", key_name="ops")])
    assert [r["id"] for r in any_store.list_resources("server", {"key_name": ""})[0]] == ["a"]


def _shrink_pass(store: Store, records: list[dict]):
    from stackfleet.store.inventory import ShrinkLimit

    pass_id = store.begin_pass("c1", "r1")
    outcome = store.record_kind(
        pass_id, "c1", "r1", "server", records, True, shrink=ShrinkLimit(10.0, 10)
    )
    store.finish_pass(pass_id, "complete", None, 1)
    return outcome


def test_a_sharp_shrink_is_held_until_the_next_pass_confirms_it(any_store):
    fleet = [server(f"s{i:03}") for i in range(100)]
    _shrink_pass(any_store, fleet)
    held = _shrink_pass(any_store, fleet[:10])
    assert held.gone == 0 and held.held and "misses 90 of 100 servers" in held.held
    assert any_store.list_resources("server", limit=1000)[1] == 100
    kinds = any_store.list_passes(1)[0]["kinds"]["server"]
    assert kinds["complete"] is False and kinds["error"].startswith("suspect shrink")
    confirmed = _shrink_pass(any_store, fleet[:10])
    assert confirmed.held is None and confirmed.gone == 90
    assert any_store.list_resources("server", limit=1000)[1] == 10


def test_a_shrink_under_the_limit_or_a_full_listing_after_a_hold_marks_normally(any_store):
    fleet = [server(f"s{i:03}") for i in range(100)]
    _shrink_pass(any_store, fleet)
    # 10 gone: not more than 10, believed at once
    assert _shrink_pass(any_store, fleet[10:]).gone == 10
    # 30 of 90 gone: held; then the full list again: nothing gone, and the hold is over
    assert _shrink_pass(any_store, fleet[40:]).held
    assert _shrink_pass(any_store, fleet[10:]).gone == 0
    assert _shrink_pass(any_store, fleet[40:]).held  # a new shrink is held again
    assert any_store.list_resources("server", limit=1000)[1] == 90


def test_truncations_of_different_sizes_do_not_confirm_each_other(any_store):
    fleet = [server(f"s{i:03}") for i in range(100)]
    _shrink_pass(any_store, fleet)
    assert _shrink_pass(any_store, fleet[:10]).held
    assert _shrink_pass(any_store, fleet[:50]).held  # cut elsewhere: not a confirmation
    confirmed = _shrink_pass(any_store, fleet[:45])  # about the same size: confirmed
    assert confirmed.held is None and confirmed.gone == 55
