"""Actions on Nova servers: stop, start, lock, unlock, delete (optionally after a
snapshot), snapshot, metadata and tags; and for recovery evacuate, reset-state, reboot
and rebuild."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from stackfleet.actions.base import (
    ACTIONS,
    LIVE_READERS,
    Action,
    ActionContext,
    ActionError,
    Change,
    FailedInService,
    Outcome,
    Plan,
    Record,
    Skip,
    call,
    gone,
    label,
    still_as_planned,
    wait_for,
)
from stackfleet.model.kinds import POWER_STATES

SERVER = ("server",)


def _server_state(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    conn = ctx.connection(record["cloud"], record["region"])
    missing, server = gone(conn.compute.get_server, record["id"])
    if missing:
        return None
    return server_state(server)


def server_state(server: Any) -> dict[str, Any]:
    """What the live readers compare of a server (openstacksdk Server), from one read."""
    power = server.power_state
    return {
        "status": server.status,
        "power_state": POWER_STATES.get(power, str(power)) if power is not None else None,
        "locked": bool(server.is_locked),
        "metadata": dict(server.metadata or {}),
        "tags": list(server.tags or []),
        "task_state": server.task_state,
        "volume_ids": sorted(str(v.get("id")) for v in server.attached_volumes or []),
        # "" for a server booted from a volume (Nova says image "")
        "image_id": getattr(getattr(server, "image", None), "id", None) or None,
        # how new this answer is (engine/execute.py: an answer older than the pass is
        # a stale read, not acted on)
        "updated": getattr(server, "updated_at", None),
    }


LIVE_READERS["server"] = _server_state


def _server_fault(ctx: ActionContext, record: Record) -> str:
    """Nova's fault message of the server, as ": <message>" ("" when it shows none: its
    API shows a server's fault only in ERROR or DELETED, so a stop that failed and left
    the server ACTIVE has its message in the server's events, not here)."""
    conn = ctx.connection(record["cloud"], record["region"])
    try:
        fault = getattr(conn.compute.get_server(record["id"]), "fault", None)
    except Exception:  # noqa: BLE001 - the failure is reported either way
        return ""
    message = fault.get("message") if isinstance(fault, dict) else None
    if message:
        return f": {message}"
    return " (Nova shows no fault for the server: see `openstack server event list`)"


def _server_expects(record: Record, *fields: str) -> dict[str, Any]:
    """What a destructive server action expects of the live server: the pass's values
    of `fields` (those the pass saw a value of), and no task under way."""
    expects: dict[str, Any] = {n: record[n] for n in fields if record.get(n) is not None}
    if "volume_ids" in expects:
        expects["volume_ids"] = sorted(map(str, expects["volume_ids"] or []))
    expects["task_state"] = None
    return expects


def snapshot_name(record: Record, ctx: ActionContext) -> str:
    """Name of a snapshot taken before deleting: server name and date."""
    return f"{record.get('name') or record['id']}-stackfleet-{ctx.now:%Y%m%d}"


def take_snapshot(ctx: ActionContext, record: Record) -> dict[str, Any]:
    """Snapshot a server to a Glance image and wait until the image is active."""
    conn = ctx.connection(record["cloud"], record["region"])
    name = snapshot_name(record, ctx)
    image = call(
        f"snapshot of {label(record)}",
        conn.compute.create_server_image,
        record["id"],
        name,
        metadata={"stackfleet_source": record["id"]},
    )

    def active() -> tuple[bool, dict[str, Any]]:
        current = call("reading the snapshot", conn.image.get_image, image.id)
        if current.status in ("killed", "deleted"):
            raise ActionError(f"snapshot {image.id} of {label(record)} ended {current.status}")
        return current.status == "active", {"snapshot_status": current.status}

    outcome = wait_for(ctx, active, f"snapshot {image.id}")
    if not outcome.verified:
        raise ActionError(f"{outcome.message}; the server was not deleted")
    return {"snapshot_image_id": image.id, "snapshot_name": name}


