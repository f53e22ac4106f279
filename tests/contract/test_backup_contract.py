"""Contract tests of the Cinder backup calls StackFleet's volume delete makes
(actions/block_storage.py DeleteVolume with `backup: true`: GET /backups/detail for a
backup an earlier run left, else POST /backups, then GET /backups/{id} until it is
available), answered alike by the real testbed and the simulator.

Why not the calls themselves: the generated call list (contract_calls.py) comes from an
inventory pass, which makes no backups, so these are checked here. The testbed runs no
cinder-backup service, so a backup created there would only go to `error` and stay
behind: no request here may create one. What is compared instead is what Cinder answers
before it creates anything — the listing (`GET /backups/detail`, empty by a filter on
both sides, at the microversions openstacksdk asks for), the 404 of an unknown backup
(show and delete), the create refusals (unknown volume, no volume id) and the listing's
parameter errors. The shape of a backup object itself is checked against Cinder's view
builder in tests/e2e (the simulator's only), not here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.contract

# openstacksdk's Backup resource caps its microversion at 3.64; 3.0 is the plain v3 answer
MICROVERSIONS = ("3.0", "3.64")
UNKNOWN = "11111111-2222-3333-4444-555555555555"


def _both(real: Any, sim: Any, method: str, path: str, **kwargs: Any) -> list[requests.Response]:
    answers = []
    for side in (real, sim):
        request = getattr(side.project.block_storage, method)
        answers.append(request(path, raise_exc=False, **kwargs))
    return answers


def _same(answers: list[requests.Response]) -> None:
    real_answer, sim_answer = answers
    assert sim_answer.status_code == real_answer.status_code, (real_answer.text, sim_answer.text)
    assert sim_answer.json() == real_answer.json()
    assert sim_answer.headers.get("OpenStack-API-Version") == real_answer.headers.get(
        "OpenStack-API-Version"
    )


@pytest.mark.parametrize("microversion", MICROVERSIONS)
def test_backup_listing_matches_reality(microversion: str, real: Any, sim: Any) -> None:
    # a name no backup has: both lists are empty whatever else exists
    params = {"all_tenants": "1", "name": f"no-such-backup-{uuid.uuid4()}"}
    for path in ("/backups/detail", "/backups"):
        _same(_both(real, sim, "get", path, params=params, microversion=microversion))


def test_the_listing_of_a_volumes_backups_matches_reality(real: Any, sim: Any) -> None:
    """The call the action makes to find a backup an earlier run left (openstacksdk's
    `backups(details=True, all_projects=True, volume_id=...)`), for a volume with none."""
    params = {"volume_id": str(uuid.uuid4()), "all_tenants": "True"}
    _same(_both(real, sim, "get", "/backups/detail", params=params, microversion="3.64"))


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", f"/backups/{UNKNOWN}"), ("delete", f"/backups/{UNKNOWN}")],
)
def test_unknown_backup_error_matches_reality(method: str, path: str, real: Any, sim: Any) -> None:
    answers = _both(real, sim, method, path, microversion="3.64")
    assert answers[0].status_code == 404
    _same(answers)


@pytest.mark.parametrize(
    "body",
    [{"backup": {"volume_id": UNKNOWN, "force": True}}, {"backup": {}}],
    ids=["unknown-volume", "no-volume-id"],
)
def test_backup_create_refusal_matches_reality(body: dict[str, Any], real: Any, sim: Any) -> None:
    """Cinder refuses these before it makes a backup record (the testbed keeps none)."""
    answers = _both(real, sim, "post", "/backups", json=body, microversion="3.64")
    assert answers[0].status_code in (400, 404)
    _same(answers)


@pytest.mark.parametrize(
    ("params", "microversion"),
    [
        ({"marker": UNKNOWN}, "3.64"),
        ({"limit": "-1"}, "3.64"),
        ({"limit": "x"}, "3.64"),
        ({"sort": "bogus:asc"}, "3.64"),
        ({"sort": "name:asc"}, "3.0"),
        ({"all_tenants": "maybe"}, "3.64"),
    ],
    ids=["unknown-marker", "negative-limit", "limit-not-a-number", "bad-sort-key",
         "name-sort-before-3.37", "all-tenants-not-a-boolean"],
)  # fmt: skip
def test_backup_listing_errors_match_reality(
    params: dict[str, str], microversion: str, real: Any, sim: Any
) -> None:
    answers = _both(real, sim, "get", "/backups/detail", params=params, microversion=microversion)
    assert answers[0].status_code >= 400
    _same(answers)
