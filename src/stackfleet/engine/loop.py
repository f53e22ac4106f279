"""The collection job: a pass over each configured cloud (the daemon's scheduler,
engine/scheduler.py, repeats it every interval). Later stages (policies, actions) hook
in after each pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from stackfleet.core.errors import StackFleetError
from stackfleet.engine.collect import PassResult, collect
from stackfleet.sources.openstack.capacity import DEFAULT_AGENT_INTERVAL
from stackfleet.store import Store
from stackfleet.store.inventory import ShrinkLimit
from stackfleet.store.metrics import compact

log = logging.getLogger(__name__)


def roll_up(store: Store) -> None:
    """Roll every source's metric samples up (hardware, databases, queues), not only
    those of the source that happens to run a sweep."""
    try:
        compact(store, time.time())
    except SQLAlchemyError:
        log.exception("rolling up metric samples failed")


@dataclass
class CloudSpec:
    """One cloud the loop collects: its clouds.yaml name and optional system-scoped twin."""

    name: str
    system_cloud: str | None = None
    config_files: list[str] | None = None


@dataclass
class CollectionLoop:
    """One `run_once` is a pass over each of `clouds`; the scheduler repeats it."""

    store: Store
    clouds: Sequence[CloudSpec]
    after_pass: Callable[[PassResult], None] | None = None
    # seconds before an L3/DHCP agent's hosting is read again (not every pass)
    agent_interval: float = DEFAULT_AGENT_INTERVAL
    # why the clouds whose pass could not run at all failed, in the newest run_once
    errors: list[str] = field(default_factory=list)
    # scale-out (run_due): this process's share of the partitions, by their keys
    # `collect:<cloud>/<region>`; and the seconds between passes of one partition
    share: Callable[[list[str]], set[str]] | None = None
    # the settings' shrink hold (collect.shrink_percent / shrink_count / hold_shrinks)
    shrink: ShrinkLimit | None = field(default_factory=ShrinkLimit)
    # a lock held for the length of one partition's pass (None: no other collector)
    holding: Callable[[str], AbstractContextManager[bool]] | None = None
    interval: float = 300.0
    # partition key -> monotonic time its next pass is due (partitions owned so far)
    _due: dict[str, float] = field(default_factory=dict)
    _partitions: list[tuple[CloudSpec, str]] | None = None

    def run_once(self) -> list[PassResult]:
        """A pass over every cloud, the `after_pass` hook after each, then the metric
        rollups. A cloud that cannot be collected is logged and left in `errors`."""
        results: list[PassResult] = []
        self.errors = []
        for cloud in self.clouds:
            try:
                results.extend(
                    collect(
                        self.store,
                        cloud.name,
                        None,
                        cloud.system_cloud,
                        cloud.config_files,
                        agent_interval=self.agent_interval,
                        shrink=self.shrink,
                        keep_records=False,
                    )
                )
            except StackFleetError as exc:
                # recorded as a failed pass by collect(); keep the loop alive
                log.error("pass over %s failed: %s", cloud.name, exc)
                self.errors.append(f"{cloud.name}: {exc}")
        return self._finish(results)

    def _finish(self, results: list[PassResult]) -> list[PassResult]:
        for result in results:
            if self.after_pass:
                self.after_pass(result)
        roll_up(self.store)
        return results

    def partitions(self) -> list[tuple[CloudSpec, str]]:
        """(cloud, region) of every region clouds.yaml gives the clouds (read once)."""
        if self._partitions is None:
            from stackfleet.sources.openstack.connection import cloud_regions

            self._partitions = [
                (cloud, region)
                for cloud in self.clouds
                for region in cloud_regions(cloud.name, cloud.config_files)
            ]
        return self._partitions

    def run_due(self, now: float | None = None) -> list[PassResult]:
        """Scale-out: a pass over each partition this process owns that is due — one it
        has just gained (a worker joined, left or died: collected at once) or whose
        interval has passed since its last pass here. Partitions it lost are dropped."""
        now = time.monotonic() if now is None else now
        every = {
            f"collect:{cloud.name}/{region}": (cloud, region) for cloud, region in self.partitions()
        }
        mine = self.share(list(every)) if self.share is not None else set(every)
        owned = {key: spec for key, spec in every.items() if key in mine}
        for key in list(self._due):
            if key not in owned:
                del self._due[key]
        for key in owned:
            self._due.setdefault(key, now)
        results: list[PassResult] = []
        self.errors = []
        # the most overdue first: a gained partition waits for no routine pass
        due = sorted((when, key) for key, when in self._due.items() if when <= now)
        for _when, key in due:
            if self.share is not None and key not in self.share(list(every)):
                continue  # lost while this run went on
            cloud, region = owned[key]
            with self.holding(key) if self.holding else nullcontext(True) as held:
                if not held:
                    # its former owner is still in a pass of it: try again next tick
                    log.info("%s is being collected by another worker", key)
                    continue
                try:
                    results.extend(
                        collect(
                            self.store,
                            cloud.name,
                            region or None,
                            cloud.system_cloud,
                            cloud.config_files,
                            agent_interval=self.agent_interval,
                            shrink=self.shrink,
                            keep_records=False,
                        )
                    )
                except StackFleetError as exc:
                    log.error("pass over %s/%s failed: %s", cloud.name, region, exc)
                    self.errors.append(f"{cloud.name}/{region}: {exc}")
            self._due[key] = time.monotonic() + self.interval
        for result in results:
            if self.after_pass:
                self.after_pass(result)
        # the metric rollups are the leader's job here (one writer, no races)
        return results
