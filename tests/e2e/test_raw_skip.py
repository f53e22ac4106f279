"""A pass that drops its records (the daemon's, the CLI's) builds only the items whose
JSON changed since the pass that stored them: an item listed byte for byte as before is
counted as seen and not decoded. An event's rewrite of a row, or a StackFleet that
builds records differently, makes the next pass build the item again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from stackfleet.engine.collect import collect
from stackfleet.model import kind
from stackfleet.model.workloads import META_WORKLOAD, workload_tag
from stackfleet.sources.openstack import context
from stackfleet.store import open_store
from stackfleet.store.schema import Resource

CLOUD = "sim"


@pytest.fixture
def cloud(small_cloud):
    return small_cloud


@pytest.fixture
def store(tmp_path):
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The ids of the raw items a pass decoded (to build their records)."""
    seen: list[str] = []
    original = context.decode_item

    def counting(raw):
        item = original(raw)
        seen.append(str(item.get("id") or item.get("uuid")))
        return item

    monkeypatch.setattr(context, "decode_item", counting)
    return seen


def lean_pass(clouds, store, kinds=("server",)):
    [result] = collect(
        store, CLOUD, config_files=[str(clouds)], kinds=list(kinds), keep_records=False
    )
    assert result.status == "complete", result.error
    return result


def stored(store, sid: str) -> dict:
    return store.get_resource("server", sid)


def test_unchanged_items_are_not_built_again_and_stay_seen(cloud, store, decoded):
    server, clouds = cloud
    region = server.state.regions["RegionOne"]
    first = lean_pass(clouds, store)
    assert len(decoded) == first.listings["server"].count == len(region.servers)
    decoded.clear()

    second = lean_pass(clouds, store)

    assert decoded == []
    assert second.listings["server"].count == len(region.servers)
    live, total = store.list_resources("server")
    assert total == len(region.servers)
    assert all(s["last_seen"] >= stored(store, s["id"])["first_seen"] for s in live)


def test_a_changed_item_is_built_and_stored(cloud, store, decoded):
    server, clouds = cloud
    region = server.state.regions["RegionOne"]
    lean_pass(clouds, store)
    decoded.clear()
    sid = next(iter(region.servers))
    region.servers[sid]["name"] = "renamed-by-the-cloud"

    lean_pass(clouds, store)

    assert decoded == [sid]
    assert stored(store, sid)["name"] == "renamed-by-the-cloud"


def test_a_deleted_item_is_still_marked_gone(cloud, store, decoded):
    server, clouds = cloud
    region = server.state.regions["RegionOne"]
    lean_pass(clouds, store)
    removed = next(iter(region.servers))
    del region.servers[removed]

    lean_pass(clouds, store)

    live, _ = store.list_resources("server")
    assert removed not in {s["id"] for s in live}
    assert stored(store, removed)["deleted_at"] is not None


def test_an_event_rewrite_makes_the_next_pass_build_the_item_again(cloud, store, decoded):
    """The event's copy (here one that disagrees with the cloud, as a stale
    notification's re-read could) is not kept just because the listed item did not
    change since the pass before it."""
    server, clouds = cloud
    region = server.state.regions["RegionOne"]
    lean_pass(clouds, store)
    sid = next(iter(region.servers))
    record = {**kind("server").record_builder()(region.servers[sid]), "status": "ERROR"}
    assert store.upsert_resource(CLOUD, "RegionOne", "server", record) == "changed"
    with store.sessions() as session:
        assert session.scalar(select(Resource.raw_hash).where(Resource.resource_id == sid)) is None
    decoded.clear()

    lean_pass(clouds, store)

    assert decoded == [sid]
    assert stored(store, sid)["status"] == region.servers[sid]["status"] != "ERROR"


def test_a_builder_version_change_builds_every_item_again(cloud, store, decoded, monkeypatch):
    server, clouds = cloud
    region = server.state.regions["RegionOne"]
    lean_pass(clouds, store)
    decoded.clear()
    monkeypatch.setattr("stackfleet.model.kinds.RECORD_FORMAT", 999)

    lean_pass(clouds, store)

    assert sorted(decoded) == sorted(region.servers)
    decoded.clear()
    lean_pass(clouds, store)
    assert decoded == []


def test_a_workload_member_is_always_built(cloud, store, decoded):
    """Workloads are derived from their labelled members' records in every pass."""
    server, clouds = cloud
    region = server.state.regions["RegionOne"]
    sid = next(iter(region.servers))
    region.servers[sid]["metadata"] = {META_WORKLOAD: "shop"}
    region.servers[sid]["tags"] = [workload_tag("shop")]
    lean_pass(clouds, store, kinds=("server", "baremetal_allocation", "container"))
    decoded.clear()

    lean_pass(clouds, store, kinds=("server", "baremetal_allocation", "container"))

    labelled = [i for i, s in region.servers.items() if META_WORKLOAD in (s.get("metadata") or {})]
    assert sid in labelled and sorted(decoded) == sorted(labelled)
    workloads, _ = store.list_resources("workload")
    assert "shop" in {w["name"] for w in workloads}


def test_a_pass_keeping_its_records_builds_them_all(cloud, store, decoded):
    server, clouds = cloud
    region = server.state.regions["RegionOne"]
    lean_pass(clouds, store)
    [result] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["server"])
    assert len(result.listings["server"].records) == len(region.servers)
