"""What fuzzing the API found (tests/e2e/test_api_fuzz.py, benchmarks/fuzz_api.py), one
behaviour each: oversized or malformed requests are a 4xx naming the field, never a
500, and the OpenAPI document says what the API answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from stackfleet.api.app import create_app
from stackfleet.store import Store


@pytest.fixture
def client(store: Store) -> TestClient:
    return TestClient(create_app(store), raise_server_exceptions=False)


def test_an_id_past_the_database_integer_is_a_400_naming_it(client: TestClient) -> None:
    answer = client.get("/v1/audit/12264177854678111879168")
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "seq"


def test_an_offset_past_the_database_integer_is_a_400_naming_it(client: TestClient) -> None:
    answer = client.get("/v1/actions", params={"offset": 2**63})
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "offset"


def test_a_405_allows_every_method_of_the_path(client: TestClient) -> None:
    answer = client.request("OPTIONS", "/v1/alerts")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"


def test_a_label_set_twice_in_one_batch_fires_one_alert(client: TestClient) -> None:
    alert: dict[str, Any] = {"labels": {"alertname": "Disk"}, "annotations": {"n": "1"}}
    answer = client.post("/v1/alerts", json=[alert, {**alert, "annotations": {"n": "2"}}])
    assert answer.status_code == 200 and answer.json()["fired"] == 1
    [fired] = client.get("/v1/alerts").json()["items"]
    assert fired["annotations"] == {"n": "2"}


def test_a_label_set_fired_and_resolved_in_one_batch_fires_nothing(client: TestClient) -> None:
    alert: dict[str, Any] = {"labels": {"alertname": "Disk"}}
    answer = client.post("/v1/alerts", json=[alert, {**alert, "status": "resolved"}])
    assert answer.status_code == 200 and answer.json()["fired"] == 0


def test_a_pack_given_twice_is_loaded_once(client: TestClient) -> None:
    answer = client.get("/v1/reports/waste", params=[("pack", "waste"), ("pack", "waste")])
    assert answer.status_code == 200


def test_an_unknown_pack_is_a_400_naming_pack(client: TestClient) -> None:
    answer = client.get("/v1/reports/compliance", params={"pack": ""})
    assert answer.status_code == 400 and answer.json()["error"]["field"].startswith("pack")


def test_a_lease_extension_too_small_to_count_is_a_400_naming_days(client: TestClient) -> None:
    answer = client.post("/v1/leases/vm-1/extend", json={"days": 5e-324})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "days"


def test_a_silence_of_centuries_is_a_400_naming_duration(client: TestClient) -> None:
    answer = client.post("/v1/silences", json={"matchers": ["a=b"], "duration": "99999999w"})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "duration"


def test_a_notification_that_is_not_an_object_is_a_400(client: TestClient) -> None:
    answer = client.post(
        "/v1/events",
        params={"cloud": "c"},
        content=b"null",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400


def test_the_schema_documents_the_shared_error_statuses(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    approve = paths["/v1/actions/{action_id}/approve"]["post"]["responses"]
    assert {"400", "403", "404", "409", "413", "414", "500", "503"} <= set(approve)
    assert "401" not in approve  # authentication is off
    kinds = paths["/v1/kinds"]["get"]["responses"]
    assert "400" not in kinds and "404" not in kinds
