"""End-to-end fixtures: a running simulated cloud and a clouds.yaml pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer

CLOUD = "sim"


@pytest.fixture(scope="module")
def two_region_cloud(tmp_path_factory) -> Iterator[tuple[SimulatorServer, Path]]:
    """A two-region simulated cloud and its clouds.yaml (cloud name `sim`)."""
    workdir = tmp_path_factory.mktemp("sim")
    with SimulatorServer(preset("two-region")) as server:
        clouds = server.write_clouds_yaml(workdir / "clouds.yaml", CLOUD)
        yield server, clouds


@pytest.fixture
def small_cloud(tmp_path) -> Iterator[tuple[SimulatorServer, Path]]:
    """A fresh simulated cloud of the `small` preset (one region) for one test, and its
    clouds.yaml (cloud name `sim`)."""
    with SimulatorServer(preset("small")) as server:
        yield server, server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
