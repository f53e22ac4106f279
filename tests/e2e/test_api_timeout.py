"""A hung endpoint fails its part of a pass within the API timeout: the pass ends, the
kind is recorded incomplete, nothing of it is marked gone."""

from __future__ import annotations

import time

import pytest
import yaml

from stackfleet.engine.collect import collect
from stackfleet.engine.settings import Settings
from stackfleet.simulator.faults import FaultRule
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack import connection
from stackfleet.sources.openstack.connection import connect, set_api_timeout
from stackfleet.store import open_store

CLOUD = "sim"
TIMEOUT = 2.0


@pytest.fixture
def short_timeout():
    before = connection.api_timeout()
    set_api_timeout(TIMEOUT)
    yield TIMEOUT
    set_api_timeout(before)


@pytest.fixture
def hung_ports(tmp_path):
    hang = FaultRule(method="GET", path="/v2.0/ports", hang=True)
    with SimulatorServer(preset("small"), faults=[hang]) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        yield server, str(clouds)


def test_a_hung_listing_fails_within_the_timeout_and_is_recorded_incomplete(
    hung_ports, short_timeout, tmp_path
):
    _, clouds = hung_ports
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    started = time.monotonic()

    [result] = collect(store, CLOUD, config_files=[clouds], kinds=["port", "network"])

    assert time.monotonic() - started < 6 * TIMEOUT
    assert result.status == "partial"
    assert not result.listings["port"].complete
    assert result.listings["network"].complete
    assert store.list_passes(1)[0]["kinds"]["port"]["complete"] is False


def test_connections_time_out_after_the_default(hung_ports, short_timeout):
    _, clouds = hung_ports
    [target] = connect(CLOUD, config_files=[clouds])
    try:
        assert target.conn.session.timeout == TIMEOUT
    finally:
        target.close()


def test_the_timeout_in_clouds_yaml_wins(hung_ports, short_timeout):
    _, clouds = hung_ports
    with open(clouds, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    data["clouds"][CLOUD]["api_timeout"] = 7
    with open(clouds, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle)
    [target] = connect(CLOUD, config_files=[clouds])
    try:
        assert target.conn.session.timeout == 7
    finally:
        target.close()


def test_the_default_timeout_is_a_minute():
    assert Settings().api_timeout.total_seconds() == 60
