"""The one teardown order `provision destroy` and `project purge` share."""

from __future__ import annotations

import pytest

from stackfleet.provision.purge import PHASES
from stackfleet.provision.teardown import TEARDOWN, phases


def test_phases_come_in_teardown_order_whatever_order_they_are_asked_in():
    assert [p.kind for p in phases(["project", "volume", "server_group", "server"])] == [
        "server", "server_group", "volume", "project"
    ]  # fmt: skip


def test_a_kind_the_order_does_not_place_is_refused():
    with pytest.raises(ValueError, match="no teardown phase for load_balancer"):
        phases(["server", "load_balancer"])


def test_purge_follows_the_teardown_order_with_the_project_last():
    assert list(PHASES) == [p.name for p in TEARDOWN if p.name in PHASES]
    assert PHASES[-1] == "project" and "bare-metal nodes" not in PHASES
