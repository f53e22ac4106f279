"""Every resource kind StackFleet knows, declared once.

A kind lists its fields, each with where it comes from in the owning service's API
(the detail representation), and its relations to other kinds. Sources build records
from these declarations, the store keeps them, the API and CLI show them: nothing else
repeats a field list.

A record is a plain dict: ``id``, ``name``, ``project_id``, ``status`` and every declared
field by its StackFleet name (None when the API did not give it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any

Getter = Callable[[dict[str, Any]], Any]

_MISSING = object()

# Bump when records change in a way builder_version cannot see (a getter's behaviour
# moving through a function it calls that is not a closure value of it).
RECORD_FORMAT = 1


def _code_fingerprint(value: Any, depth: int = 0) -> bytes:
    """Bytes that change when a getter's code or its closed-over values change, and
    only then (no object addresses, no set order: the same in every process)."""
    if depth > 6:
        return b"..."
    if isinstance(value, CodeType):
        parts = [value.co_code, repr(value.co_names).encode()]
        parts.extend(_code_fingerprint(const, depth + 1) for const in value.co_consts)
        return b"\0".join(parts)
    if isinstance(value, (frozenset, set)):
        return repr(sorted(map(repr, value))).encode()
    if isinstance(value, (tuple, list)):
        return b"(" + b",".join(_code_fingerprint(v, depth + 1) for v in value) + b")"
    code = getattr(value, "__code__", None)
    if code is None:
        return (
            repr(value).encode()
            if not callable(value)
            else getattr(value, "__qualname__", type(value).__qualname__).encode()
        )
    parts = [_code_fingerprint(code, depth + 1)]
    for cell in getattr(value, "__closure__", None) or ():
        parts.append(_code_fingerprint(cell.cell_contents, depth + 1))
    return b"\0".join(parts)


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
    hypervisor). `history` marks fields whose changes the store records. `admin_only`
    marks fields the owning service shows administrators only (Nova's
    `OS-EXT-SRV-ATTR:*`, Neutron's `binding:*` and `provider:*`, Cinder's
    `os-vol-host-attr:host`): the API hides them from project-scoped readers.
    """

    name: str
    api: str | Getter | None | object = _MISSING
    type: type = str
    history: bool = False
    doc: str = ""
    admin_only: bool = False

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
    # Read target by target by an infrastructure sweep (database servers, ...), not
    # listed by collection passes: trust is per resource, not per listing. A record
    # whose `reachable` is False was not read; policies that do not ask about
    # `reachable` leave its findings as they were (missing data is no evidence).
    swept: bool = False
    # alert labels taken from the record: (label, field) pairs, e.g. ("instance", "name")
    alert_labels: tuple[tuple[str, str], ...] = ()
    # what every project may read of other projects' resources of this kind, as the
    # owning service shows it: (field, value) pairs, any one of which makes a resource
    # visible to all (Neutron's shared and external networks, Glance's public and
    # community images, Nova's public flavors)
    shared_when: tuple[tuple[str, Any], ...] = ()
    # ... or visible through a related resource: (field, kind, (field, value) pairs) —
    # a subnet of a shared network (not of a merely external one, as Neutron)
    shared_through: tuple[str, str, tuple[tuple[str, Any], ...]] | None = None

    @property
    def admin_only_fields(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if f.admin_only)

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
        source, namespace = self._builder_source()
        exec(compile(source, f"<record builder of {self.name}>", "exec"), namespace)  # noqa: S102
        build: Callable[[dict[str, Any]], dict[str, Any]] = namespace["build"]
        return build

    def builder_version(self) -> bytes:
        """A digest of how this kind's records are built: the generated builder and the
        code (and closed-over values) of every getter it calls, with RECORD_FORMAT. A
        StackFleet whose builder differs gets another digest, so the raw hashes a pass
        stored (store: `resources.raw_hash`) no longer match and every item is built
        again rather than kept as an older version built it."""
        source, namespace = self._builder_source()
        digest = hashlib.blake2b(f"{RECORD_FORMAT}\n{source}".encode(), digest_size=16)
        for name in sorted(namespace):
            digest.update(name.encode())
            digest.update(_code_fingerprint(namespace[name]))
        return digest.digest()

    def _builder_source(self) -> tuple[str, dict[str, Any]]:
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
        return source, namespace


