"""A daemon's passes and sweeps close what they open: the process's open file
descriptors stay flat pass after pass (each pass used to leave ~7 sockets behind)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.loop import CloudSpec
from stackfleet.engine.quota_sweep import sweep_cloud
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store

CLOUD = "sim"
PASSES = 6
# the simulator's own server-side sockets come and go while it notices closed clients
SLACK = 4

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counting descriptors needs /proc"
)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled_fds() -> int:
    """The descriptor count once the simulator has closed the sockets its clients
    closed (the lowest of a few readings)."""
    readings = []
    for _ in range(5):
        readings.append(open_fds())
        time.sleep(0.1)
    return min(readings)


def growth_over(passes: int, work: Callable[[], object]) -> int:
    work()  # warm-up: imports, the store's pool, discovery caches
    before = settled_fds()
    for _ in range(passes):
        work()
    return settled_fds() - before


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("leaks")
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        store = open_store(f"sqlite:///{workdir / 'store.db'}")
        yield server, str(clouds), store
        store.close()


def test_collection_passes_leave_no_descriptors_open(cloud):
    _, clouds, store = cloud
    growth = growth_over(
        PASSES,
        lambda: collect(store, CLOUD, None, f"{CLOUD}-system", [clouds]),
    )
    assert growth <= SLACK, f"{growth} descriptors more after {PASSES} passes"


def test_quota_sweeps_leave_no_descriptors_open(cloud):
    _, clouds, store = cloud
    spec = CloudSpec(CLOUD, f"{CLOUD}-system", [clouds])
    growth = growth_over(PASSES, lambda: sweep_cloud(store, spec, force=True))
    assert growth <= SLACK, f"{growth} descriptors more after {PASSES} sweeps"


def test_action_connections_are_reused_and_closed(cloud):
    _, clouds, _ = cloud
    connections = Connections([clouds])
    before = settled_fds()
    first = connections.connection(CLOUD, "RegionOne")
    for _ in range(PASSES):
        assert connections.connection(CLOUD, "RegionOne") is first
        first.compute.get("/servers", params={"limit": 1})
    connections.close()
    assert settled_fds() - before <= SLACK
