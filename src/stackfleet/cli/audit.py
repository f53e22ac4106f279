"""Audit and approval commands: the hash-chained audit log, and the queue of actions
waiting for an operator's approval."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from stackfleet.cli.context import state
from stackfleet.cli.options import AUDIT_CHECKPOINTS_ENV
from stackfleet.cli.output import Format, FormatOption, emit_object, emit_rows
from stackfleet.core.errors import StackFleetError

out = Console(highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `audit`, `approvals`, `approve` and `reject` to the root app."""
    audit = typer.Typer(help="The append-only, hash-chained audit log.")
    audit.command("list")(audit_list)
    audit.command("show")(audit_show)
    audit.command("verify")(audit_verify)
    audit.command("checkpoint")(audit_checkpoint)
    app.add_typer(audit, name="audit")
    approvals = typer.Typer(help="Actions waiting for approval, and every action's record.")
    approvals.command("list")(approvals_list)
    app.add_typer(approvals, name="approvals")
    app.command("approve")(approve_command)
    app.command("reject")(reject_command)


def audit_list(
    ctx: typer.Context,
    event: Annotated[str | None, typer.Option("--event", help="e.g. action.completed")] = None,
    policy: Annotated[str | None, typer.Option("--policy", help="Only this policy.")] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Resource id (or part of cloud/region/kind/id).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    fmt: FormatOption = Format.table,
) -> None:
    """Audit entries, newest first."""
    from stackfleet.store.audit import AuditLog

    rows, total = AuditLog(state(ctx).store()).list(
        limit=limit, event=event, policy=policy, target=target
    )
    for row in rows:
        details = row["details"] or {}
        row["summary"] = (
            details.get("summary") or details.get("reason") or details.get("error") or ""
        )
    columns = ["seq", "at", "actor", "event", "policy", "target", "action_id", "summary"]
    headers = ["#", "At", "Actor", "Event", "Policy", "Target", "Action", "Summary"]
    if fmt in (Format.json, Format.yaml):
        # machine formats carry the whole entry, hashes included
        columns += ["details", "prev_hash", "hash"]
        headers += ["Details", "Previous hash", "Hash"]
    emit_rows(rows, columns, fmt, headers=headers, title=f"{len(rows)} of {total} audit entries")


def audit_show(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(help="Entry number.")],
    fmt: FormatOption = Format.table,
) -> None:
    """One audit entry with its details and hashes."""
    from stackfleet.store.audit import AuditLog

    emit_object(AuditLog(state(ctx).store()).get(seq), fmt)


CheckpointsOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoints",
        envvar=AUDIT_CHECKPOINTS_ENV,
        help="Checkpoint file kept outside the database (JSON lines; default "
        f"${AUDIT_CHECKPOINTS_ENV}).",
    ),
]


def audit_verify(ctx: typer.Context, checkpoints: CheckpointsOption = None) -> None:
    """Check the chain (each entry's HMAC under the audit key, its link to the previous
    one, the head) and the checkpoints: exits 1 and says where when an entry was
    edited, deleted or rewritten."""
    from stackfleet.store.audit import AuditLog

    result = AuditLog(state(ctx).store()).verify(checkpoints)
    if result.ok:
        extra = ""
        if result.unkeyed:
            extra += f"; {result.unkeyed} older entries unkeyed (before the audit key)"
        if checkpoints is not None:
            extra += f"; {result.checkpoints} checkpoints consistent"
        out.print(
            f"[green]ok[/]: {result.entries} entries, chain intact; head #{result.head_seq} "
            f"{result.head_hash}{extra}"
        )
        return
    out.print(f"[bold red]audit log tampered with[/] ({result.entries} entries checked):")
    for problem in result.problems:
        out.print(f"  - {escape(problem)}")
    raise typer.Exit(1)


def audit_checkpoint(ctx: typer.Context, checkpoints: CheckpointsOption = None) -> None:
    """Sign the head of the log (seq, hash, time) and append it to the checkpoint file
    (and the log stream): keep that file where the database's writers cannot change
    it, so a later `audit verify --checkpoints` catches a truncated or rewritten log."""
    from stackfleet.store.audit import AuditLog

    point = AuditLog(state(ctx).store()).checkpoint(checkpoints)
    if checkpoints is None:
        # no file: print it for the operator to keep
        print(json.dumps(point, sort_keys=True))
        return
    out.print(f"checkpoint of entry #{point['seq']} appended to {escape(str(checkpoints))}")


def approvals_list(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="awaiting-approval (default), approved, succeeded, ..."),
    ] = "awaiting-approval",
    all_: Annotated[bool, typer.Option("--all", help="Every action record.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    fmt: FormatOption = Format.table,
) -> None:
    """Actions waiting for approval (--all: every action record)."""
    from stackfleet.store import action_records

    rows, total = action_records.list_actions(
        state(ctx).store(), None if all_ else status, limit=limit
    )
    for row in rows:
        row["summary"] = (row["plan"] or {}).get("summary", "")
    emit_rows(
        rows,
        ["id", "status", "policy", "action", "summary", "destructive", "created_at"],
        fmt,
        headers=["ID", "Status", "Policy", "Action", "Summary", "Destructive", "Created"],
        title=f"{len(rows)} of {total} actions",
    )


def _decide(ctx: typer.Context, action_id: int, approve: bool, actor: str | None) -> None:
    from stackfleet.store import action_records
    from stackfleet.store.audit import AuditLog

    store = state(ctx).store()
    who = actor or getpass.getuser()
    now = datetime.now(UTC)
    row = action_records.decide(store, action_id, approve, who, now)
    event = "approval.granted" if approve else "approval.rejected"
    AuditLog(store).append(
        event,
        {"action": row["action"], "summary": (row["plan"] or {}).get("summary")},
        actor=who,
        policy=row["policy"],
        target=f"{row['cloud']}/{row['region']}/{row['kind']}/{row['resource_id']}",
        action_id=action_id,
    )
    verb = "approved" if approve else "rejected"
    summary = escape(str((row["plan"] or {}).get("summary")))
    from stackfleet.provision.approvals import carry_out, is_provisioning

    if approve and is_provisioning(row):
        # a workload's create, delete or verb: carried out now, by whoever approves
        from stackfleet.engine.settings import load_settings

        out.print(f"action {action_id} approved: {summary}; carrying it out")
        done = carry_out(store, action_id, load_settings(None), actor=who)
        out.print(f"action {action_id} {done.status}: {escape(done.message)}")
        if done.status not in ("succeeded", "done"):
            raise ActionFailed(f"action {action_id} {done.status}: {done.message}")
        return
    hint = " (it runs at the next policy run with --execute)" if approve else ""
    out.print(f"action {action_id} {verb}: {summary}{hint}")


class ActionFailed(StackFleetError):
    """An approved action did not take (failed, skipped or unverified)."""

    exit_code = 5


def approve_command(
    ctx: typer.Context,
    action_id: Annotated[int, typer.Argument(help="Action id (see `stackfleet approvals list`).")],
    actor: Annotated[str | None, typer.Option("--as", help="Who approves (default: you).")] = None,
) -> None:
    """Approve an action waiting in the queue."""
    _decide(ctx, action_id, True, actor)


def reject_command(
    ctx: typer.Context,
    action_id: Annotated[int, typer.Argument(help="Action id.")],
    actor: Annotated[str | None, typer.Option("--as", help="Who rejects (default: you).")] = None,
) -> None:
    """Reject an action waiting in the queue (it is never carried out)."""
    _decide(ctx, action_id, False, actor)