def _floating_ip_server(obj: dict[str, Any]) -> str | None:
    """The server a floating IP points at: its port's device, from Neutron's
    `port_details` (fip-port-details extension), when that device is a Nova server."""
    details = obj.get("port_details")
    if not isinstance(details, dict):
        return None
    if not str(details.get("device_owner") or "").startswith("compute:"):
        return None
    return details.get("device_id") or None


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


def _assignment_scope(obj: dict[str, Any]) -> tuple[str, str | None]:
    """(scope type, target id) of a Keystone role assignment."""
    scope = obj.get("scope") or {}
    for scope_type in ("project", "domain"):
        target = scope.get(scope_type)
        if isinstance(target, dict):
            return scope_type, target.get("id")
    return ("system", "all") if "system" in scope else ("", None)


def role_assignment_id(obj: dict[str, Any]) -> str:
    """A role assignment's id. Keystone gives assignments none: this names the grant by
    its parts, as Keystone's grant URLs do, without slashes (ids appear in URLs and audit
    targets): `project:P:user:U:role:R`, `system:all:group:G:role:R`, and
    `domain:D:group:G:role:R:inherited` for a grant inherited by the projects below."""
    scope_type, target = _assignment_scope(obj)
    actor = "user" if isinstance(obj.get("user"), dict) else "group"
    grant = f"{scope_type}:{target}:{actor}:{path(actor, 'id')(obj)}:role:{path('role', 'id')(obj)}"
    if (obj.get("scope") or {}).get("OS-INHERIT:inherited_to"):
        return f"{grant}:inherited"
    return grant