class _ServerAction(Action):
    kinds = SERVER

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return _server_state(ctx, record)

    def _wait(
        self,
        ctx: ActionContext,
        record: Record,
        field: str,
        wanted: Any,
        before: Any = None,
    ) -> Outcome:
        """Wait until the server's `field` is `wanted` with no task under way. With
        `before` (the value the action changes), a server whose task state is cleared
        while `field` still has that value ends the wait at once: Nova's compute service
        failed the action and reverted its task state (a stop refused by the
        hypervisor leaves the server ACTIVE); waiting out the timeout would only hide
        it. Seen on two reads in a row, as Nova sets the task state before it answers
        the request, so a read that misses it is the revert, not a late start."""
        reverted = [0]

        def check() -> tuple[bool, dict[str, Any]]:
            state = _server_state(ctx, record)
            if state is None:
                return False, {"gone": True}
            if state.get(field) == wanted and not state.get("task_state"):
                return True, state
            unchanged = before is not None and before != wanted and state.get(field) == before
            reverted[0] = reverted[0] + 1 if unchanged and not state.get("task_state") else 0
            if reverted[0] >= 2:
                raise FailedInService(
                    f"{self.type} {label(record)} failed in Nova: the task ended with "
                    f"{field} still {before!r}{_server_fault(ctx, record)}"
                )
            return False, state

        return wait_for(ctx, check, f"{self.type} {label(record)}")


@ACTIONS.register("stop")
class StopServer(_ServerAction):
    """Stop (shut off) a server. Its disk, addresses and volumes stay; it stops
    using CPU and RAM (though Nova still accounts them to the host)."""

    destructive = True
    type: Literal["stop"] = "stop"

    def plan(self, record: Record) -> Plan | None:
        if record.get("status") == "SHUTOFF":
            return None
        return self.make_plan(
            record,
            f"stop {label(record)}",
            Change("status", record.get("status"), "SHUTOFF"),
            expects=_server_expects(record, "status", "power_state"),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        call(f"stop {label(record)}", conn.compute.stop_server, record["id"])
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "status", "SHUTOFF", before=record.get("status"))


@ACTIONS.register("start")
class StartServer(_ServerAction):
    """Start a stopped server."""

    type: Literal["start"] = "start"

    def plan(self, record: Record) -> Plan | None:
        if record.get("status") != "SHUTOFF":
            return None
        return self.make_plan(
            record, f"start {label(record)}", Change("status", record.get("status"), "ACTIVE")
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        call(f"start {label(record)}", conn.compute.start_server, record["id"])
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "status", "ACTIVE", before="SHUTOFF")


@ACTIONS.register("lock")
class LockServer(_ServerAction):
    """Lock a server, so that its owner cannot stop, start or delete it until it is
    unlocked (by an admin, when an admin locked it)."""

    type: Literal["lock"] = "lock"
    reason: str | None = Field(default=None, description="Locked reason (Nova 2.73+).")

    def plan(self, record: Record) -> Plan | None:
        if record.get("locked"):
            return None
        return self.make_plan(record, f"lock {label(record)}", Change("locked", False, True))

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        call(
            f"lock {label(record)}",
            conn.compute.lock_server,
            record["id"],
            locked_reason=self.reason,
        )
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "locked", True)


@ACTIONS.register("unlock")
class UnlockServer(_ServerAction):
    """Unlock a locked server."""

    type: Literal["unlock"] = "unlock"

    def plan(self, record: Record) -> Plan | None:
        if not record.get("locked"):
            return None
        return self.make_plan(record, f"unlock {label(record)}", Change("locked", True, False))

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        call(f"unlock {label(record)}", conn.compute.unlock_server, record["id"])
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "locked", False)


