"""Scale-out coordination: which worker collects which partition, and who leads.

Several `stackfleet worker` processes share one store (PostgreSQL) and coordinate
through **tooz**, the OpenStack coordination library, as Ceilometer and Aodh do: Redis
here, etcd or ZooKeeper in production. Each worker joins one group and heartbeats its
membership; every partition key (a cloud and region to collect, a BMC host to sweep) is
placed on a consistent hash ring over the live members, so a member that joins or dies
moves only its share. One member at a time holds the leader lock and runs what must run
once (policy evaluation, alert dispatch, recoveries, campaigns).

The coordinator is not the last line against double work: a leader that stalls past its
lock may briefly overlap its successor, so actions and notifications carry idempotency
keys that the database enforces (`uq_actions_idempotency_key`,
`uq_alert_notifications`).

Without a backend URL the process is alone: it owns every partition and leads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

GROUP = "stackfleet-workers"
LEADER_LOCK = "stackfleet-leader"
# Seconds without a heartbeat before a member counts as dead, and before a dead
# leader's lock expires. tooz's default is 30 s; the takeover target is 15 s after a
# kill -9, which leaves a pass of the orphaned partition about 8 s.
DEFAULT_MEMBERSHIP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Membership:
    """What one tick of the coordinator saw: the live members and this one's role."""

    member_id: str
    members: tuple[str, ...]
    leader: bool
    changed_at: float


def default_member_id() -> str:
    """host:pid:random — unique per process, readable in `GET /v1/cluster`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backend_options(url: str, membership_timeout: float) -> str:
    """The backend URL with the timeouts tooz reads from its query string, unless the
    operator set them: membership and lock expiry at `membership_timeout` seconds."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    seconds = str(max(1, round(membership_timeout)))
    if parts.scheme.startswith("redis"):
        query.setdefault("membership_timeout", seconds)
        query.setdefault("lock_timeout", seconds)
        # the socket timeout bounds a heartbeat against a hung Redis
        query.setdefault("timeout", seconds)
    elif parts.scheme.startswith(("etcd3", "zookeeper", "kazoo")):
        query.setdefault("timeout", seconds)
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class Coordinator:
    """Membership, partition ownership and leadership of this process.

    `tick()` heartbeats, refreshes the members and tries for the leader lock; `start()`
    runs it every `membership_timeout / 4` seconds in a thread of its own so that a
    long pass never lets the membership lapse. `on_change` is called (from that thread)
    when the members or this process's leadership change.
    """

    url: str | None = None
    member_id: str = field(default_factory=default_member_id)
    membership_timeout: float = DEFAULT_MEMBERSHIP_TIMEOUT
    group: str = GROUP
    on_change: Callable[[Membership], None] | None = None
    _coord: Any = None
    _lock: Any = None
    _members: tuple[str, ...] = ()
    _leader: bool = False
    _changed_at: float = 0.0
    _ring: Any = None
    _state_lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def distributed(self) -> bool:
        return self.url is not None

    def start(self) -> None:
        """Join the group and start heartbeating (no-op for a lone process)."""
        if not self.url:
            self._members, self._leader = (self.member_id,), True
            self._changed_at = time.time()
            return
        from tooz import coordination

        self._coord = coordination.get_coordinator(
            backend_options(self.url, self.membership_timeout), self.member_id.encode()
        )
        self._coord.start(start_heart=False)
        group = self.group.encode()
        with contextlib.suppress(coordination.GroupAlreadyExist):
            self._coord.create_group(group).get()
        self._coord.join_group(group).get()
        self._lock = self._coord.get_lock(LEADER_LOCK.encode())
        self.tick()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="coordination", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Leave the group and give up leadership at once, so others take over now
        rather than after the membership timeout."""
        self._stop.set()
        if self._thread:
            self._thread.join(self.membership_timeout)
        if self._coord is None:
            return
        try:
            if self._leader and self._lock is not None:
                self._lock.release()
            self._coord.leave_group(self.group.encode()).get()
        except Exception:  # leaving is best effort: the timeout removes us anyway
            log.warning("leaving the coordination group failed", exc_info=True)
        finally:
            self._coord.stop()
            self._coord = None
            self._leader = False

    def _run(self) -> None:
        period = self.membership_timeout / 4
        while not self._stop.wait(period):
            try:
                self.tick()
            except Exception:
                # a backend outage: we cannot prove we still lead, so we do not
                log.warning("coordination backend unreachable", exc_info=True)
                self._set(self._members, False)

    def tick(self) -> Membership:
        """Heartbeat, read the live members, keep or try for the leader lock."""
        if self._coord is None:
            return self.membership()
        self._coord.heartbeat()
        members = tuple(
            sorted(m.decode() for m in self._coord.get_members(self.group.encode()).get())
        )
        if self.member_id not in members:
            # expired while we were stalled: join again rather than work unseen
            self._coord.join_group(self.group.encode()).get()
            members = tuple(sorted({*members, self.member_id}))
        leader = self._lock.is_still_owner() if self._lock.acquired else False
        if not leader:
            leader = bool(self._lock.acquire(blocking=False))
        self._set(members, leader)
        return self.membership()

    def _set(self, members: tuple[str, ...], leader: bool) -> None:
        with self._state_lock:
            changed = members != self._members or leader != self._leader
            if changed:
                from tooz.hashring import HashRing

                self._members, self._leader = members, leader
                self._ring = HashRing(members) if members else None
                self._changed_at = time.time()
        if changed:
            log.info(
                "coordination: %d member(s), %s", len(members), "leader" if leader else "follower"
            )
            if self.on_change:
                self.on_change(self.membership())

    def membership(self) -> Membership:
        with self._state_lock:
            return Membership(self.member_id, self._members, self._leader, self._changed_at)

    @property
    def is_leader(self) -> bool:
        return self._leader

    def owner(self, partition: str) -> str | None:
        """The live member that owns `partition` (None before the first tick)."""
        if not self.distributed:
            return self.member_id
        with self._state_lock:
            ring = self._ring
        if ring is None:
            return None
        (node,) = ring.get_nodes(partition.encode())
        return node.decode() if isinstance(node, bytes) else str(node)

    def owns(self, partition: str) -> bool:
        return self.owner(partition) == self.member_id

    def mine(self, partitions: Iterable[str]) -> list[str]:
        """The subset of `partitions` this process is responsible for."""
        return [p for p in partitions if self.owns(p)]
