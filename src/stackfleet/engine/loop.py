"""The collection job: a pass over each configured cloud (the daemon's scheduler,
engine/scheduler.py, repeats it every interval). Later stages (policies, actions) hook
in after each pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from stackfleet.engine.collect import PassResult, collect
from stackfleet.errors import StackFleetError
from stackfleet.sources.openstack.capacity import DEFAULT_AGENT_INTERVAL
from stackfleet.store import Store
from stackfleet.store.metrics import compact

log = logging.getLogger(__name__)


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
                    )
                )
            except StackFleetError as exc:
                # recorded as a failed pass by collect(); keep the loop alive
                log.error("pass over %s failed: %s", cloud.name, exc)
                self.errors.append(f"{cloud.name}: {exc}")
        for result in results:
            if self.after_pass:
                self.after_pass(result)
        try:
            # roll every source's samples up (hardware, databases, queues), not only
            # those of the source that happens to run a sweep
            compact(self.store, time.time())
        except SQLAlchemyError:
            log.exception("rolling up metric samples failed")
        return results
