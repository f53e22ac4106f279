"""The periodic control loop: a collection pass over each configured cloud every
interval. Later stages (policies, actions) hook in after each pass."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from stackfleet.core.errors import StackFleetError
from stackfleet.engine.collect import PassResult, collect
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
    """Runs passes over `clouds` every `interval` seconds in a background thread."""

    store: Store
    clouds: Sequence[CloudSpec]
    interval: float = 300.0
    after_pass: Callable[[PassResult], None] | None = None
    # seconds before an L3/DHCP agent's hosting is read again (not every pass)
    agent_interval: float = DEFAULT_AGENT_INTERVAL
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def run_once(self) -> list[PassResult]:
        results: list[PassResult] = []
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

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a bug in one pass must not end the daemon
                log.exception("collection pass crashed")
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="collection-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
