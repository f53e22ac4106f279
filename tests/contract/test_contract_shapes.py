"""The shape comparison the contract tests rely on: what it reports and what it forgives.
(No testbed needed: these say the contract tests can fail.)"""

from __future__ import annotations

import pytest
from contract_calls import served_label
from contract_shapes import differences, shape_of

pytestmark = pytest.mark.contract


def _diff(real: object, sim: object, **options: object) -> list[str]:
    maps = options.pop("maps", ())
    return differences(shape_of(real, maps), shape_of(sim, maps), **options)  # type: ignore[arg-type]


def test_a_key_the_simulator_lacks_is_reported_by_path() -> None:
    real = {"servers": [{"id": "a", "status": "ACTIVE"}]}
    sim = {"servers": [{"id": "b"}]}
    assert _diff(real, sim) == ["$.servers[].status: missing in the simulator"]


def test_a_key_only_the_simulator_has_is_reported() -> None:
    assert _diff({"a": 1}, {"a": 2, "b": "x"}) == ["$.b: only in the simulator"]


def test_a_different_json_type_is_reported() -> None:
    assert _diff({"size": 1}, {"size": "1"}) == [
        "$.size: type real ['number'] vs simulator ['string']"
    ]


def test_null_on_one_side_agrees_with_any_value_on_the_other() -> None:
    assert _diff({"port_id": None}, {"port_id": "p"}) == []
    assert _diff({"port_id": "p"}, {"port_id": None}) == []


def test_a_key_always_present_in_reality_may_not_come_and_go_in_the_simulator() -> None:
    real = {"items": [{"id": 1, "x": 1}, {"id": 2, "x": 2}]}
    sim = {"items": [{"id": 1, "x": 1}, {"id": 2}]}
    assert _diff(real, sim) == [
        "$.items[].x: always present in reality, sometimes absent in the simulator"
    ]
    assert _diff(real, sim, optional=["$.items[].x"]) == []


def test_a_map_compares_the_shape_of_its_values_not_its_keys() -> None:
    real = {"addresses": {"private": [{"addr": "10.0.0.1", "version": 4}]}}
    sim = {"addresses": {"net-7": [{"addr": "10.7.0.1", "version": "4"}]}}
    assert _diff(real, sim, maps=["$.addresses"]) == [
        "$.addresses.*[].version: type real ['number'] vs simulator ['string']"
    ]


def test_an_open_object_ignores_one_sided_keys_but_compares_shared_ones() -> None:
    real = {"capabilities": {"pool_name": "fake", "total_capacity_gb": 10}}
    sim = {"capabilities": {"location_info": "x", "total_capacity_gb": "10"}}
    assert _diff(real, sim, open_objects=["$.capabilities"]) == [
        "$.capabilities.total_capacity_gb: type real ['number'] vs simulator ['string']"
    ]


def test_simulator_request_keys_become_call_labels() -> None:
    regions = ["RegionOne"]
    assert (
        served_label("GET /RegionOne/compute/v2.1/servers/detail", regions)
        == "compute GET /servers/detail"
    )
    assert (
        served_label("GET /RegionOne/volume/v3/{project_id}/volumes/detail", regions)
        == "block-storage GET /volumes/detail"
    )
    assert served_label("POST /identity/v3/auth/tokens", regions) == "identity POST /auth/tokens"
    assert served_label("GET /identity/", regions) == "identity version discovery"
    assert served_label("GET /RegionOne/placement/", regions) == "placement version discovery"
    assert served_label("GET /_sim/faults", regions).startswith("simulator ")
