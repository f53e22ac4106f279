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

from stackfleet.cli.command_tree import RootCommand, RootGroup
from stackfleet.cli.context import State
from stackfleet.core.errors import StackFleetError

# Every root command: its module is imported, and its options read, only when it runs
# (or its own help is shown). The help here is what `stackfleet --help` lists; a test
# keeps this index equal to what each module's register() adds.
ROOT_COMMANDS = (
    RootCommand(
        "collect",
        "stackfleet.cli.inventory",
        "Run one collection pass over a cloud (every region) and record what it saw.",
    ),
    RootCommand(
        "summary",
        "stackfleet.cli.inventory",
        "Hosts up/down, capacity and utilisation, servers by status.",
    ),
    RootCommand("approve", "stackfleet.cli.audit", "Approve an action waiting in the queue."),
    RootCommand(
        "reject",
        "stackfleet.cli.audit",
        "Reject an action waiting in the queue (it is never carried out).",
    ),
    RootCommand(
        "demo",
        "stackfleet.cli.simulator",
        "Start the simulated cloud, collect it, serve the API, print the fleet summary.",
    ),
    RootCommand(
        "serve",
        "stackfleet.cli.serve",
        "Serve the API and collect the given clouds every --interval seconds.",
    ),
    RootCommand(
        "worker",
        "stackfleet.cli.serve",
        "A scale-out worker: `serve` sharing the work with other workers.",
    ),
    RootCommand(
        "hypervisors",
        "stackfleet.cli.inventory",
        "Compute hosts with their Placement capacity and usage.",
    ),
    RootCommand("servers", "stackfleet.cli.inventory", "Servers (instances) of every project."),
    RootCommand("resources", "stackfleet.cli.inventory", "Any resource kind StackFleet knows."),
    RootCommand(
        "passes", "stackfleet.cli.inventory", "Collection passes and how complete they were."
    ),
    RootCommand("db", "stackfleet.cli.infra", "Infrastructure databases (MariaDB, MySQL, Galera)."),
    RootCommand("mq", "stackfleet.cli.infra", "The message queue (RabbitMQ management API)."),
    RootCommand(
        "policy",
        "stackfleet.cli.policy",
        "Validate and run policies (YAML: resource + filters + actions).",
    ),
    RootCommand(
        "findings", "stackfleet.cli.policy", "What policies found: open and resolved findings."
    ),
    RootCommand("audit", "stackfleet.cli.audit", "The append-only, hash-chained audit log."),
    RootCommand(
        "approvals",
        "stackfleet.cli.audit",
        "Actions waiting for approval, and every action's record.",
    ),
    RootCommand(
        "waste", "stackfleet.cli.reports", "Waste: what could be reclaimed (the waste pack)."
    ),
    RootCommand(
        "compliance",
        "stackfleet.cli.reports",
        "Compliance: security and HA rules, pass/fail per rule.",
    ),
    RootCommand(
        "lease",
        "stackfleet.cli.lease",
        "Leases: resources on their way to reclamation, and owners' extensions.",
    ),
    RootCommand("alerts", "stackfleet.cli.alerts", "Alerts: list, acknowledge, silence, resolve."),
    RootCommand(
        "hardware",
        "stackfleet.cli.hardware",
        "Hardware health over Redfish: power, temperatures, fans, power supplies.",
    ),
    RootCommand(
        "nodes",
        "stackfleet.cli.nodes",
        "Hosts: compute, network and storage hosts and bare-metal nodes, with their hardware.",
    ),
    RootCommand(
        "capacity",
        "stackfleet.cli.capacity",
        "Capacity planning: allocation, flavor fit, N+1, quotas, IP pools, network and "
        "storage nodes.",
    ),
    RootCommand(
        "usage",
        "stackfleet.cli.usage",
        "Real usage of servers and hypervisors (diagnostics or Prometheus).",
    ),
    RootCommand(
        "events",
        "stackfleet.cli.events",
        "OpenStack notifications: event-driven refresh and policies.",
    ),
    RootCommand(
        "config",
        "stackfleet.cli.patching",
        "Configuration revisions of hosts' services: capture, show, diff.",
    ),
    RootCommand(
        "campaign",
        "stackfleet.cli.patching",
        "Rolling campaigns over hosts: patching and maintenance.",
    ),
    RootCommand(
        "health",
        "stackfleet.cli.health",
        "Health of hosts, services, instances and workloads, with the evidence.",
    ),
    RootCommand(
        "recoveries",
        "stackfleet.cli.health",
        "Automatic recoveries: list, show each step, run once.",
    ),
    RootCommand(
        "sla",
        "stackfleet.cli.sla",
        "Workload SLAs: availability from recorded health changes.",
    ),
    RootCommand(
        "provision",
        "stackfleet.cli.provision",
        "Provision workloads (VMs, bare metal, containers) from one declarative spec.",
    ),
    RootCommand(
        "project",
        "stackfleet.cli.project",
        "Projects: purge what a project (or a deleted one) left behind.",
    ),
    RootCommand(
        "workload",
        "stackfleet.cli.workload",
        "Manage workloads (VMs, bare metal, containers) with the same verbs on every backend.",
    ),
    RootCommand(
        "simulator",
        "stackfleet.cli.simulator",
        "The embedded simulated cloud (OpenStack APIs on loopback).",
    ),
    RootCommand("docs", "stackfleet.cli.reference", "Generated documentation.", hidden=True),
)


class StackfleetGroup(RootGroup):
    index = ROOT_COMMANDS


app = typer.Typer(
    name="stackfleet",
    help="Day-2 fleet management for OpenStack clouds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=StackfleetGroup,
)


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
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
        if os.environ.get("STACKFLEET_DEBUG"):
            raise
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    run()
