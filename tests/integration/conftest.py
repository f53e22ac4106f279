"""Integration fixtures: the real OpenStack testbed (testbed/README.md), a known fleet
built on it, and one StackFleet pass over it.

Without a running testbed these tests are skipped; with STACKFLEET_TESTBED_REQUIRED=1
(CI) they fail instead, saying what is not up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from testbed_fleet import FLEET, Fleet, Testbed, collect_testbed, require_testbed

from stackfleet.engine.collect import PassResult
from stackfleet.store import Store, open_store


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `moves_fleet` run after every other test of the session: they move
    the shared fleet's servers between hosts (a live migration on the testbed also
    leaves a port DOWN: no agent reports it up again), which the other tests read in
    place."""
    items.sort(key=lambda item: item.get_closest_marker("moves_fleet") is not None)


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    return require_testbed()


@pytest.fixture(scope="session")
def fleet(testbed: Testbed) -> Iterator[Fleet]:
    """What the tests created on the testbed (deleted at the end of the session)."""
    with FLEET.lease(testbed) as built:
        yield built


@dataclass
class Collected:
    """A store after one StackFleet pass over the testbed."""

    store: Store
    url: str
    result: PassResult
    testbed: Testbed
    fleet: Fleet

    @property
    def cloud(self) -> str:
        return self.testbed.admin_cloud


@pytest.fixture(scope="session")
def collected(
    testbed: Testbed, fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Collected]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('inventory')) / 'stackfleet.db'}"
    store = open_store(url)
    try:
        yield Collected(store, url, collect_testbed(store, testbed), testbed, fleet)
    finally:
        store.close()
