"""`stackfleet nodes show HOST`: one host as the operator thinks of it — inventory,
capacity in use, hardware readings, the services it runs and its instances."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from stackfleet.cli.context import state
from stackfleet.cli.output import Format, emit_object
from stackfleet.engine.capacity import host_roles
from stackfleet.engine.hardware import load_thresholds, status_dict
from stackfleet.errors import NotFoundError
from stackfleet.model.hardware import evaluate
from stackfleet.store import Store
from stackfleet.store.hardware import get_status

app = typer.Typer(
    help="Hosts: compute, network and storage hosts and bare-metal nodes, with their hardware."
)

SERVICE_KINDS = ("compute_service", "network_agent", "block_storage_service")
MAX_INSTANCES = 50


def register(root: typer.Typer) -> None:
    """Add `stackfleet nodes` to the root app."""
    app.command("show")(show_command)
    root.add_typer(app, name="nodes")


def find_node(store: Store, host: str) -> dict[str, Any] | None:
    """The hypervisor (by host, hostname or id) or bare-metal node (by name or uuid)
    called `host`, or None."""
    for field in ("host", "hypervisor_hostname"):
        found, _ = store.list_resources("hypervisor", filters={field: host}, limit=1)
        if found:
            return found[0]
    for kind in ("hypervisor", "baremetal_node"):
        try:
            return store.get_resource(kind, host)
        except NotFoundError:
            continue
    return None


def node_view(store: Store, host: str) -> dict[str, Any]:
    """Everything StackFleet knows about one host; NotFoundError if nothing."""
    node = find_node(store, host)
    hardware = None
    for key in (host, node.get("host") if node else None, node.get("id") if node else None):
        if not key:
            continue
        try:
            status = get_status(store, key)
        except NotFoundError:
            continue
        hardware = status_dict(status, evaluate(status, load_thresholds(None), time.time()))
        break
    short = (node or {}).get("host") or host
    roles = host_roles(store, short)  # Neutron agents and Cinder pools on the host
    if node is None and hardware is None and not roles:
        raise NotFoundError(
            f"no host {host!r}: not a hypervisor, bare-metal node, network or storage node "
            "of the last pass, and not in the hardware status (see `stackfleet hypervisors "
            "list`)"
        )
    view: dict[str, Any] = {"host": short}
    if node is not None:
        view["kind"] = node.get("kind")
        view["id"] = node.get("id")
        view["cloud"] = node.get("cloud")
        view["region"] = node.get("region")
        view["state"] = node.get("status")
        if node.get("kind") == "hypervisor":
            view["enabled"] = node.get("enabled")
            for rc in ("vcpu", "pcpu", "memory_mb", "disk_gb"):
                used, capacity = node.get(f"{rc}_used"), node.get(f"{rc}_capacity")
                if capacity:
                    view[f"{rc}_used"] = (
                        f"{used or 0} / {capacity:g} ({100 * (used or 0) / capacity:.0f} %)"
                    )
        else:
            view["power_state"] = node.get("power_state")
            view["provision_state"] = node.get("provision_state")
            view["maintenance"] = node.get("maintenance")
    if hardware is not None:
        view["hardware"] = {
            key: hardware[key]
            for key in (
                "status",
                "error",
                "power_state",
                "power_watts",
                "inlet_celsius",
                "cpu_celsius",
                "psu_redundancy",
                "health",
                "checked_at",
            )
        }
        view["hardware_findings"] = [
            f"{f['severity']}: {f['check']}: {f['message']}" for f in hardware["findings"]
        ]
    services = []
    for kind in SERVICE_KINDS:
        found, _ = store.list_resources(kind, filters={"host": short})
        services += [f"{s.get('binary')} ({s.get('status')}, {_enabled(s)})" for s in found]
    view["services"] = services
    view.update(roles)
    servers, total = store.list_resources("server", filters={"host": short}, limit=MAX_INSTANCES)
    view["instances"] = total
    view["instance_names"] = [f"{s.get('name')} ({s.get('status')})" for s in servers]
    return view


def show_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Compute host, hypervisor hostname or node name.")],
    fmt: Annotated[
        Format, typer.Option("-f", "--format", help="Output format.", case_sensitive=False)
    ] = Format.table,
) -> None:
    """One host: inventory, capacity in use, hardware (newest sweep), services, instances."""
    emit_object(node_view(state(ctx).store(), host), fmt)


def _enabled(service: dict[str, Any]) -> str:
    # Nova and Cinder services say enabled/disabled; Neutron agents have admin_state_up
    if service.get("enabled") is not None:
        return str(service["enabled"])
    return "enabled" if service.get("admin_state_up", True) else "disabled"
