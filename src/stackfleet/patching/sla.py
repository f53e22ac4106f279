"""k of n during a campaign: members of an SLA workload (the settings'
health.workloads) move or rebuild one at a time, across every host of a batch, and a
step that takes a member down (a stop, a cold migration, a rebuild) is refused when it
would leave the workload below its min_healthy members."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from stackfleet.engine.health import workload_members
from stackfleet.engine.health_settings import Workload
from stackfleet.patching.step_context import StepContext

SERVING_STATUSES = ("ACTIVE", "MIGRATING")


@dataclass
class SlaWorkload:
    """A workload of the settings (health.workloads) and its members' server ids."""

    workload: Workload
    members: set[str]

    @property
    def name(self) -> str:
        return self.workload.name

    @property
    def selector(self) -> str:
        return self.workload.selector

    @property
    def min_healthy(self) -> int:
        """k: None in the settings means every member."""
        return self.workload.min_healthy or len(self.members)


class WorkloadSla(StepContext):
    """k of n: the SLA workloads (health.workloads) whose members a step takes down
    one at a time, never below their min_healthy."""

    def _sla_workloads(self) -> list[SlaWorkload]:
        """The settings' workloads (health.workloads) of this cloud region, with their
        members from the newest collection pass."""
        configured = self.runner.settings.health.workloads
        if not configured:
            return []
        servers, _ = self.store.list_resources(
            "server", cloud=self.spec.cloud, region=self.region or None
        )
        groups, _ = self.store.list_resources(
            "server_group", cloud=self.spec.cloud, region=self.region or None
        )
        found = []
        for workload in configured:
            members = {str(s["id"]) for s in workload_members(workload, servers, groups)}
            if members:
                found.append(SlaWorkload(workload, members))
        return found

    @contextmanager
    def _workload_locks(self, server_id: str, sla: list[SlaWorkload]) -> Iterator[None]:
        """Hold the lock of each SLA workload the server is a member of while it moves:
        one member of a workload at a time, across every host of the batch."""
        names = sorted(w.name for w in sla if server_id in w.members)
        with self._locks_guard:
            locks = [self._sla_locks.setdefault(n, threading.Lock()) for n in names]
        for held in locks:
            held.acquire()
        try:
            yield
        finally:
            for held in reversed(locks):
                held.release()

    def _sla_breach(self, server_id: str, sla: list[SlaWorkload]) -> str:
        """Why taking `server_id` down (a stop, a cold migration) would leave one of its
        workloads below its k healthy members ("" when it would not). Read live: a
        member counts while it runs (ACTIVE, or MIGRATING: a live migration keeps the
        guest running)."""
        for workload in sla:
            if server_id not in workload.members:
                continue
            serving = 0
            for member in sorted(workload.members - {server_id}):
                live = self._read_server(member)
                if live is not None and live.get("status") in SERVING_STATUSES:
                    serving += 1
            if serving < workload.min_healthy:
                return (
                    f"workload {workload.name!r} ({workload.selector}) would keep "
                    f"{serving} of {len(workload.members)} members healthy, below its "
                    f"min_healthy {workload.min_healthy}"
                )
        return ""