def _assignment_name(obj: dict[str, Any]) -> str:
    """`mallory: admin on project demo` (ids where Keystone gave no names)."""
    actor = obj.get("user") or obj.get("group") or {}
    scope_type, target = _assignment_scope(obj)
    where = "system" if scope_type == "system" else f"{scope_type} "
    if scope_type != "system":
        named = (obj.get("scope") or {}).get(scope_type) or {}
        where += str(named.get("name") or target)
    role = obj.get("role") or {}
    return (
        f"{actor.get('name') or actor.get('id')}: {role.get('name') or role.get('id')} on {where}"
    )


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
            # joined by sources/openstack/capacity.py (GET /agents/{id}/l3-routers and
            # /dhcp-networks); None when not read (other agent types, or the call failed)
            F("hosted_router_ids", None, type=list, doc="routers an L3 agent hosts"),
            F("hosted_network_ids", None, type=list, doc="networks a DHCP agent serves"),
            F(
                "hosting_read_at",
                None,
                doc="when the hosted routers / networks were last read (UTC, ISO 8601); "
                "they are carried between passes and re-read on an interval",
            ),
            # what the agent itself reports in its heartbeat (`configurations`): a count
            # that differs from the carried list makes the next pass read the hosting
            F(
                "reported_routers",
                path("configurations", "routers"),
                type=int,
                doc="routers the L3 agent says it hosts (its configurations)",
            ),
            F(
                "reported_networks",
                path("configurations", "networks"),
                type=int,
                doc="networks the DHCP agent says it serves (its configurations)",
            ),
        ),
        relations=(
            Relation(
                "hosted_routers", "router", "hosted_router_ids", many=True, reverse="l3_agents"
            ),
            Relation(
                "hosted_networks",
                "network",
                "hosted_network_ids",
                many=True,
                reverse="dhcp_agents",
            ),
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
            F("host", "OS-EXT-SRV-ATTR:host", history=True, admin_only=True),
            F("hypervisor_hostname", "OS-EXT-SRV-ATTR:hypervisor_hostname", admin_only=True),
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
        shared_when=(("is_public", True),),
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
        "baremetal_allocation",
        "baremetal",
        doc="An Ironic allocation (a node reserved by resource class and traits); "
        "standalone bare-metal workload members carry their labels in its `extra`.",
        id_api="uuid",
        project_api="owner",
        status_api="state",
        fields=(
            F("node_uuid"),
            F("resource_class"),
            F("traits", type=list),
            F("extra", type=dict),
            F("last_error"),
            F("created_at"),
        ),
        relations=(Relation("node", "baremetal_node", "node_uuid", reverse="allocation"),),
    ),
    Kind(
        "container",
        "container",
        doc="A Zun container; container workload members carry their labels in `labels`.",
        id_api="uuid",
        fields=(
            F("image"),
            F("host"),
            F("task_state"),
            F("status_reason"),
            F("labels", type=dict),
            F("cpu", type=float),
            F("memory"),
            F("created_at"),
        ),
    ),
    Kind(
        "workload",
        "compute",
        doc="A workload StackFleet provisioned (`stackfleet provision`): derived from "
        "its members' labels (`stackfleet-workload`: a server's Nova tag and metadata, an "
        "Ironic allocation's `extra`, a Zun container's `labels`) when a pass lists them; "
        "its id is <project id>/<name>.",
        fields=(
            F(
                "backend",
                doc="nova (VMs, or bare metal through a bare-metal flavor), "
                "ironic (standalone bare metal) or zun (containers)",
            ),
            F("member_kind", doc="server, baremetal_node or container"),
            F("member_ids", type=list, doc="its members' ids (servers, nodes or containers)"),
            F("server_ids", type=list),
            F("node_ids", type=list),
            F("container_ids", type=list),
            F("member_names", type=list),
            F("member_count", type=int),
            F("active_count", type=int, history=True),
            F("failed_count", type=int, history=True),
            F("hosts", type=list, doc="hosts its members run on"),
            F("spec_hashes", type=list, doc="fingerprints of the specs members were built from"),
        ),
        relations=(
            Relation("members", "server", "server_ids", many=True, reverse="workloads"),
            Relation("nodes", "baremetal_node", "node_ids", many=True, reverse="workloads"),
            Relation("containers", "container", "container_ids", many=True, reverse="workloads"),
            Relation("project", "project", "project_id", reverse="workloads"),
        ),
    ),
    Kind(
        "port",
        "network",
        doc="A Neutron port.",
        fields=(
            F("network_id"),
            F("device_id"),
            F("device_owner"),
            F("binding_host", "binding:host_id", history=True, admin_only=True),
            F("binding_vif_type", "binding:vif_type", admin_only=True),
            F("mac_address"),
            F("fixed_ips", _ips, type=list),
            F("admin_state_up", type=bool),
            F("security_group_ids", "security_groups", type=list),
            F("created_at"),
            F("updated_at"),
        ),
        relations=(
            Relation("project", "project", "project_id", reverse="ports"),
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
            F("server_id", _floating_ip_server, doc="The server of its port (port_details)."),
            F("fixed_ip_address"),
            F("router_id"),
            F("created_at"),
            F("updated_at"),
        ),
        relations=(
            Relation("project", "project", "project_id", reverse="floating_ips"),
            Relation("port", "port", "port_id", reverse="floating_ips"),
            Relation("server", "server", "server_id", reverse="floating_ips"),
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
            F("network_type", "provider:network_type", admin_only=True),
            F("segmentation_id", "provider:segmentation_id", type=int, admin_only=True),
            F("mtu", type=int),
            F("admin_state_up", type=bool),
            F("subnet_ids", "subnets", type=list),
            F("created_at"),
            # joined by sources/openstack/capacity.py from GET /network-ip-availabilities;
            # None when not read (the call failed or is not allowed)
            # Neutron's network-ip-availabilities is admin-only
            F(
                "ip_total",
                None,
                type=int,
                doc="addresses in the subnets' allocation pools",
                admin_only=True,
            ),
            F("ip_used", None, type=int, doc="addresses allocated to ports", admin_only=True),
            F(
                "ip_subnets",
                None,
                type=list,
                doc="per subnet: id, cidr, total, used",
                admin_only=True,
            ),
        ),
        relations=(Relation("project", "project", "project_id", reverse="networks"),),
        shared_when=(("shared", True), ("external", True)),
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
        shared_through=("network_id", "network", (("shared", True),)),
    ),
    Kind(
        "router",
        "network",
        doc="A Neutron router.",
        fields=(
            F("external_network_id", path("external_gateway_info", "network_id")),
            F("admin_state_up", type=bool),
            F("ha", type=bool, admin_only=True),
            F("distributed", type=bool, admin_only=True),
            F("created_at"),
        ),
        relations=(
            Relation("project", "project", "project_id", reverse="routers"),
            Relation("external_network", "network", "external_network_id"),
        ),
    ),
    Kind(
        "security_group",
        "network",
        doc="A Neutron security group.",
        status_api=None,
        fields=(F("description"), F("stateful", type=bool), F("created_at")),
        relations=(Relation("project", "project", "project_id", reverse="security_groups"),),
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
            F("backend_host", "os-vol-host-attr:host", admin_only=True),
            F("user_id"),
            F("created_at"),
            F("updated_at"),
        ),
        relations=(
            Relation("project", "project", "project_id", reverse="volumes"),
            Relation(
                "servers", "server", "attached_server_ids", many=True, reverse="volumes_attached"
            ),
        ),
    ),
    Kind(
        "volume_snapshot",
        "block-storage",
        doc="A Cinder volume snapshot.",
        plural="volume_snapshots",
        project_api="os-extended-snapshot-attributes:project_id",
        fields=(
            F("volume_id"),
            F("size", type=int),
            F("progress", "os-extended-snapshot-attributes:progress"),
            F("created_at"),
            F("updated_at"),
        ),
        relations=(
            Relation("volume", "volume", "volume_id", reverse="snapshots"),
            Relation("project", "project", "project_id", reverse="volume_snapshots"),
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
        relations=(Relation("project", "project", "project_id", reverse="images"),),
        # shared images (image members) are not in the inventory: not shown
        shared_when=(("visibility", "public"), ("visibility", "community")),
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
    Kind(
        "user",
        "identity",
        doc="A Keystone user (GET /v3/users; needs an admin token).",
        project_api=None,
        status_api=lambda o: "enabled" if o.get("enabled") else "disabled",
        fields=(
            F("domain_id"),
            F("enabled", type=bool, history=True),
            F("email"),
            F("description"),
            F("default_project_id"),
            F("password_expires_at"),
        ),
        relations=(Relation("default_project", "project", "default_project_id"),),
    ),
    Kind(
        "role_assignment",
        "identity",
        doc=(
            "A Keystone role assignment as granted (GET /v3/role_assignments?include_names, "
            "not `effective`): a role held by a user or group on a project, a domain or the "
            "system. Its id is the grant's path in Keystone's API."
        ),
        id_api=role_assignment_id,
        name_api=_assignment_name,
        project_api=None,
        status_api=None,
        fields=(
            F("role_id", path("role", "id")),
            F("role_name", path("role", "name")),
            F("user_id", path("user", "id")),
            F("user_name", path("user", "name")),
            F("user_domain_id", path("user", "domain", "id")),
            F("group_id", path("group", "id")),
            F("group_name", path("group", "name")),
            F(
                "scope_type",
                lambda o: _assignment_scope(o)[0] or None,
                doc="project, domain or system",
            ),
            F("scope_project_id", path("scope", "project", "id")),
            F("scope_project_name", path("scope", "project", "name")),
            F("scope_domain_id", path("scope", "domain", "id")),
            F("scope_domain_name", path("scope", "domain", "name")),
            F(
                "inherited",
                lambda o: bool((o.get("scope") or {}).get("OS-INHERIT:inherited_to")),
                type=bool,
                doc="granted on a domain or project for every project below it",
            ),
        ),
        relations=(
            Relation("user", "user", "user_id", reverse="role_assignments"),
            Relation("project", "project", "scope_project_id", reverse="role_assignments"),
        ),
    ),
)

# Reading fields shared by the swept kinds: whether the newest sweep read the resource,
# and its readings by metric name (the same values the sweep records as metric samples,
# so `value` filters compare the newest reading and `metric` filters a window of them).
_READING_FIELDS = (
    F(
        "reachable",
        type=bool,
        history=True,
        doc="the newest sweep read it (false: unreachable, refused, bad answer)",
    ),
    F("error", doc="why the newest sweep could not read it"),
    F("probed_at", doc="when the newest sweep looked (UTC, ISO 8601)"),
    F(
        "metrics",
        type=dict,
        doc="the newest reading, by metric name (`metrics.connections_used_ratio`); "
        "kept from the last successful reading while unreachable",
    ),
)

INFRASTRUCTURE_KINDS: tuple[Kind, ...] = (
    Kind(
        "database_server",
        "database",
        doc="A MariaDB/MySQL (Galera) server of the control plane, probed by the "
        "infrastructure sweep (`stackfleet db status`). Its id is host:port.",
        project_api=None,
        swept=True,
        alert_labels=(("instance", "name"),),
        fields=(
            F("host"),
            F("port", type=int),
            *_READING_FIELDS,
            F("version"),
            F("galera", type=bool, doc="a Galera cluster node"),
            F("wsrep_state", doc="Galera local state in words (Synced, Donor/Desynced, ...)"),
            F("long_query_time", type=float, doc="the server's slow-query line, seconds"),
        ),
    ),
    Kind(
        "rabbitmq_cluster",
        "message-queue",
        doc="A RabbitMQ cluster as its management API answers (`stackfleet mq status`). "
        "Its id is the API's host:port.",
        project_api=None,
        swept=True,
        alert_labels=(("instance", "name"),),
        fields=(
            *_READING_FIELDS,
            F("cluster_name"),
            F("version"),
        ),
    ),
    Kind(
        "rabbitmq_node",
        "message-queue",
        doc="A node of a RabbitMQ cluster; its id is <cluster id>/<node name>. Unread "
        "(`reachable` false) while its cluster's API does not answer.",
        project_api=None,
        swept=True,
        alert_labels=(("instance", "broker_name"), ("node", "name")),
        fields=(
            F("broker_id", doc="the cluster's id"),
            F("broker_name", doc="the cluster's configured name"),
            F("partitions_with", type=list, doc="nodes it is partitioned from"),
            F(
                "partitions_text",
                doc="the nodes it is partitioned from, in words (for summaries)",
            ),
            *_READING_FIELDS,
        ),
        relations=(Relation("broker", "rabbitmq_cluster", "broker_id", reverse="nodes"),),
    ),
    Kind(
        "queue",
        "message-queue",
        doc="A RabbitMQ queue, with the OpenStack role read from its oslo.messaging name; "
        "its id is <cluster id>/<vhost, %-encoded>/<name>. Unread while its cluster's API "
        "does not answer.",
        project_api=None,
        swept=True,
        alert_labels=(
            ("instance", "broker_name"),
            ("vhost", "vhost"),
            ("queue", "name"),
            ("service", "service"),
            ("host", "host"),
        ),
        fields=(
            F("broker_id", doc="the cluster's id"),
            F("broker_name", doc="the cluster's configured name"),
            F("vhost"),
            F("role", doc="rpc, notification, reply, fanout or other"),
            F("service", doc="the OpenStack service of an RPC queue (nova-compute, ...)"),
            F("host", doc="the host of a per-host RPC queue"),
            F("where", doc="' on <host>' for a per-host queue, else '' (for summaries)"),
            F("statistics", type=bool, doc="the management API reports its statistics"),
            *_READING_FIELDS,
        ),
        relations=(Relation("broker", "rabbitmq_cluster", "broker_id", reverse="queues"),),
    ),
)

# The hardware sweep's records (model/hardware.py `hardware_records`): a host's BMC and
# its sensors. Their readings are also metric samples on the host's own inventory
# resource (hypervisor or bare-metal node), which /metrics and `nodes show` read.
_SENSOR_PLACE = (
    F("bmc_id", doc="the id of the host's `bmc` record"),
    F("host", doc="the host's name"),
)

HARDWARE_KINDS: tuple[Kind, ...] = (
    Kind(
        "bmc",
        "hardware",
        doc="The BMC of a host (hypervisor or bare-metal node) as the hardware sweep reads "
        "it over Redfish (`stackfleet hardware status`). Its id is the host's inventory id "
        "(its name when the inventory does not know it); `status` is how the newest read "
        "went: ok, unreachable, timeout, auth_failed, not_found, bad_response or error.",
        project_api=None,
        swept=True,
        alert_labels=(("host", "name"), ("host_kind", "host_kind")),
        fields=(
            F("host_kind", doc="the host's inventory kind: hypervisor or baremetal_node"),
            F("address", doc="the BMC's Redfish address"),
            F("system_id", doc="the Redfish system read"),
            F("source", doc="where the BMC came from: the BMC map or Ironic"),
            *_READING_FIELDS,
            F("ok_at", doc="when the BMC last answered with a reading (UTC, ISO 8601)"),
            F("changed_at", doc="when its sensor values last moved (UTC, ISO 8601)"),
            F(
                "stale_text",
                doc="how old the newest reading is, in words (for the stale-reading summary)",
            ),
            F("power_state", doc="On, Off, PoweringOn, PoweringOff"),
            F("health", doc="the system's overall health: OK, Warning or Critical"),
            F("power_watts", type=float, doc="power draw"),
            F("power_limit_watts", type=float, doc="the BMC's own power limit"),
            F("power_budget_watts", type=float, doc="the BMC map's budget for this host"),
            F(
                "power_budget",
                type=float,
                doc="the budget power draw is judged against: the map's power_budget_watts, "
                "else the BMC's power limit",
            ),
            F("inlet_celsius", type=float, doc="inlet air, the hottest inlet sensor"),
            F("cpu_celsius", type=float, doc="the hottest CPU sensor"),
            F("psu_count", type=int, doc="power supplies the BMC reports"),
            F("psus_healthy", type=int, doc="power supplies present, enabled and healthy"),
            F("psus_unhealthy", type=int, doc="power supplies that are not"),
            F("psu_problems", doc="the unhealthy supplies in words: 'PSU2 (Critical)'"),
            F("psu_redundancy", doc="redundant, lost, or single (one supply)"),
        ),
    ),
    Kind(
        "temperature_sensor",
        "hardware",
        doc="A temperature sensor of a host's BMC, with the BMC's own thresholds; its id "
        "is <bmc id>/<sensor name>. Unread while the BMC does not answer.",
        project_api=None,
        swept=True,
        alert_labels=(("host", "host"), ("sensor", "name")),
        fields=(
            *_SENSOR_PLACE,
            F("context", doc="Redfish PhysicalContext: Intake, CPU, SystemBoard, ..."),
            F("inlet", type=bool, doc="an inlet (intake) air sensor"),
            F("celsius", type=float, doc="the reading"),
            F(
                "upper_noncritical",
                type=float,
                doc="the BMC's UpperThresholdNonCritical: above it, out of normal range",
            ),
            F("upper_critical", type=float, doc="the BMC's UpperThresholdCritical"),
            F("limits", doc="the BMC's thresholds in words (for summaries)"),
            *_READING_FIELDS,
        ),
        relations=(Relation("bmc", "bmc", "bmc_id", reverse="temperature_sensors"),),
    ),
    Kind(
        "fan",
        "hardware",
        doc="A fan of a host's BMC; its id is <bmc id>/<fan name>. Unread while the BMC "
        "does not answer.",
        project_api=None,
        swept=True,
        alert_labels=(("host", "host"), ("fan", "name")),
        fields=(
            *_SENSOR_PLACE,
            F("rpm", type=float, doc="speed in RPM, when the BMC says"),
            F("percent", type=float, doc="speed in percent, when the BMC says"),
            F("reading", type=float, doc="the speed in the fan's own unit (RPM, else %)"),
            F("units", doc="RPM or %"),
            F(
                "lower_critical",
                type=float,
                doc="the BMC's LowerThresholdCritical, in the unit of `reading`",
            ),
            *_READING_FIELDS,
        ),
        relations=(Relation("bmc", "bmc", "bmc_id", reverse="fans"),),
    ),
)

PATCHING_KINDS: tuple[Kind, ...] = (
    Kind(
        "configuration",
        "patching",
        doc="What defines one service on one host (configuration files, package versions, "
        "container image tags) as the drift check captured it, beside the revision a "
        "campaign last applied there (`stackfleet config show`). Its id is host/service.",
        project_api=None,
        swept=True,
        alert_labels=(("host", "host"), ("service", "service")),
        fields=(
            F("host"),
            F("service"),
            F("running_digest", doc="the revision running now (sha256 of its content)"),
            F("applied_digest", doc="the revision a campaign last applied (None: never)"),
            F(
                "drifted",
                type=bool,
                history=True,
                doc="what runs differs from the last applied revision",
            ),
            F("drift", doc="what differs, in words (files, packages, images)"),
            *_READING_FIELDS,
        ),
    ),
    Kind(
        "campaign",
        "patching",
        doc="A rolling campaign (host maintenance, patching) and where it stands "
        "(`stackfleet campaign status`). Its id is the campaign's name.",
        project_api=None,
        swept=True,
        alert_labels=(("campaign", "name"), ("host", "failed_host")),
        fields=(
            F("state", history=True, doc="running, paused, halted, aborted, completed, ..."),
            F("halted", type=bool, doc="stopped by a failed gate or an abort condition"),
            F("failed_host", doc="the host whose gate failed"),
            F("error", doc="why it stopped"),
            *_READING_FIELDS,
        ),
    ),
)

KINDS_LIST = KINDS_LIST + INFRASTRUCTURE_KINDS + HARDWARE_KINDS + PATCHING_KINDS

KINDS: dict[str, Kind] = {k.name: k for k in KINDS_LIST}


def kind(name: str) -> Kind:
    """The kind called `name`; KeyError names the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown resource kind {name!r}; known: {', '.join(KINDS)}") from None