@ACTIONS.register("snapshot")
class SnapshotServer(_ServerAction):
    """Snapshot a server to a Glance image (named `<server>-stackfleet-<date>`) and wait
    until the image is active."""

    type: Literal["snapshot"] = "snapshot"

    def plan(self, record: Record) -> Plan | None:
        return self.make_plan(
            record,
            f"snapshot {label(record)}",
            Change(
                "snapshot", None, f"image {record.get('name') or record['id']}-stackfleet-<date>"
            ),
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return _server_state(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        return take_snapshot(ctx, record)

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return Outcome(verified=True, result=result, observed={"snapshot_status": "active"})


@ACTIONS.register("delete")
class DeleteServer(_ServerAction):
    """Delete a server; with `snapshot: true` a snapshot is taken first and the server
    is deleted only once the snapshot image is active. Volumes attached to it are
    detached, not deleted."""

    destructive = True
    type: Literal["delete"] = "delete"
    snapshot: bool = Field(default=False, description="Snapshot to an image first.")

    def plan(self, record: Record) -> Plan | None:
        changes = []
        if self.snapshot:
            changes.append(
                Change(
                    "snapshot",
                    None,
                    f"image {record.get('name') or record['id']}-stackfleet-<date>",
                )
            )
        changes.append(Change("server", f"{record.get('name')} ({record.get('status')})", None))
        # Attached volumes are detached by Nova and kept: say so in the plan.
        kept = record.get("volume_ids") or []
        if kept:
            changes.append(Change("volumes kept (detached)", None, ", ".join(map(str, kept))))
        # the server as the pass saw it: not started again, no new volume, no task
        return self.make_plan(
            record,
            f"delete {label(record)}",
            *changes,
            expects=_server_expects(record, "status", "power_state", "locked", "volume_ids"),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        result = take_snapshot(ctx, record) if self.snapshot else {}
        if self.snapshot:
            # the snapshot took a while: is the server still as planned (not started,
            # not tagged for exclusion)? If not, keep it (and the snapshot)
            still_as_planned(ctx, result)
        conn = ctx.connection(record["cloud"], record["region"])
        call(f"delete {label(record)}", conn.compute.delete_server, record["id"])
        return result

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        def check() -> tuple[bool, dict[str, Any]]:
            state = _server_state(ctx, record)
            return state is None, state or {"gone": True}

        outcome = wait_for(ctx, check, f"delete {label(record)}")
        outcome.result = result
        return outcome


@ACTIONS.register("set-metadata")
class SetServerMetadata(_ServerAction):
    """Set metadata keys on a server (other keys are kept)."""

    type: Literal["set-metadata"] = "set-metadata"
    metadata: dict[str, str] = Field(description="Keys and values to set.")

    def plan(self, record: Record) -> Plan | None:
        current = record.get("metadata") or {}
        changed = {k: v for k, v in self.metadata.items() if current.get(k) != v}
        if not changed:
            return None
        return self.make_plan(
            record,
            f"set metadata on {label(record)}",
            *(Change(f"metadata.{k}", current.get(k), v) for k, v in changed.items()),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        call(
            f"set metadata on {label(record)}",
            conn.compute.set_server_metadata,
            record["id"],
            **self.metadata,
        )
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        state = _server_state(ctx, record) or {}
        metadata = state.get("metadata") or {}
        ok = all(metadata.get(k) == v for k, v in self.metadata.items())
        return Outcome(verified=ok, observed={"metadata": metadata})


@ACTIONS.register("clear-metadata")
class ClearServerMetadata(_ServerAction):
    """Remove metadata keys from a server."""

    type: Literal["clear-metadata"] = "clear-metadata"
    keys: list[str] = Field(min_length=1, description="Keys to remove.")

    def plan(self, record: Record) -> Plan | None:
        current = record.get("metadata") or {}
        present = [k for k in self.keys if k in current]
        if not present:
            return None
        return self.make_plan(
            record,
            f"clear metadata on {label(record)}",
            *(Change(f"metadata.{k}", current[k], None) for k in present),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        present = [k for k in self.keys if k in (record.get("metadata") or {})]
        call(
            f"clear metadata on {label(record)}",
            conn.compute.delete_server_metadata,
            record["id"],
            present,
        )
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        state = _server_state(ctx, record) or {}
        metadata = state.get("metadata") or {}
        return Outcome(
            verified=not any(k in metadata for k in self.keys), observed={"metadata": metadata}
        )


@ACTIONS.register("tag")
class TagServer(_ServerAction):
    """Add tags to a server (Nova server tags)."""

    type: Literal["tag"] = "tag"
    tags: list[str] = Field(min_length=1, description="Tags to add.")

    def plan(self, record: Record) -> Plan | None:
        current = list(record.get("tags") or [])
        missing = [t for t in self.tags if t not in current]
        if not missing:
            return None
        return self.make_plan(
            record, f"tag {label(record)}", Change("tags", current, current + missing)
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        for tag in self.tags:
            call(f"tag {label(record)}", conn.compute.add_tag_to_server, record["id"], tag)
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        tags = (_server_state(ctx, record) or {}).get("tags") or []
        return Outcome(verified=all(t in tags for t in self.tags), observed={"tags": tags})


@ACTIONS.register("untag")
class UntagServer(_ServerAction):
    """Remove tags from a server."""

    type: Literal["untag"] = "untag"
    tags: list[str] = Field(min_length=1, description="Tags to remove.")

    def plan(self, record: Record) -> Plan | None:
        current = list(record.get("tags") or [])
        if not any(t in current for t in self.tags):
            return None
        return self.make_plan(
            record,
            f"untag {label(record)}",
            Change("tags", current, [t for t in current if t not in self.tags]),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        for tag in self.tags:
            if tag in (record.get("tags") or []):
                call(
                    f"untag {label(record)}",
                    conn.compute.remove_tag_from_server,
                    record["id"],
                    tag,
                )
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        tags = (_server_state(ctx, record) or {}).get("tags") or []
        return Outcome(verified=not any(t in tags for t in self.tags), observed={"tags": tags})


# -- recovery: evacuate, reset state, reboot, rebuild ------------------------------------


@ACTIONS.register("evacuate")
class EvacuateServer(_ServerAction):
    """Rebuild a server of a failed host on another host (Nova's evacuate). Only after
    the host is fenced and its compute service forced down: Nova refuses while the
    service reports, and a server running twice corrupts its disks. Without `host`
    Nova's scheduler picks the destination, respecting the server's group policy. At
    compute API 2.95 and later the server arrives SHUTOFF: start it afterwards."""

    destructive = True
    type: Literal["evacuate"] = "evacuate"
    host: str | None = Field(default=None, description="Destination host (default: scheduler).")

    def plan(self, record: Record) -> Plan | None:
        source = record.get("host")
        if not source:
            return None
        return self.make_plan(
            record,
            f"evacuate {label(record)} from {source}",
            Change("host", source, self.host or "(a host the scheduler picks)"),
            expects={"host": source},
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        state = _server_state(ctx, record)
        if state is None:
            return None
        conn = ctx.connection(record["cloud"], record["region"])
        server = call("reading the server", conn.compute.get_server, record["id"])
        state["host"] = server.compute_host
        return state

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        call(
            f"evacuate {label(record)}",
            conn.compute.evacuate_server,
            record["id"],
            host=self.host,
        )
        return {"source": record.get("host")}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        conn = ctx.connection(record["cloud"], record["region"])
        source = record.get("host")

        def moved() -> tuple[bool, dict[str, Any]]:
            server = call("reading the server", conn.compute.get_server, record["id"])
            observed = {
                "host": server.compute_host,
                "status": server.status,
                "task_state": server.task_state,
            }
            if server.status == "ERROR" and not server.task_state:
                raise ActionError(
                    f"evacuate {label(record)}: the server went to ERROR"
                    + (f" ({server.fault.get('message')})" if server.fault else "")
                )
            if not server.task_state and server.compute_host == source:
                failed = evacuation_failed(conn, record["id"], source)
                if failed:
                    raise ActionError(f"evacuate {label(record)}: {failed}")
            return (
                server.compute_host != source
                and not server.task_state
                and server.status in ("ACTIVE", "SHUTOFF"),
                observed,
            )

        outcome = wait_for(ctx, moved, f"evacuate {label(record)}")
        outcome.result = {**result, **outcome.observed}
        return outcome


def evacuation_failed(conn: Any, server_id: str, source: str | None) -> str:
    """Why Nova's newest evacuation of the server from `source` failed ("" when none
    did): the conductor found no valid host (the migration record says error)."""
    try:
        response = conn.compute.get(
            "/os-migrations",
            params={"instance_uuid": server_id, "migration_type": "evacuation"},
            microversion="2.59",
        )
        migrations = response.json().get("migrations") or [] if response.status_code < 400 else []
    except Exception:  # noqa: BLE001 - the server's own state is still read next time
        return ""
    mine = [m for m in migrations if m.get("source_compute") == source]
    if mine and max(mine, key=lambda m: m.get("id") or 0).get("status") in ("error", "failed"):
        return "Nova found no valid host for it (the evacuation's migration is in error)"
    return ""


@ACTIONS.register("reset-state")
class ResetServerState(_ServerAction):
    """Reset a server's state (admin only): clears a stuck task state and sets the
    vm_state to `state` (active by default), the first step of instance recovery."""

    type: Literal["reset-state"] = "reset-state"
    state: Literal["active", "error"] = Field(default="active", description="active or error.")

    def plan(self, record: Record) -> Plan | None:
        wanted = "ACTIVE" if self.state == "active" else "ERROR"
        if record.get("status") == wanted and not record.get("task_state"):
            return None
        return self.make_plan(
            record,
            f"reset the state of {label(record)} to {self.state}",
            Change("status", record.get("status"), wanted),
            expects={"status": record.get("status")},
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        call(
            f"reset the state of {label(record)}",
            conn.compute.reset_server_state,
            record["id"],
            self.state,
        )
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "status", "ACTIVE" if self.state == "active" else "ERROR")


@ACTIONS.register("reboot")
class RebootServer(_ServerAction):
    """Reboot a server (HARD by default: works from ERROR and from a hung guest)."""

    destructive = True
    type: Literal["reboot"] = "reboot"
    reboot_type: Literal["HARD", "SOFT"] = Field(default="HARD", description="HARD or SOFT.")

    def plan(self, record: Record) -> Plan | None:
        return self.make_plan(
            record,
            f"{self.reboot_type.lower()} reboot {label(record)}",
            Change("status", record.get("status"), "ACTIVE"),
            expects={"status": record.get("status")},
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        call(f"reboot {label(record)}", conn.compute.reboot_server, record["id"], self.reboot_type)
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "status", "ACTIVE")


@ACTIONS.register("rebuild")
class RebuildServer(_ServerAction):
    """Rebuild a server from its own image, or onto `image` (its root disk is recreated:
    data on it is lost; volumes stay). The last step of instance recovery; patching a
    server by rebuild (campaigns). A server booted from a volume has no image to
    rebuild from and is left alone."""

    destructive = True
    type: Literal["rebuild"] = "rebuild"
    image: str | None = Field(
        default=None, description="The image id to rebuild onto (default: the server's own)."
    )

    def plan(self, record: Record) -> Plan | Skip | None:
        current = record.get("image_id")
        if not current:
            return Skip(self.type, "booted from a volume: no image to rebuild from")
        image = self.image or current
        return self.make_plan(
            record,
            f"rebuild {label(record)} from image {image}",
            Change("image_id", current, image)
            if image != current
            else Change("status", record.get("status"), "ACTIVE"),
            expects={"status": record.get("status")},
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        image = self.image or record["image_id"]
        call(
            f"rebuild {label(record)}",
            conn.compute.rebuild_server,
            record["id"],
            image=image,
        )
        return {"image_id": image}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "status", "ACTIVE")
