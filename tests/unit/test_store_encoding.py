"""How the store serialises records (orjson, with the standard library's behaviour kept
where the two differ) and what a change of that serialisation does to a store that
already holds records: hashes move, nothing else does."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import requests
from sqlalchemy import update

from stackfleet.sources.openstack.listing import ListingError, decode_body
from stackfleet.store import Store
from stackfleet.store.inventory import KindOutcome, encode_json
from stackfleet.store.schema import Resource


def one_pass(store: Store, records: list[dict], kind: str = "server") -> KindOutcome:
    pass_id = store.begin_pass("c1", "r1")
    outcome = store.record_kind(pass_id, "c1", "r1", kind, records, True)
    store.finish_pass(pass_id, "complete", None, 1)
    return outcome


def server(sid: str, **extra) -> dict:
    return {"id": sid, "name": f"vm-{sid}", "status": "ACTIVE", "project_id": "p1", **extra}


def test_records_read_back_as_written_whatever_their_values(any_store):
    odd = server(
        "a",
        description="caf\u00e9 \u2603 \U0001f600",  # non-ASCII, stored as UTF-8
        big=2**70,  # beyond orjson's 64 bits: the standard library writes it
        ratio=1e16,
        metadata={"k": None, "nested": [1, 2.5, True]},
    )
    one_pass(any_store, [odd])
    stored = any_store.get_resource("server", "a")
    for key, value in odd.items():
        assert stored[key] == value, key


def test_values_json_cannot_hold_are_written_as_their_text_as_before():
    when = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
    assert json.loads(encode_json({"at": when, "ids": {3}})) == {
        "at": str(when),  # json.dumps(default=str) wrote "2026-12-07 17:00:00+00:00"
        "ids": str({3}),
    }


def test_records_stored_under_an_older_hash_are_rewritten_without_history(any_store):
    """A store written before the serialisation changed holds other hashes: the next
    pass rewrites those rows once and records no field change for them."""
    one_pass(any_store, [server("a"), server("b")])
    with any_store.sessions.begin() as session:
        session.execute(update(Resource).values(attrs_hash="0" * 32))
    outcome = one_pass(any_store, [server("a"), server("b")])
    assert (outcome.changed, outcome.added, outcome.gone) == (2, 0, 0)
    assert any_store.get_resource("server", "a")["changes"] == []
    assert one_pass(any_store, [server("a"), server("b")]).changed == 0


def _response(body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.encoding = "utf-8"
    return response


def test_a_body_orjson_refuses_is_decoded_by_the_standard_library():
    # NaN is not JSON, but Python services can send it (json.dumps writes it)
    body = decode_body(_response(b'{"pools": [{"free": NaN}]}'), "pools")
    assert math.isnan(body["pools"][0]["free"])


def test_a_body_that_is_not_json_fails_the_listing_naming_the_call():
    try:
        decode_body(_response(b"<html>proxy error</html>"), "compute GET /servers/detail")
    except ListingError as exc:
        assert "compute GET /servers/detail" in str(exc) and "not JSON" in str(exc)
    else:
        raise AssertionError("a non-JSON body was accepted")
