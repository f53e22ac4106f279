"""Workers coordinated through tooz on the local Redis: partitions rebalance on join and
leave, and a killed leader or member is replaced within the takeover target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest
from support import redis_or_skip

from stackfleet.engine.coordination import Coordinator, Membership

REDIS = "redis://127.0.0.1:6379"
PARTITIONS = [f"cloud-{c}/region-{r}" for c in range(2) for r in range(10)]
# the target: partitions and leadership taken over within 15 s of a kill -9
TAKEOVER = 15.0


@pytest.fixture
def group() -> str:
    redis_or_skip()
    return f"sf-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def members(group) -> Iterator[list[Coordinator]]:
    started: list[Coordinator] = []
    yield started
    for c in started:
        c.stop()


def _join(group: str, started: list[Coordinator], name: str) -> Coordinator:
    c = Coordinator(REDIS, member_id=name, group=group, membership_timeout=3)
    c.start()
    started.append(c)
    return c


def _wait(predicate, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout} s")


def _owners(coords: list[Coordinator]) -> dict[str, list[str]]:
    return {c.member_id: sorted(c.share(PARTITIONS)) for c in coords}


def test_each_partition_has_exactly_one_owner_and_the_shares_are_even(group, members):
    coords = [_join(group, members, n) for n in ("w1", "w2", "w3")]
    _wait(lambda: all(len(c.membership().members) == 3 for c in coords), 10)
    owned = _owners(coords)
    flat = [p for parts in owned.values() for p in parts]
    assert sorted(flat) == sorted(PARTITIONS)
    # 20 partitions over 3 members: 7, 7 and 6
    assert sorted(len(parts) for parts in owned.values()) == [6, 7, 7], owned


def test_a_joining_member_takes_a_share_and_a_leaving_one_hands_it_back(group, members):
    w1 = _join(group, members, "w1")
    assert sorted(w1.share(PARTITIONS)) == sorted(PARTITIONS)
    w2 = _join(group, members, "w2")
    _wait(lambda: len(w1.membership().members) == 2, 5)
    moved = w2.share(PARTITIONS)
    assert moved and w1.share(PARTITIONS) == set(PARTITIONS) - moved
    w2.stop()
    members.remove(w2)
    _wait(lambda: w1.membership().members == ("w1",), 5)
    assert sorted(w1.share(PARTITIONS)) == sorted(PARTITIONS)


def test_exactly_one_leader(group, members):
    coords = [_join(group, members, n) for n in ("w1", "w2", "w3")]
    _wait(lambda: all(len(c.membership().members) == 3 for c in coords), 10)
    assert sum(c.is_leader for c in coords) == 1


def test_a_lone_process_owns_everything_and_leads():
    c = Coordinator(None, member_id="solo")
    c.start()
    assert c.is_leader and sorted(c.share(PARTITIONS)) == sorted(PARTITIONS)
    c.stop()


_MEMBER = textwrap.dedent(
    """
    import sys, time
    from stackfleet.engine.coordination import Coordinator
    c = Coordinator(sys.argv[1], member_id=sys.argv[2], group=sys.argv[3],
                    membership_timeout=float(sys.argv[4]))
    c.start()
    while not c.is_leader:
        time.sleep(0.1)
    print("leader", flush=True)
    time.sleep(600)
    """
)


def test_kill_9_of_the_leader_hands_leadership_and_partitions_over(group, members):
    """The leader is a separate process killed with SIGKILL: it never leaves the group,
    so the survivors learn of it only from the expired heartbeat and leader lock."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _MEMBER, REDIS, "victim", group, "3"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "leader"
        changes: list[Membership] = []
        survivor = Coordinator(REDIS, member_id="survivor", group=group, membership_timeout=3)
        survivor.on_change = changes.append
        survivor.start()
        members.append(survivor)
        _wait(lambda: "victim" in survivor.membership().members, 5)
        assert not survivor.is_leader
        orphaned = [p for p in PARTITIONS if p not in survivor.share(PARTITIONS)]
        assert orphaned
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        took = _wait(lambda: survivor.is_leader, TAKEOVER)
        assert sorted(survivor.share(PARTITIONS)) == sorted(PARTITIONS)
        assert took < TAKEOVER
        assert changes[-1].leader and changes[-1].members == ("survivor",)
    finally:
        proc.kill()
        proc.wait()
