"""When a pass reads again what an L3/DHCP agent hosts, and when it carries the stored
values (sources/openstack/capacity.hosting_due)."""

from __future__ import annotations

from typing import Any

import pytest

from stackfleet.sources.openstack.capacity import hosting_due, read_at_epoch

READ_AT = "2026-01-01T12:00:00Z"
NOW = read_at_epoch(READ_AT) or 0.0


def _l3(reported: int | None = 2, alive: bool = True) -> dict[str, Any]:
    return {"id": "a1", "agent_type": "L3 agent", "alive": alive, "reported_routers": reported}


def _known(**overrides: Any) -> dict[str, Any]:
    return {
        "alive": True,
        "hosted_router_ids": ["r1", "r2"],
        "hosting_read_at": READ_AT,
        **overrides,
    }


def test_known_hosting_younger_than_the_interval_is_carried() -> None:
    assert hosting_due(_l3(), _known(), NOW + 599, 600) is None


@pytest.mark.parametrize(
    ("agent", "known", "now", "why"),
    [
        (_l3(), None, NOW, "new agent"),
        (_l3(), _known(hosted_router_ids=None), NOW, "hosting unknown"),
        (_l3(), _known(hosting_read_at=None), NOW, "never read"),
        (_l3(), _known(hosting_read_at="yesterday"), NOW, "never read"),
        (_l3(), _known(), NOW + 600, "interval"),
        (_l3(), _known(), NOW - 60, "interval"),  # read "in the future": the clock moved
        (_l3(reported=3), _known(), NOW, "reports 3, 2 known"),
        (_l3(), _known(alive=False), NOW, "came back alive"),
    ],
)
def test_hosting_is_read_when_due(
    agent: dict[str, Any], known: dict[str, Any] | None, now: float, why: str
) -> None:
    assert hosting_due(agent, known, now, 600) == why


def test_a_count_that_never_matches_the_list_is_not_read_every_pass() -> None:
    # a DVR agent may count routers the API does not list for it: read once when the
    # count moves, not again while it stays where it was
    known = _known(reported_routers=2)
    assert hosting_due(_l3(reported=5), known, NOW + 10, 600) == "reports 5, 2 known"
    assert hosting_due(_l3(reported=5), {**known, "reported_routers": 5}, NOW + 10, 600) is None


def test_an_agent_that_reports_no_count_is_read_on_the_interval_only() -> None:
    assert hosting_due(_l3(reported=None), _known(), NOW + 10, 600) is None
    assert hosting_due(_l3(reported=None), _known(), NOW + 601, 600) == "interval"


def test_an_agent_that_died_keeps_its_carried_hosting() -> None:
    assert hosting_due(_l3(alive=False), _known(), NOW + 10, 600) is None


def test_a_dhcp_agent_compares_its_network_count() -> None:
    agent = {"id": "d1", "agent_type": "DHCP agent", "alive": True, "reported_networks": 1}
    known = {
        "alive": True,
        "hosted_network_ids": ["n1"],
        "hosting_read_at": READ_AT,
        "reported_networks": 1,
    }
    assert hosting_due(agent, known, NOW + 10, 600) is None
    assert hosting_due({**agent, "reported_networks": 0}, known, NOW + 10, 600)


def test_an_interval_of_zero_reads_every_pass() -> None:
    assert hosting_due(_l3(), _known(), NOW, 0) == "interval"
