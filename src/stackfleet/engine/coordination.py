"""Scale-out coordination: which worker collects which partition, and who leads.

Several `stackfleet worker` processes share one store (PostgreSQL) and coordinate
through **tooz**, the OpenStack coordination library, as Ceilometer and Aodh do: Redis
here, etcd or ZooKeeper in production. Each worker joins one group and heartbeats its
membership; every partition key (a cloud and region to collect, a BMC host to sweep) goes
to one live member by rendezvous hashing with bounded loads (`balanced_assignment`), so
a member that joins or dies moves little more than its share, and even a handful of
regions spreads evenly. One member at a time holds the leader lock and runs what must run
once (policy evaluation, alert dispatch, recoveries, campaigns).

The coordinator is not the last line against double work: a leader that stalls past its
lock may briefly overlap its successor, so actions and notifications carry idempotency
keys that the database enforces (`uq_actions_idempotency_key`,
`uq_alert_notifications`).

Without a backend URL the process is alone: it owns every partition and leads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

GROUP = "stackfleet-workers"
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


def group_for_store(url: str) -> str:
    """The workers of one store form one group: its name comes from the store's URL
    (password left out), so two stores never share a leader by mistake."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"stackfleet-{digest}"


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
        # one leader per group
        self._lock = self._coord.get_lock(f"{self.group}-leader".encode())
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
                self._members, self._leader = members, leader
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

    @contextlib.contextmanager
    def holding(self, partition: str) -> Iterator[bool]:
        """A lock on `partition` for the length of one pass: True when this process
        got it, False when another holds it (a worker that still thinks it owns the
        partition during a rebalance, or one that stalled). Two passes of one region at
        once would race each other's writes. A dead holder's lock expires with its
        membership; the heartbeat keeps a held lock alive through a long pass."""
        if self._coord is None:
            yield True
            return
        lock = self._coord.get_lock(f"{self.group}-{partition}".encode())
        if not lock.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            try:
                lock.release()
            except Exception:  # expires by itself
                log.warning("releasing the lock of %s failed", partition, exc_info=True)

    def share(self, partitions: Iterable[str]) -> set[str]:
        """This process's share of `partitions`, balanced: every live member computes
        the same assignment (`balanced_assignment`), so each partition has exactly one
        owner and no member has more than its fair share plus one."""
        keys = sorted(set(partitions))
        if not self.distributed:
            return set(keys)
        with self._state_lock:
            members = self._members
        assignment = balanced_assignment(keys, members)
        return {k for k, owner in assignment.items() if owner == self.member_id}


def _score(member: str, partition: str) -> bytes:
    return hashlib.sha256(f"{member}\n{partition}".encode()).digest()


def balanced_assignment(partitions: Iterable[str], members: Iterable[str]) -> dict[str, str]:
    """partition -> member: rendezvous (highest random weight) hashing with bounded
    loads. Each partition prefers members in the order of a hash of (member,
    partition), so a member that joins or leaves moves few partitions; a member that
    already holds its share passes the next partition to that partition's next choice,
    so every member holds n // m or one more: a handful of regions spreads evenly (a
    plain hash ring left one of three workers idle and gave another five of six
    regions). A fourth member joining 30 partitions moves 12 of them (7.5 at best)."""
    keys = sorted(set(partitions), key=lambda k: hashlib.sha256(k.encode()).digest())
    live = sorted(set(members))
    if not live:
        return {}
    # as even as it gets: every member takes `base`, and `extra` of them one more
    base, extra = divmod(len(keys), len(live))
    load = dict.fromkeys(live, 0)
    assignment = {}
    for key in keys:
        preferred = sorted(live, key=lambda m: _score(m, key), reverse=True)
        owner = next((m for m in preferred if load[m] < base), None)
        if owner is None:
            owner = next(m for m in preferred if load[m] == base)
            extra -= 1
        assignment[key] = owner
        load[owner] += 1
    return assignment
