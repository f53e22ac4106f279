"""The reclamation lease action (cloudminion, CERN-style leases): the options of a
lease and the concrete actions of each of its steps. The engine (engine/leases.py)
keeps each resource's progress in the store and decides which step is due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from stackfleet.actions.base import ACTIONS, Action, Plan, Record
from stackfleet.actions.block_storage import ClearVolumeMetadata, DeleteVolume, SetVolumeMetadata
from stackfleet.actions.compute import (
    ClearServerMetadata,
    DeleteServer,
    LockServer,
    SetServerMetadata,
    StopServer,
    UnlockServer,
)
from stackfleet.actions.network import (
    UNUSED,
    DeletePort,
    ReleaseFloatingIP,
    TagNeutronResource,
    UntagNeutronResource,
)
from stackfleet.actions.notify import Notify
from stackfleet.core.times import Duration

DAY = timedelta(days=1)
# What the final step does, per kind.
FINAL_VERB = {
    "server": "deleted",
    "volume": "deleted",
    "floating_ip": "released",
    "port": "deleted",
}

# What a resource in a lease must still be, on the live record, for any step that
# moves it towards reclamation (mark, remind, stop, delete) to act: unused by its own
# fields, as the final action requires (release skips an associated floating IP,
# delete an attached volume or a port on a device). Checked just before each action,
# the notices included, so that a pass that missed a port cannot make an attached
# floating IP look unused to the lease.
UNUSED_FIELDS: dict[str, dict[str, Any]] = {
    **UNUSED,
    "volume": {"attached_server_ids": []},
}


@ACTIONS.register("lifecycle")
class ReclaimLease(Action):
    """Reclaim a resource in steps, telling its owner at each one. On the first match it
    is marked (server or volume metadata, or a Neutron tag `<mark_key>=<date>`, saying
    when the next step comes) and the owner is notified. Servers are stopped and locked
    after `stop_after`, then snapshotted (with `snapshot: true`) and deleted after
    `delete_after`; volumes (after a Cinder backup, with `snapshot: true`), floating
    IPs and ports are deleted / released after `stop_after`. A reminder goes out
    `remind_before` each step. Attached volumes are never deleted with a server (they
    are detached and kept).

    The lease is cancelled, and the mark removed (and a server we locked unlocked),
    when the resource is used again: when it matches `cancel_when` (filters, e.g.
    `[{status: ACTIVE}]`), or — without `cancel_when` — when the policy no longer
    matches it; a server we stopped that is running again is in use again too. Owners
    may push a step back with `stackfleet lease extend`, up to `max_extension` in all."""

    kinds = ("server", "volume", "floating_ip", "port")
    destructive = True
    # Options holding filters, parsed by the policy loader for the action's kind.
    nested_filters: ClassVar[tuple[str, ...]] = ("cancel_when",)

    type: Literal["lifecycle"] = "lifecycle"
    stop_after: Duration = Field(
        default=7 * DAY, description="Grace period from the mark to stop (others: delete)."
    )
    delete_after: Duration = Field(
        default=5 * DAY, description="Servers: grace period from stop to delete."
    )
    snapshot: bool = Field(
        default=True,
        description="Keep a copy before deleting: a server snapshot image, a volume backup.",
    )
    lock: bool = Field(default=True, description="Servers: lock when stopping.")
    notify: list[str] = Field(
        default_factory=lambda: ["owner"], description="Who is told (owner and/or addresses)."
    )
    webhook: str | None = Field(default=None, description="Also post each notice here.")
    remind_before: list[Duration] = Field(
        default_factory=lambda: [2 * DAY], description="Reminders before each step."
    )
    max_extension: Duration = Field(
        default=30 * DAY, description="Most an owner may extend, in all."
    )
    mark_key: str = Field(
        default="stackfleet-lifecycle", description="Metadata key or tag that marks it."
    )
    cancel_when: list[Any] = Field(
        default_factory=list, description="Filters meaning 'used again'."
    )

    def plan(self, record: Record) -> Plan | None:
        """The whole lease in words (the engine plans each step's actions)."""
        kind = record["kind"]
        steps = [f"mark and notify now; {FINAL_VERB.get(kind, 'deleted')} later"]
        return self.make_plan(record, f"lease of {record['id']}: {'; '.join(steps)}")

    # -- the concrete actions of each step --------------------------------------------
    def mark_text(self, step: str, deadline: datetime, policy: str) -> str:
        return f"{step} after {deadline:%Y-%m-%d %H:%M} UTC (policy {policy})"

    def mark(self, kind: str, text: str, deadline: datetime) -> list[Action]:
        if kind == "server":
            return [SetServerMetadata(metadata={self.mark_key: text})]
        if kind == "volume":
            return [SetVolumeMetadata(metadata={self.mark_key: text})]
        return [TagNeutronResource(tags=[f"{self.mark_key}={deadline:%Y-%m-%d}"])]

    def unmark(self, kind: str, locked_by_us: bool) -> list[Action]:
        if kind == "server":
            actions: list[Action] = [ClearServerMetadata(keys=[self.mark_key])]
            if locked_by_us:
                actions.append(UnlockServer())
            return actions
        if kind == "volume":
            return [ClearVolumeMetadata(keys=[self.mark_key])]
        return [UntagNeutronResource(tags=[self.mark_key])]

    def notice(self, subject: str, message: str) -> Notify:
        return Notify(to=self.notify, webhook=self.webhook, subject=subject, message=message)

    def stop(self) -> list[Action]:
        actions: list[Action] = [StopServer()]
        if self.lock:
            actions.append(LockServer(reason="stopped by StackFleet: unused"))
        return actions

    def final(self, kind: str) -> list[Action]:
        if kind == "server":
            return [DeleteServer(snapshot=self.snapshot)]
        if kind == "volume":
            return [DeleteVolume(backup=self.snapshot)]
        if kind == "floating_ip":
            return [ReleaseFloatingIP()]
        return [DeletePort()]
