"""Contract tests of the single-resource reads event-driven refresh makes
(sources/openstack/refresh.py READS): each GET of one object, at the microversion its
listing uses, made against the real testbed and the simulator, must answer alike — and
the record built from it must be the record a pass builds from the listing, so that an
event never changes a resource's fields by the way it was read.

The 404 of each of these URLs is compared by test_api_contract's
test_missing_resource_error_matches_reality (the `missing` of each listing's contract).
"""

from __future__ import annotations

from typing import Any

import pytest
from contract_calls import CONTRACTS, RecordedCall
from test_api_contract import _body_differences

from stackfleet.model import kind
from stackfleet.sources.openstack.refresh import READS

pytestmark = pytest.mark.contract

# kind -> the listing whose contract (collection, normalisations) the read shares
LISTINGS = {
    "server": "compute GET /servers/detail",
    "port": "network GET /ports",
    "floating_ip": "network GET /floatingips",
    "network": "network GET /networks",
    "subnet": "network GET /subnets",
    "router": "network GET /routers",
    "security_group": "network GET /security-groups",
    "security_group_rule": "network GET /security-group-rules",
    "volume": "block-storage GET /volumes/detail",
    "image": "image GET /images",
}
LIST_PARAMS = {
    "server": {"all_tenants": "True"},
    "volume": {"all_tenants": "1"},
}


def test_every_single_read_has_a_contract() -> None:
    assert set(LISTINGS) == set(READS)
    for kind_name, label in LISTINGS.items():
        assert CONTRACTS[label].missing == READS[kind_name].path.replace("{id}", "{uuid}")


SAME_SORT: dict[str, dict[str, Any]] = {"network": {"router:external": "false"}}


def _list_call(kind_name: str) -> RecordedCall:
    label = LISTINGS[kind_name]
    service, method, path = label.split(" ", 2)
    return RecordedCall(
        service, method, path, LIST_PARAMS.get(kind_name), READS[kind_name].microversion, False
    )


def _read(side: Any, kind_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the first object of the listing, the same object read on its own) on a side."""
    read = READS[kind_name]
    listing = _list_call(kind_name)
    collection = str(CONTRACTS[LISTINGS[kind_name]].collection)
    # networks: an internal one on both sides (an external network carries is_default,
    # an internal one does not; which comes first differs between the two clouds)
    params: dict[str, Any] = {"limit": 1, **SAME_SORT.get(kind_name, {})}
    listed = side.get(listing, params=params)
    assert listed.status_code == 200, listed.text[:300]
    [first] = listed.json()[collection] or [None]
    assert first is not None, f"{side.name} has no {collection}"
    single = RecordedCall(
        listing.service, "GET", read.path.format(id=first["id"]), None, read.microversion, False
    )
    answer = side.get(single)
    assert answer.status_code == 200, answer.text[:300]
    body = answer.json()
    return first, body[read.key] if read.key else body


@pytest.mark.parametrize("kind_name", sorted(READS))
def test_single_read_matches_reality(kind_name: str, real: Any, sim: Any) -> None:
    contract = CONTRACTS[LISTINGS[kind_name]]
    collection = str(contract.collection)
    _, real_object = _read(real, kind_name)
    _, sim_object = _read(sim, kind_name)
    problems = _body_differences(
        contract, real, sim, {collection: [real_object]}, {collection: [sim_object]}
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind_name", sorted(READS))
@pytest.mark.parametrize("side_name", ["real", "sim"])
def test_single_read_builds_the_record_a_pass_builds(
    kind_name: str, side_name: str, request: pytest.FixtureRequest
) -> None:
    side = request.getfixturevalue(side_name)
    listed, single = _read(side, kind_name)
    build = kind(kind_name).record_builder()
    assert build(single) == build(listed)
