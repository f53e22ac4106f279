"""Actions on Cinder volumes: delete (optionally after a snapshot) and metadata."""

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

VOLUME = ("volume",)


def _volume_state(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    conn = ctx.connection(record["cloud"], record["region"])
    missing, volume = gone(conn.block_storage.get_volume, record["id"])
    if missing:
        return None
    return {
        "status": volume.status,
        "attached_server_ids": [a.get("server_id") for a in volume.attachments or []],
        "metadata": dict(volume.metadata or {}),
        "updated_at": getattr(volume, "updated_at", None),
    }


LIVE_READERS["volume"] = _volume_state


def _our_backup(conn: Any, record: Record, prefix: str) -> tuple[str, str] | None:
    """(id, name) of a backup of the volume an earlier run of this action made (named
    `prefix<date>`, `creating` or `available`; the newest), or None."""
    backups = call(
        f"listing the backups of {label(record)}",
        lambda: list(
            conn.block_storage.backups(details=True, all_projects=True, volume_id=record["id"])
        ),
    )
    ours = [
        b
        for b in backups
        if str(b.name or "").startswith(prefix) and b.status in ("creating", "available")
    ]
    if not ours:
        return None
    newest = max(ours, key=lambda b: str(b.created_at or ""))
    return str(newest.id), str(newest.name)


@ACTIONS.register("delete")
class DeleteVolume(Action):
    """Delete a volume; with `backup: true` a Cinder backup is made first and the volume
    is deleted only once the backup is available (a snapshot would not do: Cinder does
    not delete a volume that has snapshots, and they go with it). Without a backup
    service the deletion fails safe: nothing is deleted. Attached volumes are never
    deleted: they are reported and kept."""

    kinds = VOLUME
    destructive = True
    type: Literal["delete"] = "delete"
    backup: bool = Field(default=False, description="Back the volume up first (Cinder backup).")

    def plan(self, record: Record) -> Plan | Skip | None:
        attached = record.get("attached_server_ids") or []
        if attached:
            return Skip(
                self.type, f"attached to {len(attached)} server(s): {', '.join(attached)}; kept"
            )
        changes = []
        if self.backup:
            changes.append(
                Change("backup", None, f"{record.get('name') or record['id']}-stackfleet-<date>")
            )
        changes.append(
            Change(
                "volume",
                f"{record.get('name')} ({record.get('size')} GB, {record.get('status')})",
                None,
            )
        )
        return self.make_plan(
            record,
            f"delete {label(record)}",
            *changes,
            expects={"status": record.get("status"), "attached_server_ids": []},
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return _volume_state(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        result: dict[str, Any] = {}
        if self.backup:
            prefix = f"{record.get('name') or record['id']}-stackfleet-"
            # a run that made the backup but did not delete the volume (the delete failed,
            # or the backup outlasted the verify timeout) left it: use it, make no second
            earlier = _our_backup(conn, record, prefix)
            if earlier is not None:
                backup_id, name = earlier
            else:
                name = f"{prefix}{ctx.now:%Y%m%d}"
                backup = call(
                    f"backup of {label(record)}",
                    conn.block_storage.create_backup,
                    volume_id=record["id"],
                    name=name,
                    force=True,
                )
                backup_id = backup.id

            def available() -> tuple[bool, dict[str, Any]]:
                current = call("reading the backup", conn.block_storage.get_backup, backup_id)
                if current.status == "error":
                    raise ActionError(
                        f"backup {backup_id} of {label(record)} failed"
                        + (f": {current.fail_reason}" if current.fail_reason else "")
                    )
                return current.status == "available", {"backup_status": current.status}

            outcome = wait_for(ctx, available, f"backup {backup_id}")
            if not outcome.verified:
                raise ActionError(f"{outcome.message}; the volume was not deleted")
            result = {"backup_id": backup_id, "backup_name": name}
            # the backup took a while: is the volume still unattached, in the state the
            # plan expects, and not tagged for exclusion? If not, keep it (and the backup)
            still_as_planned(ctx, result)
        call(
            f"delete {label(record)}",
            conn.block_storage.delete_volume,
            record["id"],
            ignore_missing=False,
        )
        return result

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        def check() -> tuple[bool, dict[str, Any]]:
            state = _volume_state(ctx, record)
            return state is None, state or {"gone": True}

        outcome = wait_for(ctx, check, f"delete {label(record)}")
        outcome.result = result
        return outcome


@ACTIONS.register("set-metadata")
class SetVolumeMetadata(Action):
    """Set metadata keys on a volume (other keys are kept)."""

    kinds = VOLUME
    type: Literal["set-metadata"] = "set-metadata"
    metadata: dict[str, str] = Field(description="Keys and values to set.")

    def plan(self, record: Record) -> Plan | None:
        return self.make_plan(
            record,
            f"set metadata on {label(record)}",
            *(Change(f"metadata.{k}", None, v) for k, v in self.metadata.items()),
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return _volume_state(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        call(
            f"set metadata on {label(record)}",
            conn.block_storage.set_volume_metadata,
            record["id"],
            **self.metadata,
        )
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        metadata = (_volume_state(ctx, record) or {}).get("metadata") or {}
        ok = all(metadata.get(k) == v for k, v in self.metadata.items())
        return Outcome(verified=ok, observed={"metadata": metadata})


@ACTIONS.register("clear-metadata")
class ClearVolumeMetadata(Action):
    """Remove metadata keys from a volume."""

    kinds = VOLUME
    type: Literal["clear-metadata"] = "clear-metadata"
    keys: list[str] = Field(min_length=1, description="Keys to remove.")

    def plan(self, record: Record) -> Plan | None:
        return self.make_plan(
            record,
            f"clear metadata on {label(record)}",
            *(Change(f"metadata.{k}", "(set)", None) for k in self.keys),
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return _volume_state(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        current = (_volume_state(ctx, record) or {}).get("metadata") or {}
        present = [k for k in self.keys if k in current]
        if present:
            call(
                f"clear metadata on {label(record)}",
                conn.block_storage.delete_volume_metadata,
                record["id"],
                present,
            )
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        metadata = (_volume_state(ctx, record) or {}).get("metadata") or {}
        return Outcome(
            verified=not any(k in metadata for k in self.keys), observed={"metadata": metadata}
        )
