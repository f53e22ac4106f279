"""The usage job closes the clouds' connections it opened when a sweep fails, and
connects again at the next one: a failing sweep every interval must not leave a pool of
sockets (and an openstacksdk thread pool) behind each time.

The connections are stand-ins recording `close()`: what is checked is that the loop
closes what it opened, which a real cloud connection would not show from outside."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from stackfleet.engine import usage
from stackfleet.engine.usage import UsageLoop, UsageSettings


@dataclass
class Target:
    cloud: str
    closed: int = 0

    def close(self) -> None:
        self.closed += 1


def test_a_failed_sweep_closes_the_connections_and_the_next_connects_again(store, monkeypatch):
    opened: list[Target] = []

    def connect(cloud, *_args):
        target = Target(cloud)
        opened.append(target)
        return [target]

    def failing(*_args):
        raise RuntimeError("nova answered 503")

    monkeypatch.setattr(usage, "connect", connect)
    monkeypatch.setattr(usage, "sweep_diagnostics", failing)
    loop = UsageLoop(store, UsageSettings(source="diagnostics"), ["east", "west"])
    with pytest.raises(RuntimeError):
        loop.run_once()
    assert [(t.cloud, t.closed) for t in opened] == [("east", 1), ("west", 1)]
    with pytest.raises(RuntimeError):
        loop.run_once()
    assert [(t.cloud, t.closed) for t in opened] == [
        ("east", 1),
        ("west", 1),
        ("east", 1),
        ("west", 1),
    ]


def test_a_cloud_that_cannot_be_connected_closes_the_ones_connected_before(store, monkeypatch):
    opened: list[Target] = []

    def connect(cloud, *_args):
        if cloud == "west":
            raise RuntimeError("keystone answered 401")
        target = Target(cloud)
        opened.append(target)
        return [target]

    monkeypatch.setattr(usage, "connect", connect)
    loop = UsageLoop(store, UsageSettings(source="diagnostics"), ["east", "west"])
    with pytest.raises(RuntimeError):
        loop.run_once()
    assert [(t.cloud, t.closed) for t in opened] == [("east", 1)]
