"""`stackfleet nodes show HOST`: one host as the operator thinks of it — inventory,
capacity in use, hardware readings, the services it runs and its instances."""

from __future__ import annotations

from typing import Annotated

import typer

from stackfleet.cli.context import state
from stackfleet.cli.output import Format, FormatOption, emit_object

app = typer.Typer(
    help="Hosts: compute, network and storage hosts and bare-metal nodes, with their hardware."
)


def register(root: typer.Typer) -> None:
    """Add `stackfleet nodes` to the root app."""
    app.command("show")(show_command)
    root.add_typer(app, name="nodes")


def show_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Compute host, hypervisor hostname or node name.")],
    fmt: FormatOption = Format.table,
) -> None:
    """One host: inventory, capacity in use, hardware (newest sweep), services, instances.

    A BMC that could not be read shows its status, and readings_at: the time of the last
    good reading shown."""
    from stackfleet.engine.nodes import node_view

    emit_object(node_view(state(ctx).store(), host), fmt)
