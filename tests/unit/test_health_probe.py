"""The management probe of the health monitor: a missed probe is tried again within the
same assessment (probe.retry_interval) until probe.misses in a row, so one assessment
can call a dead host unreachable; a host that answers is never retried."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from stackfleet.engine.health import HealthMonitor
from stackfleet.engine.health_settings import HealthSettings
from stackfleet.model.health import HostSignals


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    """(a port that accepts connections, a port nothing listens on) on 127.0.0.1."""
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        yield listening.getsockname()[1], closed.getsockname()[1]


def monitor(ports: tuple[int, int], **probe: Any) -> HealthMonitor:
    alive, dead = ports
    settings = HealthSettings.model_validate(
        {
            "probe": {
                "addresses": {"alive": f"127.0.0.1:{alive}", "dead": f"127.0.0.1:{dead}"},
                "misses": 3,
                "timeout": "0.5s",
                **probe,
            }
        }
    )
    return HealthMonitor(store=None, settings=settings, connections=None)  # type: ignore[arg-type]


def probed(health: HealthMonitor) -> dict[str, HostSignals]:
    signals = [HostSignals(host="alive"), HostSignals(host="dead")]
    health._probe(signals)
    return {s.host: s for s in signals}


def test_a_dead_host_is_unreachable_after_one_assessment(ports: tuple[int, int]) -> None:
    found = probed(monitor(ports, retry_interval="0.05s"))
    assert (found["dead"].probe, found["dead"].probe_misses) == ("unreachable", 3)
    assert (found["alive"].probe, found["alive"].probe_misses) == ("reachable", 0)


def test_without_retries_each_assessment_counts_one_miss(ports: tuple[int, int]) -> None:
    health = monitor(ports, retry_interval="0s")
    seen = [probed(health)["dead"] for _ in range(3)]
    assert [(s.probe, s.probe_misses) for s in seen] == [
        ("missing", 1),
        ("missing", 2),
        ("unreachable", 3),
    ]
