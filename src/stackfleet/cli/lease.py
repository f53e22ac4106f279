"""Lease commands: owners see and extend the reclamation leases of their resources."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from stackfleet.cli.context import state
from stackfleet.cli.output import Format, FormatOption, emit_rows

out = Console(highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `lease list` and `lease extend` to the root app."""
    lease = typer.Typer(
        help="Leases: resources on their way to reclamation, and owners' extensions."
    )
    lease.command("list")(lease_list)
    lease.command("extend")(lease_extend)
    app.add_typer(lease, name="lease")


def lease_list(
    ctx: typer.Context,
    resource: Annotated[
        str | None, typer.Argument(help="A resource id or name (default: all).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Finished and cancelled ones too.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Resources on a reclamation lease and when their next step is due."""
    from stackfleet.store import leases

    rows = leases.list_leases(state(ctx).store(), None if all_ else "active", resource=resource)
    emit_rows(
        rows,
        [
            "id",
            "policy",
            "kind",
            "resource_name",
            "resource_id",
            "stage",
            "next_at",
            "extended_days",
            "max_extension_days",
        ],
        fmt,
        headers=[
            "ID",
            "Policy",
            "Kind",
            "Name",
            "Resource",
            "Stage",
            "Next step",
            "Extended (d)",
            "Max (d)",
        ],
    )


def lease_extend(
    ctx: typer.Context,
    resource: Annotated[str, typer.Argument(help="The resource's id or name.")],
    days: Annotated[float, typer.Option("--days", min=0.01, help="Days to add.")],
    actor: Annotated[str | None, typer.Option("--as", help="Who extends (default: you).")] = None,
) -> None:
    """Push back the next step of a resource's lease by N days.

    Allowed up to the policy's max_extension in all."""
    from stackfleet.store import leases
    from stackfleet.store.audit import AuditLog

    store = state(ctx).store()
    who = actor or getpass.getuser()
    now = datetime.now(UTC)
    changed = leases.extend(store, resource, days, now)
    for row in changed:
        AuditLog(store).append(
            "lease.extended",
            {"days": days, "next_at": row["next_at"], "lease_id": row["id"]},
            actor=who,
            policy=row["policy"],
            target=f"{row['cloud']}/{row['region']}/{row['kind']}/{row['resource_id']}",
        )
        out.print(
            f"{escape(row['kind'])} {escape(str(row['resource_name'] or row['resource_id']))}: "
            f"next step ({row['stage']}) now due {row['next_at']} "
            f"({row['extended_days']:g} of {row['max_extension_days']:g} days of extension used)"
        )
