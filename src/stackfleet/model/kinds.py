"""Every resource kind StackFleet knows, declared once.

A kind lists its fields, each with where it comes from in the owning service's API
(the detail representation), and its relations to other kinds. Sources build records
from these declarations, the store keeps them, the API and CLI show them: nothing else
repeats a field list.

A record is a plain dict: ``id``, ``name``, ``project_id``, ``status`` and every declared
field by its StackFleet name (None when the API did not give it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Getter = Callable[[dict[str, Any]], Any]

_MISSING = object()


def path(*keys: str) -> Getter:
    """A getter for a nested API field: path("flavor", "vcpus")."""

    def get(obj: dict[str, Any]) -> Any:
        value: Any = obj
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


@dataclass(frozen=True)
class Field:
    """One field of a kind.

    `api` is the key in the API's JSON object (default: the same name), a getter, or None
    for fields that a source fills in itself (e.g. Placement data joined onto a
    hypervisor). `history` marks fields whose changes the store records.
    """

    name: str
    api: str | Getter | None | object = _MISSING
    type: type = str
    history: bool = False
    doc: str = ""

    def getter(self) -> Getter | None:
        if self.api is None:
            return None
        if self.api is _MISSING:
            key = self.name
            return lambda obj: obj.get(key)
        if isinstance(self.api, str):
            api_key = self.api
            return lambda obj: obj.get(api_key)
        return self.api  # type: ignore[return-value]


@dataclass(frozen=True)
class Relation:
    """A forward relation: this record's `field` holds the `target_field` value of one
    (or, with `many`, a list of) records of kind `target`, in the same cloud and region.
    `reverse` names the relation seen from the target (e.g. server -> ports)."""

    name: str
    target: str
    field: str
    target_field: str = "id"
    many: bool = False
    reverse: str | None = None


@dataclass(frozen=True)
class Kind:
    """A resource kind: its name, the service (catalog type) that owns it, its fields."""

    name: str
    service: str
    fields: tuple[Field, ...]
    relations: tuple[Relation, ...] = ()
    id_api: str | Getter = "id"
    name_api: str | Getter | None = "name"
    project_api: str | Getter | None = "project_id"
    status_api: str | Getter | None = "status"
    plural: str = ""
    doc: str = ""

    @property
    def collection(self) -> str:
        return self.plural or f"{self.name}s"

    @property
    def history_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.history)

    def field_names(self) -> tuple[str, ...]:
        return ("id", "name", "project_id", "status", *(f.name for f in self.fields))

    def record_builder(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """A fast function turning one API object into a record of this kind.

        The function is generated once per kind (as dataclasses generates __init__):
        plain keys become direct lookups, so building 100,000 records costs a fraction
        of calling one small function per field."""
        specs: list[tuple[str, str | Getter | None]] = [
            ("id", self.id_api),
            ("name", self.name_api),
            ("project_id", self.project_api),
            ("status", self.status_api),
            *((f.name, f.name if f.api is _MISSING else f.api) for f in self.fields),  # type: ignore[list-item]
        ]
        namespace: dict[str, Any] = {}
        items = []
        for index, (name, api) in enumerate(specs):
            if api is None:
                expression = "None"
            elif isinstance(api, str):
                expression = f"get({api!r})"
            else:
                namespace[f"_f{index}"] = api
                expression = f"_f{index}(obj)"
            if name == "id":
                expression = f"str({expression})"
            items.append(f"{name!r}: {expression}")
        source = "def build(obj):\n    get = obj.get\n    return {" + ", ".join(items) + "}\n"
        exec(compile(source, f"<record builder of {self.name}>", "exec"), namespace)  # noqa: S102
        build: Callable[[dict[str, Any]], dict[str, Any]] = namespace["build"]
        return build


def _as_getter(api: str | Getter | None) -> Getter | None:
    if api is None:
        return None
    if isinstance(api, str):
        return lambda obj: obj.get(api)
    return api


def _names(key: str, item_key: str = "name") -> Getter:
    """A list of `item_key` values from a list of objects under `key`."""

    def get(obj: dict[str, Any]) -> list[Any]:
        return [item.get(item_key) for item in obj.get(key) or [] if isinstance(item, dict)]

    return get


def _ips(obj: dict[str, Any]) -> list[str]:
    return [ip["ip_address"] for ip in obj.get("fixed_ips") or [] if "ip_address" in ip]


def _server_addresses(obj: dict[str, Any]) -> list[str]:
    return [a["addr"] for addrs in (obj.get("addresses") or {}).values() for a in addrs]


def _server_image(obj: dict[str, Any]) -> str | None:
    image = obj.get("image")
    return image.get("id") if isinstance(image, dict) else None


# Nova reports power_state as an integer (nova/compute/power_state.py).
POWER_STATES = {
    0: "NOSTATE",
    1: "RUNNING",
    3: "PAUSED",
    4: "SHUTDOWN",
    6: "CRASHED",
    7: "SUSPENDED",
}


def _power_state(obj: dict[str, Any]) -> str | None:
    value = obj.get("OS-EXT-STS:power_state")
    return POWER_STATES.get(value, str(value)) if value is not None else None


def _cinder_service_id(obj: dict[str, Any]) -> str:
    return f"{obj.get('binary')}@{obj.get('host')}"


def _pool_capability(key: str) -> Getter:
    return path("capabilities", key)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _pool_capacity(key: str) -> Getter:
    """A capacity in GB. Drivers may report "infinite" or "unknown" (and some send
    numbers as strings): those are None, so the field stays a number for filters."""
    read = path("capabilities", key)

    def get(obj: dict[str, Any]) -> float | None:
        value = read(obj)
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value)
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    return get


def _compute_service_name(obj: dict[str, Any]) -> str:
    return f"{obj.get('binary')}@{obj.get('host')}"


def _compute_service_status(obj: dict[str, Any]) -> str:
    # "up"/"down" is what an operator asks first; enabled/disabled is its own field.
    return str(obj.get("state"))


F = Field

KINDS_LIST: tuple[Kind, ...] = (
    Kind(
        "hypervisor",
        "compute",
        doc="A compute node as Nova reports it, with its Placement inventory and usage.",
        name_api="hypervisor_hostname",
        project_api=None,
        status_api="state",
        fields=(
            F("hypervisor_hostname"),
            F("host", path("service", "host")),
            F("service_id", path("service", "id")),
            F("enabled", "status", history=True, doc="enabled / disabled"),
            F("state", history=True, doc="up / down"),
            F("disabled_reason", path("service", "disabled_reason")),
            F("hypervisor_type"),
            F("hypervisor_version", type=int),
            F("host_ip"),
            # Placement (joined by the compute source from the resource provider with the
            # same uuid); *_capacity = (total - reserved) * allocation_ratio
            F("resource_provider_generation", None, type=int),
            *(
                F(f"{rc}_{part}", None, type=float if part == "allocation_ratio" else int)
                for rc in ("vcpu", "pcpu", "memory_mb", "disk_gb")
                for part in ("total", "reserved", "allocation_ratio", "used", "capacity")
            ),
            F("aggregates", None, type=list),
        ),
        relations=(
            Relation("compute_service", "compute_service", "host", "host", reverse="hypervisors"),
        ),
    ),
    Kind(
        "compute_service",
        "compute",
        doc="A Nova service (nova-compute, nova-conductor, nova-scheduler) on a host.",
        name_api=_compute_service_name,
        project_api=None,
        status_api=_compute_service_status,
        fields=(
            F("binary"),
            F("host"),
            F("zone"),
            F("enabled", "status", history=True, doc="enabled / disabled"),
            F("state", history=True, doc="up / down"),
            F("forced_down", type=bool),
            F("disabled_reason"),
            F("updated_at"),
        ),
    ),
    Kind(
        "network_agent",
        "network",
        doc="A Neutron agent (L3, DHCP, OVS, OVN controller, metadata) on a host.",
        name_api=_compute_service_name,
        project_api=None,
        status_api=lambda o: "up" if o.get("alive") else "down",
        fields=(
            F("agent_type"),
            F("binary"),
            F("host"),
            F("availability_zone"),
            F("alive", type=bool, history=True),
            F("admin_state_up", type=bool),
            F("heartbeat_timestamp"),
            F("created_at"),
        ),
    ),
    Kind(
        "block_storage_service",
        "block-storage",
        doc="A Cinder service (cinder-volume, cinder-scheduler, cinder-backup) on a host.",
        id_api=_cinder_service_id,
        name_api=_cinder_service_id,
        project_api=None,
        status_api="state",
        fields=(
            F("binary"),
            F("host"),
            F("zone"),
            F("enabled", "status", history=True),
            F("state", history=True),
            F("disabled_reason"),
            F("updated_at"),
        ),
    ),
    Kind(
        "storage_pool",
        "block-storage",
        doc="A Cinder back-end pool as the scheduler sees it.",
        id_api="name",
        project_api=None,
        status_api=None,
        fields=(
            F("volume_backend_name", _pool_capability("volume_backend_name")),
            F(
                "capacity_reported",
                lambda o: _text_or_none((o.get("capabilities") or {}).get("free_capacity_gb")),
                type=str,
                doc="free capacity as the driver reported it (e.g. 'infinite')",
            ),
            F("total_capacity_gb", _pool_capacity("total_capacity_gb"), type=float),
            F("free_capacity_gb", _pool_capacity("free_capacity_gb"), type=float),
            F("allocated_capacity_gb", _pool_capacity("allocated_capacity_gb"), type=float),
            F(
                "provisioned_capacity_gb",
                _pool_capacity("provisioned_capacity_gb"),
                type=float,
            ),
            F(
                "max_over_subscription_ratio",
                _pool_capacity("max_over_subscription_ratio"),
                type=float,
            ),
            F("thin_provisioning_support", _pool_capability("thin_provisioning_support"), bool),
            F("storage_protocol", _pool_capability("storage_protocol")),
        ),
    ),
    Kind(
        "baremetal_node",
        "baremetal",
        doc="An Ironic bare-metal node.",
        id_api="uuid",
        project_api="owner",
        status_api="provision_state",
        fields=(
            F("power_state", history=True),
            F("provision_state", history=True),
            F("maintenance", type=bool, history=True),
            F("maintenance_reason"),
            F("driver"),
            F("instance_uuid"),
            F("resource_class"),
            F("conductor"),
            F("last_error"),
            F("bmc_address", path("driver_info", "redfish_address")),
            F("bmc_system_id", path("driver_info", "redfish_system_id")),
            F("created_at"),
            F("updated_at"),
        ),
        relations=(Relation("instance", "server", "instance_uuid", reverse="baremetal_node"),),
    ),
    Kind(
        "server",
        "compute",
        doc="A Nova server (instance).",
        project_api="tenant_id",
        fields=(
            F("task_state", "OS-EXT-STS:task_state", history=True),
            F("vm_state", "OS-EXT-STS:vm_state"),
            F("power_state", _power_state, history=True),
            F("host", "OS-EXT-SRV-ATTR:host", history=True),
            F("hypervisor_hostname", "OS-EXT-SRV-ATTR:hypervisor_hostname"),
            F("availability_zone", "OS-EXT-AZ:availability_zone"),
            F("flavor_name", path("flavor", "original_name")),
            F("vcpus", path("flavor", "vcpus"), type=int),
            F("ram_mb", path("flavor", "ram"), type=int),
            F("disk_gb", path("flavor", "disk"), type=int),
            F("image_id", _server_image),
            F("user_id"),
            F("key_name"),
            F("created", doc="creation time"),
            F("launched_at", "OS-SRV-USG:launched_at"),
            F("updated"),
            F("locked", type=bool),
            F("metadata", type=dict),
            F("tags", type=list),
            F("security_groups", _names("security_groups"), type=list),
            F("volume_ids", _names("os-extended-volumes:volumes_attached", "id"), type=list),
            F("addresses", _server_addresses, type=list),
        ),
        relations=(
            Relation(
                "hypervisor",
                "hypervisor",
                "hypervisor_hostname",
                "hypervisor_hostname",
                reverse="servers",
            ),
            Relation("flavor", "flavor", "flavor_name", "name", reverse="servers"),
            Relation("image", "image", "image_id", reverse="servers"),
            Relation("project", "project", "project_id", reverse="servers"),
            Relation("volumes", "volume", "volume_ids", many=True),
        ),
    ),
    Kind(
        "flavor",
        "compute",
        doc="A Nova flavor.",
        project_api=None,
        status_api=None,
        fields=(
            F("vcpus", type=int),
            F("ram", type=int),
            F("disk", type=int),
            F("ephemeral", "OS-FLV-EXT-DATA:ephemeral", type=int),
            F("swap"),
            F("is_public", "os-flavor-access:is_public", type=bool),
            F("extra_specs", type=dict),
        ),
    ),
    Kind(
        "server_group",
        "compute",
        doc="A Nova server group (affinity / anti-affinity).",
        status_api=None,
        fields=(F("policy"), F("rules", type=dict), F("members", type=list), F("user_id")),
        relations=(Relation("members", "server", "members", many=True, reverse="server_groups"),),
    ),
    Kind(
        "port",
        "network",
        doc="A Neutron port.",
        fields=(
            F("network_id"),
            F("device_id"),
            F("device_owner"),
            F("binding_host", "binding:host_id", history=True),
            F("binding_vif_type", "binding:vif_type"),
            F("mac_address"),
            F("fixed_ips", _ips, type=list),
            F("admin_state_up", type=bool),
            F("security_group_ids", "security_groups", type=list),
            F("created_at"),
            F("updated_at"),
        ),
        relations=(
            Relation("network", "network", "network_id", reverse="ports"),
            Relation("device", "server", "device_id", reverse="ports"),
        ),
    ),
    Kind(
        "floating_ip",
        "network",
        doc="A Neutron floating IP.",
        name_api="floating_ip_address",
        fields=(
            F("floating_ip_address"),
            F("floating_network_id"),
            F("port_id", history=True),
            F("fixed_ip_address"),
            F("router_id"),
            F("created_at"),
            F("updated_at"),
        ),
        relations=(
            Relation("port", "port", "port_id", reverse="floating_ips"),
            Relation("floating_network", "network", "floating_network_id"),
        ),
    ),
    Kind(
        "network",
        "network",
        doc="A Neutron network.",
        fields=(
            F("shared", type=bool),
            F("external", "router:external", type=bool),
            F("network_type", "provider:network_type"),
            F("segmentation_id", "provider:segmentation_id", type=int),
            F("mtu", type=int),
            F("admin_state_up", type=bool),
            F("subnet_ids", "subnets", type=list),
            F("created_at"),
        ),
    ),
    Kind(
        "subnet",
        "network",
        doc="A Neutron subnet.",
        status_api=None,
        fields=(
            F("network_id"),
            F("cidr"),
            F("ip_version", type=int),
            F("gateway_ip"),
            F("enable_dhcp", type=bool),
            F("allocation_pools", type=list),
            F("created_at"),
        ),
        relations=(Relation("network", "network", "network_id", reverse="subnets"),),
    ),
    Kind(
        "router",
        "network",
        doc="A Neutron router.",
        fields=(
            F("external_network_id", path("external_gateway_info", "network_id")),
            F("admin_state_up", type=bool),
            F("ha", type=bool),
            F("distributed", type=bool),
            F("created_at"),
        ),
        relations=(Relation("external_network", "network", "external_network_id"),),
    ),
    Kind(
        "security_group",
        "network",
        doc="A Neutron security group.",
        status_api=None,
        fields=(F("description"), F("stateful", type=bool), F("created_at")),
    ),
    Kind(
        "security_group_rule",
        "network",
        doc="One rule of a Neutron security group.",
        name_api=None,
        status_api=None,
        fields=(
            F("security_group_id"),
            F("direction"),
            F("ethertype"),
            F("protocol"),
            F("port_range_min", type=int),
            F("port_range_max", type=int),
            F("remote_ip_prefix"),
            F("remote_group_id"),
            F("created_at"),
        ),
        relations=(
            Relation("security_group", "security_group", "security_group_id", reverse="rules"),
        ),
    ),
    Kind(
        "volume",
        "block-storage",
        doc="A Cinder volume.",
        project_api="os-vol-tenant-attr:tenant_id",
        fields=(
            F("size", type=int),
            F("volume_type"),
            F("encrypted", type=bool),
            F("bootable"),
            F("multiattach", type=bool),
            F("attached_server_ids", _names("attachments", "server_id"), type=list, history=True),
            F("availability_zone"),
            F("backend_host", "os-vol-host-attr:host"),
            F("user_id"),
            F("created_at"),
            F("updated_at"),
        ),
        relations=(
            Relation(
                "servers", "server", "attached_server_ids", many=True, reverse="volumes_attached"
            ),
        ),
    ),
    Kind(
        "image",
        "image",
        doc="A Glance image.",
        project_api="owner",
        fields=(
            F("visibility"),
            F("size", type=int),
            F("disk_format"),
            F("container_format"),
            F("protected", type=bool),
            F("min_disk", type=int),
            F("min_ram", type=int),
            F("tags", type=list),
            F("created_at"),
            F("updated_at"),
        ),
    ),
    Kind(
        "project",
        "identity",
        doc="A Keystone project.",
        project_api="id",
        status_api=lambda o: "enabled" if o.get("enabled") else "disabled",
        fields=(
            F("domain_id"),
            F("parent_id"),
            F("enabled", type=bool),
            F("description"),
            F("tags", type=list),
        ),
    ),
)

KINDS: dict[str, Kind] = {k.name: k for k in KINDS_LIST}


def kind(name: str) -> Kind:
    """The kind called `name`; KeyError names the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown resource kind {name!r}; known: {', '.join(KINDS)}") from None
