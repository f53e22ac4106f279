"""One host as the operator thinks of it — inventory, capacity in use, hardware readings,
the services it runs and its instances — for `stackfleet nodes show HOST` and
``GET /v1/nodes/{host}``. Read from the store only: no cloud or BMC is contacted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from stackfleet.core.errors import NotFoundError
from stackfleet.engine.capacity import host_roles
from stackfleet.engine.hardware import host_findings, status_dict
from stackfleet.model.hardware import OK
from stackfleet.policy.schema import Policy
from stackfleet.store import Store
from stackfleet.store.hardware import get_status
from stackfleet.store.usage import newest_values

# real use of a hypervisor, from node_exporter (`stackfleet usage sweep --source prometheus`)
HOST_USAGE_METRICS = ("cpu_util", "memory_used_mb", "memory_used_percent")
SERVICE_KINDS = ("compute_service", "network_agent", "block_storage_service")
MAX_INSTANCES = 50
HARDWARE_FIELDS = (
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


def find_hypervisor(store: Store, name: str) -> dict[str, Any]:
    """The hypervisor with this id, hypervisor hostname or Nova compute host (`cmp0001`
    as well as `cmp0001.example.net`); NotFoundError otherwise."""
    try:
        return store.get_resource("hypervisor", name)
    except NotFoundError:
        found, _ = store.list_resources("hypervisor", filters={"host": name}, limit=2)
        if len(found) == 1:
            return store.get_resource("hypervisor", str(found[0]["id"]))
        raise


def host_services(store: Store, host: str) -> list[str]:
    """Nova services, Neutron agents and Cinder services running on `host`, as
    "binary (state, enabled)". A cinder-volume service is named after its backend
    (``stor01@rbd-1``): it counts for the host before the ``@``."""
    services = []
    for kind in SERVICE_KINDS:
        found, _ = store.list_resources(kind, filters={"host": host})
        if kind == "block_storage_service":
            every, _ = store.list_resources(kind)
            found += [s for s in every if str(s.get("host") or "").startswith(f"{host}@")]
        services += [f"{s.get('binary')} ({s.get('status')}, {_enabled(s)})" for s in found]
    return services


def node_view(
    store: Store, host: str, hardware_policies: Sequence[Policy] | None = None
) -> dict[str, Any]:
    """Everything StackFleet knows about one host; NotFoundError if nothing.

    A BMC that could not be read shows its status with the last good reading and
    ``readings_at``, the time of that reading, so old values are never taken for
    current ones."""
    node = find_node(store, host)
    hardware = None
    for key in (host, node.get("host") if node else None, node.get("id") if node else None):
        if not key:
            continue
        try:
            status = get_status(store, key)
        except NotFoundError:
            continue
        hardware = status_dict(status, host_findings(store, status, hardware_policies))
        break
    short = (node or {}).get("host") or host
    roles = host_roles(store, short)  # Neutron agents and Cinder pools on the host
    services = host_services(store, short)
    if node is None and hardware is None and not roles and not services:
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
            usage = _host_usage(store, str(node.get("id")))
            if usage:
                view["usage"] = usage
        else:
            view["power_state"] = node.get("power_state")
            view["provision_state"] = node.get("provision_state")
            view["maintenance"] = node.get("maintenance")
    if hardware is not None:
        view["hardware"] = {key: hardware[key] for key in HARDWARE_FIELDS}
        if hardware["status"] != OK:
            view["hardware"]["readings_at"] = hardware.get("ok_at")
        view["hardware_findings"] = [
            f"{f['severity']}: {f['rule']}: {f['message']}" for f in hardware["findings"]
        ]
    view["services"] = services
    view.update(roles)
    servers, total = store.list_resources("server", filters={"host": short}, limit=MAX_INSTANCES)
    view["instances"] = total
    view["instance_names"] = [f"{s.get('name')} ({s.get('status')})" for s in servers]
    return view


def _host_usage(store: Store, hypervisor_id: str) -> dict[str, Any]:
    """The newest real CPU and memory use of a hypervisor, with when it was read; empty
    when no usage source has reported it (Placement allocation is not use)."""
    newest = newest_values(store, "hypervisor", [hypervisor_id], HOST_USAGE_METRICS)
    values = newest.get(hypervisor_id, {})
    if not values:
        return {}
    usage: dict[str, Any] = {m: round(values[m][1], 1) for m in HOST_USAGE_METRICS if m in values}
    at = max(ts for ts, _ in values.values())
    usage["at"] = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
    return usage


def _enabled(service: dict[str, Any]) -> str:
    # Nova and Cinder services say enabled/disabled; Neutron agents have admin_state_up
    if service.get("enabled") is not None:
        return str(service["enabled"])
    return "enabled" if service.get("admin_state_up", True) else "disabled"
