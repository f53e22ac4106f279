"""`stackfleet`: the command-line interface.

Library code raises StackFleetError subclasses; this module prints them as one line
and exits non-zero. Nothing below the CLI prints.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Annotated, Any

import typer
from rich.console import Console

from stackfleet.cli import (
    alerts,
    audit,
    capacity,
    events,
    hardware,
    infra,
    inventory,
    lease,
    nodes,
    policy,
    reference,
    reports,
    serve,
    simulator,
    usage,
)
from stackfleet.cli.context import State
from stackfleet.core.errors import StackFleetError

err = Console(stderr=True)

app = typer.Typer(
    name="stackfleet",
    help="Day-2 fleet management for OpenStack clouds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
inventory.register(app)
infra.register(app)
policy.register(app)
audit.register(app)
reports.register(app)
lease.register(app)
alerts.register(app)
hardware.register(app)
nodes.register(app)
capacity.register(app)
usage.register(app)
events.register(app)
app.add_typer(simulator.app, name="simulator")
app.command("demo")(simulator.demo_command)
app.command("serve")(serve.serve_command)
app.command("worker")(serve.worker_command)
reference.register(app)


@app.callback()
def main(
    ctx: typer.Context,
    db_url: Annotated[
        str | None,
        typer.Option(
            "--db-url",
            envvar="STACKFLEET_DB_URL",
            help="Store URL (default: SQLite in the user's data directory).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Log debug messages.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        # keystoneauth and openstacksdk log what StackFleet reports as one clear error
        for noisy in ("keystoneauth", "openstack", "stevedore"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        # concurrent listings of several services behind one address (the simulator)
        # outgrow requests' pool of 10 connections per host: harmless, said per request
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="openstack")
    ctx.obj = State(db_url=db_url, debug=debug)


def run(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning StackFleet errors into one clear line."""
    try:
        return app(args=argv, standalone_mode=True)
    except StackFleetError as exc:
        err.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
        if os.environ.get("STACKFLEET_DEBUG"):
            raise
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    run()
