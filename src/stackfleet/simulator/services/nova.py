"""Nova, the compute API v2.1, for the simulated cloud.

Served at ``/{region}/compute``; the catalog points at ``.../compute/v2.1``. The objects
in `RegionState` hold the latest shape this module serves (`MAX_VERSION`); every
response is cut down to the microversion the caller negotiated, the way Nova's view
builders do it. Server actions change `RegionState` under ``sim.state.lock``, and moving
a server between hosts carries its ports' binding, its volume attachments and its
Placement usage along. docs/simulator-compute.md lists the served calls and the known
differences from real Nova.

The functions above `class Nova` (microversion parsing, a server's Placement resources
and provider) are shared with the Placement simulator, which derives its allocations
from the servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from stackfleet.simulator.hosts import service_view
from stackfleet.simulator.http import ApiError, empty_response, json_response, require_token
from stackfleet.simulator.listcache import EncodedList, EncodedObjects, OrderCache
from stackfleet.simulator.notifications import notify_server, notify_server_task
from stackfleet.simulator.services import nova_diagnostics
from stackfleet.simulator.state import RegionState

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator

Obj = dict[str, Any]
Version = tuple[int, int]

MIN_VERSION: Version = (2, 1)
# 2.96 (2024.1) adds pinned_availability_zone; later microversions change shapes this
# simulator does not model (2.98 embeds image properties, 2.100 scheduler hints).
MAX_VERSION: Version = (2, 96)
# Nova's [api] max_limit default.
MAX_LIMIT = 1000
VERSION_UPDATED = "2013-07-23T11:33:21Z"

# Quota defaults. Nova's own are 10 instances / 20 cores / 50 GiB RAM per project; a
# simulated fleet of thousands of servers only makes sense with raised quotas, so the
# simulator reports those three as unlimited.
QUOTA_DEFAULTS: dict[str, int] = {
    "instances": -1,
    "cores": -1,
    "ram": -1,
    "metadata_items": 128,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
}


# -- microversions --------------------------------------------------------------------

_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


def requested_microversion(
    headers: Mapping[str, str] | Any, service_type: str, legacy_header: str | None = None
) -> str | None:
    """The microversion a request asks of `service_type`, as microversion-parse reads it:
    the ``OpenStack-API-Version: <service> <version>`` header (several services may share
    the header, comma-separated), then the service's legacy header; None if neither."""
    values = headers.getlist("openstack-api-version") if hasattr(headers, "getlist") else []
    for value in values:
        for item in value.split(","):
            parts = item.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == service_type:
                return parts[1].strip()
    if legacy_header:
        legacy = headers.get(legacy_header)
        if legacy:
            return str(legacy).strip()
    return None


def parse_version(raw: str) -> Version | None:
    """``"2.47"`` -> (2, 47); None when malformed."""
    match = _VERSION_RE.match(raw)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def version_string(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


# -- errors ---------------------------------------------------------------------------

_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def nova_error(status: int, message: str, headers: dict[str, str] | None = None) -> ApiError:
    """An ApiError with Nova's fault body: ``{"itemNotFound": {"code": 404, ...}}``."""
    name = _FAULT_NAMES.get(status, "computeFault")
    return ApiError(status, {name: {"code": status, "message": message}}, headers)


class _UnsupportedVersion(ApiError):
    """A 406 for a microversion out of range; Nova has already taken the version as the
    request's when it refuses it, so the response echoes it in the version headers."""

    def __init__(self, version: Version) -> None:
        message = (
            f"Version {version_string(version)} is not supported by the API. Minimum is "
            f"{version_string(MIN_VERSION)} and maximum is {version_string(MAX_VERSION)}."
        )
        super().__init__(406, {"computeFault": {"code": 406, "message": message}})
        self.version = version


def _policy_error(rule: str) -> ApiError:
    return nova_error(403, f"Policy doesn't allow {rule} to be performed.")


def _not_found() -> ApiError:
    return nova_error(404, "The resource could not be found.")


# -- server state ---------------------------------------------------------------------

# nova/api/openstack/common.py _STATE_MAP: (vm_state, task_state) -> API status.
_STATE_MAP: dict[str, dict[str | None, str]] = {
    "active": {
        "default": "ACTIVE",
        "rebooting": "REBOOT",
        "reboot_pending": "REBOOT",
        "reboot_started": "REBOOT",
        "rebooting_hard": "HARD_REBOOT",
        "reboot_pending_hard": "HARD_REBOOT",
        "reboot_started_hard": "HARD_REBOOT",
        "updating_password": "PASSWORD",
        "rebuilding": "REBUILD",
        "rebuild_block_device_mapping": "REBUILD",
        "rebuild_spawning": "REBUILD",
        "migrating": "MIGRATING",
        "resize_prep": "RESIZE",
        "resize_migrating": "RESIZE",
        "resize_migrated": "RESIZE",
        "resize_finish": "RESIZE",
    },
    "building": {"default": "BUILD"},
    "stopped": {
        "default": "SHUTOFF",
        "resize_prep": "RESIZE",
        "resize_migrating": "RESIZE",
        "resize_migrated": "RESIZE",
        "resize_finish": "RESIZE",
        "rebuilding": "REBUILD",
        "rebuild_block_device_mapping": "REBUILD",
        "rebuild_spawning": "REBUILD",
    },
    "resized": {"default": "VERIFY_RESIZE", "resize_reverting": "REVERT_RESIZE"},
    "paused": {"default": "PAUSED", "migrating": "MIGRATING"},
    "suspended": {"default": "SUSPENDED"},
    "rescued": {"default": "RESCUE"},
    "error": {
        "default": "ERROR",
        "rebuilding": "REBUILD",
        "rebuild_block_device_mapping": "REBUILD",
        "rebuild_spawning": "REBUILD",
    },
    "deleted": {"default": "DELETED"},
    "soft-delete": {"default": "SOFT_DELETED"},
    "shelved": {"default": "SHELVED"},
    "shelved_offloaded": {"default": "SHELVED_OFFLOADED"},
}
_PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}
_FAULT_STATUSES = {"ERROR", "DELETED"}
# nova/compute/power_state.py
RUNNING, PAUSED, SHUTDOWN = 1, 3, 4
# nova.objects.fields.InstancePowerState by index (power_state.STATE_MAP)
_POWER_STATE_NAMES = {
    0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended",
}  # fmt: skip

VM_STATE = "OS-EXT-STS:vm_state"
TASK_STATE = "OS-EXT-STS:task_state"
POWER_STATE = "OS-EXT-STS:power_state"
HOST = "OS-EXT-SRV-ATTR:host"
NODE = "OS-EXT-SRV-ATTR:hypervisor_hostname"


def server_status(server: Obj) -> str:
    """The API status Nova derives from a server's vm_state and task_state."""
    vm_state = server.get(VM_STATE)
    if vm_state is None:
        return str(server.get("status") or "UNKNOWN")
    task_map = _STATE_MAP.get(vm_state, {"default": "UNKNOWN"})
    return task_map.get(server.get(TASK_STATE), task_map["default"])


def _states_for_statuses(statuses: Iterable[str]) -> tuple[set[str], set[str | None]]:
    """The (vm_states, task_states) a status filter selects, as Nova computes them; the
    task_states contain "default" when any task state matches."""
    wanted = {s.strip().lower() for s in statuses}
    vm_states: set[str] = set()
    task_states: set[str | None] = set()
    for vm_state, task_map in _STATE_MAP.items():
        for task_state, status in task_map.items():
            if status.lower() in wanted:
                vm_states.add(vm_state)
                task_states.add(task_state)
    return vm_states, task_states


@lru_cache(maxsize=65536)
def host_id(host: str | None, project_id: str) -> str:
    """Nova's hostId: sha224 of project id + host, empty for a server without a host."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def nova_time(moment: datetime | None = None) -> str:
    """Nova's server timestamps: 2025-06-01T12:00:00Z."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _db_time(moment: datetime | None = None) -> str:
    """Timestamps Nova prints from naive datetimes (services, migrations, launched_at)."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _parse_time(raw: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- Placement bookkeeping (shared with the Placement simulator) -------------------------


def flavor_resources(flavor: Obj, boot_from_volume: bool = False) -> dict[str, int]:
    """The Placement resources Nova claims for a server of `flavor` (the embedded
    flavor of a server): VCPU (PCPU with ``hw:cpu_policy=dedicated``), MEMORY_MB and
    DISK_GB (root unless volume-backed, plus ephemeral and swap rounded up to GiB),
    overridden by ``resources:<CLASS>`` extra specs; zero amounts are left out."""
    extra = flavor.get("extra_specs") or {}
    vcpus = _as_int(flavor.get("vcpus"))
    resources: dict[str, int] = {}
    if str(extra.get("hw:cpu_policy", "")).lower() == "dedicated":
        resources["PCPU"] = vcpus
    else:
        resources["VCPU"] = vcpus
    resources["MEMORY_MB"] = _as_int(flavor.get("ram"))
    root = 0 if boot_from_volume else _as_int(flavor.get("disk"))
    swap_gb = math.ceil(_as_int(flavor.get("swap")) / 1024)
    resources["DISK_GB"] = root + _as_int(flavor.get("ephemeral")) + swap_gb
    for key, value in extra.items():
        if key.startswith("resources") and ":" in key:
            resource_class = key.split(":", 1)[1]
            try:
                resources[resource_class] = int(value)
            except (TypeError, ValueError):
                continue
    return {rc: amount for rc, amount in resources.items() if amount > 0}


def _as_int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def server_resources(server: Obj) -> dict[str, int]:
    """What a server holds in Placement (its flavor; a server without an image is
    volume-backed and holds no root disk)."""
    return flavor_resources(server.get("flavor") or {}, boot_from_volume=not server.get("image"))


def providers_by_name(region: RegionState) -> dict[str, str]:
    """Resource provider name (the hypervisor hostname) -> provider uuid."""
    return {rp.get("name", ""): rp_uuid for rp_uuid, rp in region.resource_providers.items()}


def server_provider(
    region: RegionState, server: Obj, by_name: dict[str, str] | None = None
) -> str | None:
    """The uuid of the resource provider a server's allocation is on (its node's)."""
    node = server.get(NODE)
    if not node:
        return None
    names = by_name if by_name is not None else providers_by_name(region)
    return names.get(node)


# Migration statuses during which the source node's allocation is still held by the
# migration record (a cold migration waiting for confirmResize / revertResize).
HOLDING_MIGRATION_STATUSES = {"pre-migrating", "migrating", "post-migrating", "finished"}


def migration_holds(region: RegionState, migration: Obj) -> bool:
    """Whether a migration record holds an allocation on its source node."""
    return (
        migration.get("migration_type") in ("migration", "resize")
        and migration.get("status") in HOLDING_MIGRATION_STATUSES
        and migration.get("instance_uuid") in region.servers
    )


def held_resources(region: RegionState, migration: Obj) -> dict[str, int]:
    """What a migration holds on its source: the server's flavor, or for a resize the
    old flavor (the server shows the new one)."""
    server = region.servers[migration["instance_uuid"]]
    old = migration.get("old_flavor")
    if old:
        return flavor_resources(old, boot_from_volume=not server.get("image"))
    return server_resources(server)


def derived_usages(region: RegionState, provider_uuid: str) -> dict[str, int]:
    """A provider's usage summed from the servers (and held migrations) on it, for
    providers whose usage `RegionState.usages` does not record."""
    provider = region.resource_providers.get(provider_uuid) or {}
    name = provider.get("name")
    totals = {rc: 0 for rc in region.inventories.get(provider_uuid, {})}
    for server in region.servers.values():
        if name and server.get(NODE) == name:
            for rc, amount in server_resources(server).items():
                totals[rc] = totals.get(rc, 0) + amount
    for migration in region.migrations.values():
        if name and migration.get("source_node") == name and migration_holds(region, migration):
            held = held_resources(region, migration)
            for rc, amount in held.items():
                totals[rc] = totals.get(rc, 0) + amount
    return totals


def provider_usages(region: RegionState, provider_uuid: str) -> dict[str, int]:
    """A provider's usage per resource class: every inventoried class, 0 when unused."""
    recorded = region.usages.get(provider_uuid)
    usage = dict(recorded) if recorded is not None else derived_usages(region, provider_uuid)
    for rc in region.inventories.get(provider_uuid, {}):
        usage.setdefault(rc, 0)
    return usage


# The traits a libvirt compute node reports for its resource provider when the state
# records none of its own.
COMPUTE_NODE_TRAITS = (
    "COMPUTE_ACCELERATORS",
    "COMPUTE_DEVICE_TAGGING",
    "COMPUTE_IMAGE_TYPE_QCOW2",
    "COMPUTE_IMAGE_TYPE_RAW",
    "COMPUTE_NET_ATTACH_INTERFACE",
    "COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG",
    "COMPUTE_NET_VIF_MODEL_VIRTIO",
    "COMPUTE_NODE",
    "COMPUTE_STORAGE_BUS_VIRTIO",
    "COMPUTE_TRUSTED_CERTS",
    "COMPUTE_VOLUME_ATTACH_WITH_TAG",
    "COMPUTE_VOLUME_EXTEND",
    "COMPUTE_VOLUME_MULTI_ATTACH",
    "HW_CPU_HYPERTHREADING",
    "HW_CPU_X86_AESNI",
    "HW_CPU_X86_AVX2",
    "HW_CPU_X86_SSE42",
)


def provider_traits(region: RegionState, provider_uuid: str) -> list[str]:
    """A provider's traits: those `RegionState.provider_traits` records, else, for a
    compute node, the usual libvirt ones plus COMPUTE_STATUS_DISABLED while its compute
    service is disabled (as Nova keeps it)."""
    recorded = region.provider_traits.get(provider_uuid)
    if recorded is not None:
        return list(recorded)
    provider = region.resource_providers.get(provider_uuid) or {}
    hypervisor = region.hypervisors.get(provider_uuid) or next(
        (
            h
            for h in region.hypervisors.values()
            if h.get("hypervisor_hostname") == provider.get("name")
        ),
        None,
    )
    if hypervisor is None:
        return []
    traits = list(COMPUTE_NODE_TRAITS)
    host = (hypervisor.get("service") or {}).get("host")
    disabled = any(
        s.get("host") == host
        and s.get("binary") == "nova-compute"
        and s.get("status") == "disabled"
        for s in region.compute_services.values()
    )
    if disabled:
        traits.append("COMPUTE_STATUS_DISABLED")
    return sorted(traits)


def _capacity(inventory: Obj) -> float:
    return (_as_int(inventory.get("total")) - _as_int(inventory.get("reserved"))) * float(
        inventory.get("allocation_ratio") or 1.0
    )


def provider_fits(region: RegionState, provider_uuid: str, resources: dict[str, int]) -> bool:
    """Whether a provider has room for `resources` (capacity, min/max unit, step)."""
    inventories = region.inventories.get(provider_uuid, {})
    usage = provider_usages(region, provider_uuid)
    for rc, amount in resources.items():
        inventory = inventories.get(rc)
        if inventory is None:
            return False
        if amount < _as_int(inventory.get("min_unit") or 1):
            return False
        max_unit = inventory.get("max_unit")
        if max_unit is not None and amount > _as_int(max_unit):
            return False
        step = _as_int(inventory.get("step_size") or 1) or 1
        if amount % step:
            return False
        if usage.get(rc, 0) + amount > _capacity(inventory):
            return False
    return True


# -- request context ------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who is calling, with which negotiated microversion."""

    version: Version
    project_id: str = ""
    user_id: str = ""
    roles: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def can_write(self) -> bool:
        # Nova's 2023 default policies: project members change their servers, readers
        # only look.
        return self.is_admin or "member" in self.roles

    def at_least(self, minor: int) -> bool:
        return self.version >= (2, minor)


@dataclass
class _View:
    """What shaping a batch of objects for one response needs, computed once."""

    caller: Caller
    root: str  # http://host/RegionOne/compute/v2.1
    bookmark: str  # http://host/RegionOne/compute
    services_by_host: dict[str, Obj] = field(default_factory=dict)
    flavor_ids: dict[str, str] = field(default_factory=dict)
    # uuid -> the integer id Nova showed before 2.53 (the database id: insertion order)
    hypervisor_ids: dict[str, int] = field(default_factory=dict)
    service_ids: dict[str, int] = field(default_factory=dict)


Handler = Callable[[Request, Caller], Awaitable[Response]]


def _service_root(request: Request) -> str:
    """The URL the service is mounted at, as the client addressed it."""
    base = str(request.base_url).rstrip("/")
    app_root = request.scope.get("app_root_path", "")
    mounted = request.scope.get("root_path", "")[len(app_root) :]
    return base + mounted


def _bool_param(raw: str | None, name: str) -> bool:
    """oslo's strict bool_from_string for a query parameter; anything else is a 400."""
    value = (raw or "").strip().lower()
    if value in ("1", "t", "true", "on", "y", "yes"):
        return True
    if value in ("0", "f", "false", "off", "n", "no"):
        return False
    raise nova_error(
        400,
        f"Invalid input for query parameters {name}. Value: {raw}. "
        f"Unrecognized value '{raw}', acceptable values are: '0', '1', 'f', 'false', "
        "'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'",
    )


def _limit_marker(request: Request) -> tuple[int, str | None]:
    """Nova's get_limit_and_marker: limit capped at max_limit, 400 when not a
    non-negative integer."""
    raw = request.query_params.get("limit")
    limit = MAX_LIMIT
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError as exc:
            raise nova_error(400, "limit param must be an integer") from exc
        if limit < 0:
            raise nova_error(400, "limit param must be positive")
        limit = min(limit, MAX_LIMIT)
    marker = request.query_params.get("marker")
    return limit, marker


def _offset_limit(request: Request) -> tuple[int, int]:
    """Nova's common.limited(): offset/limit paging, limit 0 or absent = max_limit."""
    values: list[int] = []
    for name in ("offset", "limit"):
        raw = request.query_params.get(name, "0") or "0"
        try:
            value = int(raw)
        except ValueError as exc:
            raise nova_error(400, f"{name} param must be an integer") from exc
        if value < 0:
            raise nova_error(400, f"{name} param must be positive")
        values.append(value)
    offset, limit = values
    return offset, min(limit or MAX_LIMIT, MAX_LIMIT)


def _collection_links(
    request: Request, root: str, collection: str, items: list[Obj], id_key: str
) -> list[Obj]:
    """Nova's _get_collection_links: a next link whenever the page is full (limit given,
    or max_limit without one), even when nothing follows; the href repeats the sorted
    query parameters with the marker set to the page's last id."""
    raw = request.query_params.get("limit")
    max_items = min(int(raw), MAX_LIMIT) if raw else MAX_LIMIT
    if not max_items or len(items) != max_items:
        return []
    params = dict(sorted(request.query_params.multi_items()))
    params["marker"] = str(items[-1][id_key])
    return [{"rel": "next", "href": f"{root}/{collection}?{urlencode(params)}"}]


class _NotFoundApp:
    """Answers paths the router does not know with Nova's 404 body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = json_response(
            {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}, 404
        )
        await response(scope, receive, send)


# Fields that appear in a server's representation from a microversion on.
_SERVER_FIELDS_SINCE: tuple[tuple[Version, tuple[str, ...]], ...] = (
    (
        (2, 3),
        tuple(
            f"OS-EXT-SRV-ATTR:{k}"
            for k in (
                "reservation_id",
                "launch_index",
                "hostname",
                "kernel_id",
                "ramdisk_id",
                "root_device_name",
                "user_data",
            )
        ),
    ),
    ((2, 9), ("locked",)),
    ((2, 16), ("host_status",)),
    ((2, 19), ("description",)),
    ((2, 26), ("tags",)),
    ((2, 63), ("trusted_image_certificates",)),
    ((2, 71), ("server_groups",)),
    ((2, 73), ("locked_reason",)),
    ((2, 96), ("pinned_availability_zone",)),
)
# Hypervisor statistics fields that microversion 2.88 removed.
_HYPERVISOR_STATS = (
    "vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
    "free_ram_mb", "free_disk_gb", "current_workload", "running_vms", "disk_available_least",
)  # fmt: skip
_DEFAULT_CPU_INFO: Obj = {
    "arch": "x86_64",
    "model": "Icelake-Server",
    "vendor": "Intel",
    "features": ["sse4.2", "avx2", "aes", "vmx"],
    "topology": {"cores": 16, "threads": 2, "sockets": 2},
}
# Sort keys the servers list accepts -> the field of a stored server they read.
_SERVER_SORT_KEYS: dict[str, str] = {
    "created_at": "created",
    "updated_at": "updated",
    "display_name": "name",
    "uuid": "id",
    "vm_state": VM_STATE,
    "task_state": TASK_STATE,
    "power_state": POWER_STATE,
    "launched_at": "OS-SRV-USG:launched_at",
    "terminated_at": "OS-SRV-USG:terminated_at",
    "availability_zone": "OS-EXT-AZ:availability_zone",
    "key_name": "key_name",
    "project_id": "tenant_id",
    "user_id": "user_id",
    "locked": "locked",
    "display_description": "description",
    "hostname": "OS-EXT-SRV-ATTR:hostname",
    "host": HOST,
    "node": NODE,
}
_ADMIN_SORT_KEYS = {"host", "node"}
# Flavor sort keys (database columns) -> the field of the stored flavor.
_FLAVOR_SORT_KEYS = {
    "flavorid": "id",
    "id": "id",
    "name": "name",
    "memory_mb": "ram",
    "vcpus": "vcpus",
    "root_gb": "disk",
    "ephemeral_gb": "OS-FLV-EXT-DATA:ephemeral",
    "swap": "swap",
    "rxtx_factor": "rxtx_factor",
    "disabled": "OS-FLV-DISABLED:disabled",
    "is_public": "os-flavor-access:is_public",
}
# Server list filters only admins may use before 2.83 (Nova drops them silently for
# others), and those that stay admin-only after.
_ADMIN_FILTERS_BEFORE_283 = {
    "availability_zone", "key_name", "vm_state", "task_state", "power_state", "user_id",
}  # fmt: skip
_ADMIN_FILTERS = {"host", "node", "uuid", "project_id", "tenant_id"}
# Power actions: name -> (policy rule, method named in conflicts, vm_states allowed,
# task state while running, vm_state and power_state after).
_POWER_ACTIONS: dict[str, tuple[str, str, tuple[str, ...], str, str, int]] = {
    "os-stop": ("servers:stop", "stop", ("active", "error"), "powering-off", "stopped", SHUTDOWN),
    "os-start": ("servers:start", "start", ("stopped",), "powering-on", "active", RUNNING),
    "pause": ("os-pause-server:pause", "pause", ("active",), "pausing", "paused", PAUSED),
    "unpause": ("os-pause-server:unpause", "unpause", ("paused",), "unpausing", "active", RUNNING),
    "suspend": (
        "os-suspend-server:suspend", "suspend", ("active",), "suspending", "suspended", SHUTDOWN,
    ),
    "resume": ("os-suspend-server:resume", "resume", ("suspended",), "resuming", "active", RUNNING),
}  # fmt: skip


class Nova:
    """The routes of the simulated Nova of one region."""

    def __init__(self, sim: Simulator, region: RegionState) -> None:
        self.sim = sim
        self.region = region
        # server id -> whether an admin locked it (only admins may then unlock)
        self._locked_by_admin: dict[str, bool] = {}
        # service id -> the state it reported before it was forced down
        self._state_before_forced_down: dict[str, str] = {}
        # Server list orders and encoded detail views (see stackfleet.simulator.listcache)
        self._server_orders = OrderCache()
        self._encoded_servers = EncodedObjects()
        self._actions: dict[str, Callable[[Request, Caller, Obj, Any], Awaitable[Response]]] = {
            "reboot": self._action_reboot,
            "lock": self._action_lock,
            "unlock": self._action_unlock,
            "os-resetState": self._action_reset_state,
            "rebuild": self._action_rebuild,
            "evacuate": self._action_evacuate,
            "migrate": self._action_migrate,
            "confirmResize": self._action_confirm_resize,
            "revertResize": self._action_revert_resize,
            "os-migrateLive": self._action_live_migrate,
            "createImage": self._action_create_image,
        }
        from stackfleet.simulator.services.nova_manage import NovaManagement
        from stackfleet.simulator.services.nova_provision import NovaProvisioning

        # server create, server groups create/delete, key pairs (a module of their own)
        self.provisioning = NovaProvisioning(self)
        # rebuild, resize, console output, remote consoles
        self.management = NovaManagement(self)
        self._actions.update(self.management.actions())

    # -- plumbing ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        r = self._route
        v = "/v2.1"
        return [
            r("/", self.versions, auth=False),
            r(v, self.version_doc, auth=False),
            r(f"{v}/", self.version_doc, auth=False),
            r(f"{v}/servers", self.list_servers),
            r(f"{v}/servers", self.provisioning.create_server, "POST"),
            r(f"{v}/servers/detail", self.list_servers_detail),
            r(f"{v}/servers/{{server_id}}", self.show_server),
            r(f"{v}/servers/{{server_id}}", self.delete_server, "DELETE"),
            r(f"{v}/servers/{{server_id}}/action", self.server_action, "POST"),
            r(f"{v}/servers/{{server_id}}/diagnostics", self.server_diagnostics),
            r(
                f"{v}/servers/{{server_id}}/remote-consoles",
                self.management.remote_console,
                "POST",
            ),
            r(f"{v}/servers/{{server_id}}/metadata", self.list_metadata),
            r(f"{v}/servers/{{server_id}}/metadata", self.replace_metadata, "PUT"),
            r(f"{v}/servers/{{server_id}}/metadata", self.merge_metadata, "POST"),
            r(f"{v}/servers/{{server_id}}/metadata/{{key}}", self.show_metadata_item),
            r(f"{v}/servers/{{server_id}}/metadata/{{key}}", self.set_metadata_item, "PUT"),
            r(f"{v}/servers/{{server_id}}/metadata/{{key}}", self.delete_metadata_item, "DELETE"),
            r(f"{v}/servers/{{server_id}}/tags", self.list_tags),
            r(f"{v}/servers/{{server_id}}/tags", self.replace_tags, "PUT"),
            r(f"{v}/servers/{{server_id}}/tags", self.delete_tags, "DELETE"),
            r(f"{v}/servers/{{server_id}}/tags/{{tag}}", self.check_tag),
            r(f"{v}/servers/{{server_id}}/tags/{{tag}}", self.add_tag, "PUT"),
            r(f"{v}/servers/{{server_id}}/tags/{{tag}}", self.delete_tag, "DELETE"),
            r(f"{v}/flavors", self.list_flavors),
            r(f"{v}/flavors/detail", self.list_flavors_detail),
            r(f"{v}/flavors/{{flavor_id}}", self.show_flavor),
            r(f"{v}/flavors/{{flavor_id}}/os-extra_specs", self.list_extra_specs),
            r(f"{v}/flavors/{{flavor_id}}/os-extra_specs/{{key}}", self.show_extra_spec),
            r(f"{v}/os-hypervisors", self.list_hypervisors),
            r(f"{v}/os-hypervisors/detail", self.list_hypervisors_detail),
            r(f"{v}/os-hypervisors/statistics", self.hypervisor_statistics),
            r(f"{v}/os-hypervisors/{{hypervisor_id}}", self.show_hypervisor),
            r(f"{v}/os-hypervisors/{{hypervisor_id}}/uptime", self.hypervisor_uptime),
            r(f"{v}/os-hypervisors/{{pattern}}/search", self.search_hypervisors),
            r(f"{v}/os-hypervisors/{{pattern}}/servers", self.hypervisor_servers),
            r(f"{v}/os-services", self.list_services),
            r(f"{v}/os-services/{{service_id}}", self.update_service, "PUT"),
            r(f"{v}/os-server-groups", self.list_server_groups),
            r(f"{v}/os-server-groups", self.provisioning.create_server_group, "POST"),
            r(f"{v}/os-server-groups/{{group_id}}", self.show_server_group),
            r(
                f"{v}/os-server-groups/{{group_id}}",
                self.provisioning.delete_server_group,
                "DELETE",
            ),
            r(f"{v}/os-keypairs", self.provisioning.list_keypairs),
            r(f"{v}/os-keypairs", self.provisioning.create_keypair, "POST"),
            r(f"{v}/os-keypairs/{{name}}", self.provisioning.show_keypair),
            r(f"{v}/os-keypairs/{{name}}", self.provisioning.delete_keypair, "DELETE"),
            r(f"{v}/os-availability-zone", self.list_availability_zones),
            r(f"{v}/os-availability-zone/detail", self.list_availability_zones_detail),
            r(f"{v}/limits", self.show_limits),
            r(f"{v}/os-quota-sets/{{project_id}}", self.show_quota_set),
            r(f"{v}/os-quota-sets/{{project_id}}/detail", self.show_quota_set_detail),
            r(f"{v}/os-quota-sets/{{project_id}}/defaults", self.show_quota_defaults),
            r(f"{v}/os-migrations", self.list_migrations),
        ]

    def _route(
        self, path: str, handler: Handler, method: str = "GET", *, auth: bool = True
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            version: Version | None = None
            try:
                # keystonemiddleware runs before Nova: a 401 carries no version headers.
                token = require_token(self.sim, request) if auth else None
                version = self._negotiate(request)
                caller = Caller(version)
                if token is not None:
                    caller = Caller(
                        version,
                        project_id=str((token.get("project") or {}).get("id") or ""),
                        user_id=str((token.get("user") or {}).get("id") or ""),
                        roles=frozenset(r.get("name", "") for r in token.get("roles") or []),
                    )
                response = await handler(request, caller)
            except ApiError as exc:
                response = json_response(exc.body, exc.status, exc.headers)
                if isinstance(exc, _UnsupportedVersion):
                    version = exc.version
            if version is not None:
                response.headers["OpenStack-API-Version"] = f"compute {version_string(version)}"
                response.headers["X-OpenStack-Nova-API-Version"] = version_string(version)
                response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
            request_id = f"req-{uuid.uuid4()}"
            response.headers["X-OpenStack-Request-ID"] = request_id
            response.headers["X-Compute-Request-ID"] = request_id
            return response

        return Route(path, endpoint, methods=[method])

    @staticmethod
    def _negotiate(request: Request) -> Version:
        raw = requested_microversion(request.headers, "compute", "x-openstack-nova-api-version")
        if raw is None:
            return MIN_VERSION
        if raw.lower() == "latest":
            return MAX_VERSION
        version = parse_version(raw)
        if version is None:
            raise nova_error(
                400,
                f"API Version String {raw} is of invalid format. Must be of format "
                "MajorNum.MinorNum.",
            )
        if not MIN_VERSION <= version <= MAX_VERSION:
            raise _UnsupportedVersion(version)
        return version

    def _view(self, request: Request, caller: Caller) -> _View:
        bookmark = _service_root(request)
        services = {
            s.get("host", ""): s
            for s in self.region.compute_services.values()
            if s.get("binary") == "nova-compute"
        }
        flavor_ids: dict[str, str] = {}
        for flavor in self.region.flavors.values():
            flavor_ids.setdefault(flavor.get("name", ""), str(flavor.get("id")))
        return _View(
            caller,
            f"{bookmark}/v2.1",
            bookmark,
            services,
            flavor_ids,
            {hid: index + 1 for index, hid in enumerate(self.region.hypervisors)},
            {sid: index + 1 for index, sid in enumerate(self.region.compute_services)},
        )

    @staticmethod
    def _links(view: _View, collection: str, obj_id: str) -> list[Obj]:
        return [
            {"rel": "self", "href": f"{view.root}/{collection}/{obj_id}"},
            {"rel": "bookmark", "href": f"{view.bookmark}/{collection}/{obj_id}"},
        ]

    def _lock(self) -> Any:
        return self.sim.state.lock

    def _repaired_by(self, server: Obj, step: str) -> bool | None:
        """Whether a reboot or rebuild repairs a server broken through /_sim (None: it
        is not broken)."""
        hosts = getattr(self.sim, "hosts", None)
        return None if hosts is None else hosts.repaired_by(str(server["id"]), step)

    def _action_delay(self) -> float:
        """Seconds a server action stays in its task state before it completes
        (``Simulator.action_delay`` when set; default: complete at once)."""
        try:
            return max(0.0, float(getattr(self.sim, "action_delay", 0.0) or 0.0))
        except (TypeError, ValueError):
            return 0.0

    # -- version discovery ------------------------------------------------------------

    def _version_body(self, request: Request, media_types: bool) -> Obj:
        doc: Obj = {
            "id": "v2.1",
            "status": "CURRENT",
            "version": version_string(MAX_VERSION),
            "min_version": version_string(MIN_VERSION),
            "updated": VERSION_UPDATED,
            "links": [{"rel": "self", "href": f"{_service_root(request)}/v2.1/"}],
        }
        if media_types:
            doc["links"].append(
                {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}
            )
            doc["media-types"] = [
                {
                    "base": "application/json",
                    "type": "application/vnd.openstack.compute+json;version=2.1",
                }
            ]
        return doc

    async def versions(self, request: Request, caller: Caller) -> Response:
        return json_response({"versions": [self._version_body(request, media_types=False)]})

    async def version_doc(self, request: Request, caller: Caller) -> Response:
        return json_response({"version": self._version_body(request, media_types=True)})

    # -- servers: reading -------------------------------------------------------------

    def _server_for(self, caller: Caller, server_id: str) -> Obj:
        """The server, if the caller may see it; Nova answers 404 for other projects'."""
        server = self.region.servers.get(server_id)
        if server is None or (not caller.is_admin and server.get("tenant_id") != caller.project_id):
            raise nova_error(404, f"Instance {server_id} could not be found.")
        return server

    def _host_status(self, host: str | None, view: _View) -> str:
        return _host_status_of(view.services_by_host.get(host) if host else None)

    def _refresh_host_status(self, host: str | None) -> None:
        """Keep the stored host_status of the servers on `host` in step with its compute
        service (responses derive it anyway; this is for readers of the state)."""
        if not host:
            return
        status = _host_status_of(self._compute_service(host))
        for server in self.region.servers.values():
            if server.get(HOST) == host and "host_status" in server:
                server["host_status"] = status

    def render_server(self, server: Obj, view: _View, *, show: bool = False) -> Obj:
        """A stored server shaped for the caller's microversion and role."""
        caller = view.caller
        version = caller.version
        out = dict(server)
        server_id = str(server["id"])
        status = server_status(server)
        out["status"] = status
        out["links"] = self._links(view, "servers", server_id)
        host = server.get(HOST)
        out["hostId"] = host_id(host, str(server.get("tenant_id") or ""))
        image = server.get("image")
        if isinstance(image, dict) and image.get("id"):
            out["image"] = {
                "id": image["id"],
                "links": [{"rel": "bookmark", "href": f"{view.bookmark}/images/{image['id']}"}],
            }
        else:
            out["image"] = ""
        flavor = server.get("flavor") or {}
        if version >= (2, 47):
            out["flavor"] = {k: v for k, v in flavor.items() if k not in ("id", "links")}
        else:
            name = flavor.get("original_name", "")
            flavor_id = str(flavor.get("id") or view.flavor_ids.get(name, name))
            out["flavor"] = {
                "id": flavor_id,
                "links": [{"rel": "bookmark", "href": f"{view.bookmark}/flavors/{flavor_id}"}],
            }
        if status in _PROGRESS_STATUSES:
            out["progress"] = server.get("progress") or 0
        else:
            out.pop("progress", None)
        fault = server.get("fault")
        if status not in _FAULT_STATUSES or not fault:
            out.pop("fault", None)
        elif not caller.is_admin and fault.get("code") == 500:
            out["fault"] = {k: v for k, v in fault.items() if k != "details"}
        if server.get(VM_STATE) == "building":
            out["addresses"] = {}
        if caller.is_admin:
            out["host_status"] = self._host_status(host, view)
        else:
            for key in [k for k in out if k.startswith("OS-EXT-SRV-ATTR:")]:
                if not (key == "OS-EXT-SRV-ATTR:hostname" and version >= (2, 90)):
                    del out[key]
            out.pop("host_status", None)
        for since, keys in _SERVER_FIELDS_SINCE:
            if version < since:
                for key in keys:
                    out.pop(key, None)
        if version < (2, 3):
            out["os-extended-volumes:volumes_attached"] = [
                {"id": v.get("id")}
                for v in server.get("os-extended-volumes:volumes_attached") or []
            ]
        if version >= (2, 9):
            out["locked"] = bool(server.get("locked"))
        if version >= (2, 26):
            out["tags"] = list(server.get("tags") or [])
        if not show:
            # Only GET /servers/{id} shows the server groups (2.71).
            out.pop("server_groups", None)
        elif version >= (2, 71):
            out["server_groups"] = self._server_groups_of(server_id)
        return out

    @staticmethod
    def _render_key(view: _View) -> Hashable:
        """What `render_server` reads from the request besides the server (the view of
        an encoded server: see stackfleet.simulator.listcache.EncodedObjects)."""
        caller = view.caller
        flavor_ids = tuple(view.flavor_ids.items()) if caller.version < (2, 47) else None
        return (caller.version, caller.is_admin, view.root, view.bookmark, flavor_ids)

    def _render_context(self, view: _View) -> Callable[[Obj], Hashable] | None:
        """What `render_server` reads from elsewhere in the state for one server: the
        status of its host's compute service, which admins see."""
        if not view.caller.is_admin:
            return None
        return lambda server: self._host_status(server.get(HOST), view)

    def _server_groups_of(self, server_id: str) -> list[str]:
        return [
            gid
            for gid, group in self.region.server_groups.items()
            if server_id in (group.get("members") or [])
        ]

    async def server_diagnostics(self, request: Request, caller: Caller) -> Response:
        """nova/api/openstack/compute/server_diagnostics.py: admin-only by default; 409
        when the server has no host or is not running (compute manager), the standard
        body from 2.48, the driver's own dict before. A server on a down compute host
        answers 500 at once (real Nova: the RPC call times out after a minute)."""
        server_id = request.path_params["server_id"]
        # another project's server is not found (Nova reads it project-scoped) before
        # the policy refuses a non-admin
        server = self._server_for(caller, server_id)
        self._require_admin(caller, "os_compute_api:os-server-diagnostics")
        if not server.get(HOST):
            raise nova_error(409, f"Instance {server_id} is not ready")
        power = int(server.get(POWER_STATE) or 0)
        if power != RUNNING:
            raise nova_error(
                409,
                f"Cannot 'get_diagnostics' instance {server_id} while it is in power state "
                f"{_POWER_STATE_NAMES.get(power, 'pending')}",
            )
        if not self._service_up(self._compute_service(server.get(HOST))):
            raise nova_error(
                500,
                "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ "
                "and attach the Nova API log if possible.\n<class "
                "'oslo_messaging.exceptions.MessagingTimeout'>",
            )
        truth = self.sim.state.ground_truth.get(self.region.name, {})
        idle = server_id in set(truth.get("idle_servers", ()))
        body = nova_diagnostics.diagnostics(server, idle, time.time(), caller.at_least(48))
        return json_response(body)

    async def show_server(self, request: Request, caller: Caller) -> Response:
        server = self._server_for(caller, request.path_params["server_id"])
        view = self._view(request, caller)
        return json_response({"server": self.render_server(server, view, show=True)})

    async def list_servers(self, request: Request, caller: Caller) -> Response:
        return self._list_servers(request, caller, detail=False)

    async def list_servers_detail(self, request: Request, caller: Caller) -> Response:
        return self._list_servers(request, caller, detail=True)

    def _list_servers(self, request: Request, caller: Caller, *, detail: bool) -> Response:
        params = request.query_params
        all_tenants = self._all_tenants(params)
        if all_tenants and not caller.is_admin:
            scope = "detail" if detail else "index"
            raise _policy_error(f"os_compute_api:servers:{scope}:get_all_tenants")
        limit, marker = _limit_marker(request)
        matching, filters = self._filter_servers(request, caller, all_tenants)
        if marker and marker not in self.region.servers:
            # Nova looks the marker up among all servers, not only the matching ones.
            raise nova_error(400, f"marker [{marker}] not found")
        page = self._server_page(request, caller, matching, filters, marker, limit)
        view = self._view(request, caller)
        items: list[Obj] | EncodedList
        if detail:
            items = self._encoded_servers.encode(
                self._render_key(view),
                page,
                lambda s: self.render_server(s, view),
                self._render_context(view),
                population=len(self.region.servers),
            )
        else:
            items = [
                {
                    "id": s["id"],
                    "name": s.get("name"),
                    "links": self._links(view, "servers", s["id"]),
                }
                for s in page
            ]
        body: Obj = {"servers": items}
        links = _collection_links(
            request, view.root, "servers/detail" if detail else "servers", page, "id"
        )
        if links:
            body["servers_links"] = links
        return json_response(body)

    @staticmethod
    def _all_tenants(params: Any) -> bool:
        if "all_tenants" not in params:
            return False
        raw = params.get("all_tenants")
        if not raw:
            # An empty value counts as asking for all tenants.
            return True
        return _bool_param(raw, "all_tenants")

    def _filter_servers(
        self, request: Request, caller: Caller, all_tenants: bool
    ) -> tuple[list[Obj], tuple[Any, ...]]:
        """The servers the query selects, and what selected them (the caller's project
        and the filter parameters in effect; empty when every server is listed)."""
        params = request.query_params
        version = caller.version
        allowed = set(params.keys())
        if not caller.is_admin:
            # Nova silently drops the options a non-admin may not use.
            allowed -= _ADMIN_FILTERS
            if version < (2, 83):
                allowed -= _ADMIN_FILTERS_BEFORE_283
        checks: list[Callable[[Obj], bool]] = []

        if all_tenants:
            project = params.get("project_id") if "project_id" in allowed else None
            if project is None and "tenant_id" in allowed:
                project = params.get("tenant_id")
            if project:
                wanted_project = project
                checks.append(lambda s: s.get("tenant_id") == wanted_project)
        else:
            own = caller.project_id
            checks.append(lambda s: s.get("tenant_id") == own)

        statuses = params.getlist("status")
        if "status" in allowed and statuses:
            vm_states, task_states = _states_for_statuses(
                part for value in statuses for part in value.split(",")
            )
            if not vm_states:
                if version >= (2, 38):
                    raise nova_error(400, "Invalid status value")
                return [], ("nothing",)
            checks.append(lambda s: s.get(VM_STATE) in vm_states)
            if "default" not in task_states:
                checks.append(lambda s: s.get(TASK_STATE) in task_states)

        def exact(param: str, read: Callable[[Obj], Any]) -> None:
            if param in allowed and params.get(param) is not None:
                wanted = params[param]
                checks.append(lambda s: str(read(s)) == wanted)

        exact("host", lambda s: s.get(HOST))
        exact("node", lambda s: s.get(NODE))
        exact("uuid", lambda s: s.get("id"))
        exact("user_id", lambda s: s.get("user_id"))
        exact("availability_zone", lambda s: s.get("OS-EXT-AZ:availability_zone"))
        exact("key_name", lambda s: s.get("key_name"))
        exact("vm_state", lambda s: s.get(VM_STATE))
        exact("task_state", lambda s: s.get(TASK_STATE))
        exact("power_state", lambda s: s.get(POWER_STATE))

        if "name" in allowed and params.get("name"):
            checks.append(self._regex_check(params["name"], lambda s: [s.get("name") or ""]))
        if "ip" in allowed and params.get("ip"):
            checks.append(self._regex_check(params["ip"], _server_ips))
        if "image" in allowed and params.get("image"):
            image_id = params["image"].rstrip("/").rsplit("/", 1)[-1]
            checks.append(
                lambda s: isinstance(s.get("image"), dict) and s["image"].get("id") == image_id
            )
        if "flavor" in allowed and params.get("flavor"):
            flavor_id = params["flavor"].rstrip("/").rsplit("/", 1)[-1]
            flavor = self.region.flavors.get(flavor_id)
            if flavor is None:
                return [], ("nothing",)
            flavor_name = flavor.get("name")
            checks.append(lambda s: (s.get("flavor") or {}).get("original_name") == flavor_name)

        since = self._time_param(params, "changes-since")
        before = self._time_param(params, "changes-before") if version >= (2, 66) else None
        if since and before and since > before:
            raise nova_error(
                400, "The value of changes-since must be less than or equal to changes-before."
            )
        if since:
            checks.append(lambda s: (_parse_time(s.get("updated") or "") or since) >= since)
        if before:
            checks.append(lambda s: (_parse_time(s.get("updated") or "") or before) <= before)

        if version >= (2, 26):
            self._tag_checks(params, checks)
        if version >= (2, 73) and "locked" in allowed and params.get("locked") is not None:
            wanted_locked = _bool_param(params["locked"], "locked")
            checks.append(lambda s: bool(s.get("locked")) == wanted_locked)

        servers = list(self.region.servers.values())
        for check in checks:
            servers = [s for s in servers if check(s)]
        if not checks:
            return servers, ()
        unused = {"limit", "marker", "sort_key", "sort_dir"}
        return servers, (
            caller.project_id if not all_tenants else None,
            tuple(sorted((k, v) for k, v in params.multi_items() if k not in unused)),
        )

    @staticmethod
    def _regex_check(pattern: str, read: Callable[[Obj], list[str]]) -> Callable[[Obj], bool]:
        # Nova hands the pattern to the database's REGEXP; MySQL's default collation
        # matches case-insensitively.
        try:
            regex = re.compile(pattern, re.IGNORECASE)
        except re.error:
            regex = re.compile(re.escape(pattern), re.IGNORECASE)
        return lambda s: any(regex.search(value) for value in read(s))

    @staticmethod
    def _time_param(params: Any, name: str) -> datetime | None:
        raw = params.get(name)
        if raw is None:
            return None
        moment = _parse_time(raw)
        if moment is None:
            raise nova_error(400, f"Invalid filter field: {name}.")
        return moment

    @staticmethod
    def _tag_checks(params: Any, checks: list[Callable[[Obj], bool]]) -> None:
        def tag_set(name: str) -> set[str] | None:
            raw = params.get(name)
            return {t.strip() for t in raw.split(",") if t.strip()} if raw else None

        tags_all, tags_any = tag_set("tags"), tag_set("tags-any")
        not_all, not_any = tag_set("not-tags"), tag_set("not-tags-any")
        if tags_all:
            checks.append(lambda s: tags_all <= set(s.get("tags") or []))
        if tags_any:
            checks.append(lambda s: bool(tags_any & set(s.get("tags") or [])))
        if not_all:
            checks.append(lambda s: not not_all <= set(s.get("tags") or []))
        if not_any:
            checks.append(lambda s: not not_any & set(s.get("tags") or []))

    def _server_page(
        self,
        request: Request,
        caller: Caller,
        servers: list[Obj],
        filters: tuple[Any, ...],
        marker: str | None,
        limit: int,
    ) -> list[Obj]:
        """One page of `servers` (selected by `filters`) in Nova's order: the requested
        sort key (default created_at), then created_at and the internal id (insertion
        order), all in one direction (default descending); the page starts after the
        marker server's place in that order."""
        sort_keys = request.query_params.getlist("sort_key")
        sort_dirs = request.query_params.getlist("sort_dir")
        first = sort_keys[0] if sort_keys else "created_at"
        direction = (sort_dirs[0] if sort_dirs else "desc").lower()
        if first not in _SERVER_SORT_KEYS:
            raise nova_error(400, f"Invalid input for query parameters sort_key. Value: {first}.")
        if first in _ADMIN_SORT_KEYS and not caller.is_admin:
            raise nova_error(403, f"Only administrators can sort servers by {first}")
        if direction not in ("asc", "desc"):
            raise nova_error(
                400, f"Invalid input for query parameters sort_dir. Value: {direction}."
            )
        sort_field = _SERVER_SORT_KEYS[first]

        def created(server: Obj) -> str:
            return str(server.get("created") or "")

        def nullable(server: Obj) -> tuple[int, Any]:
            # NULLs sort first, as MySQL does.
            value = server.get(sort_field)
            return (0, "") if value is None else (1, value)

        def sort(items: list[Obj]) -> list[Obj]:
            # Python's sort is stable and `items` are in insertion (database id) order,
            # so sorting by the key alone orders ties by id; reversing a sorted list
            # gives the descending order of (key, created_at, id). No per-server tuples:
            # on a large fleet their allocation wakes the garbage collector over the
            # whole state.
            ordered = sorted(items, key=created)
            if first != "created_at":
                ordered.sort(key=nullable)
            if direction == "desc":
                ordered.reverse()
            return ordered

        order = self._server_orders.order(
            (first, direction, filters), servers, ("created", sort_field), sort
        )
        ordered = order.items
        start = 0
        if marker:
            anchor = self.region.servers[marker]
            position = order.position(marker)
            if position is not None and ordered[position] is anchor:
                start = position + 1
            else:
                try:
                    start = ordered.index(anchor) + 1
                except ValueError:
                    start = self._position_after(anchor, ordered, sort_field, direction)
        return ordered[start : start + limit]

    def _position_after(
        self, anchor: Obj, ordered: list[Obj], sort_field: str, direction: str
    ) -> int:
        """Where the servers after `anchor` (a marker the filters left out) begin."""
        index = {sid: i for i, sid in enumerate(self.region.servers)}

        def key(server: Obj) -> tuple[Any, ...]:
            value = server.get(sort_field)
            return (
                (0, "") if value is None else (1, value),
                server.get("created") or "",
                index.get(server["id"], -1),
            )

        anchor_key = key(anchor)
        for position, server in enumerate(ordered):
            if (key(server) > anchor_key) if direction == "asc" else (key(server) < anchor_key):
                return position
        return len(ordered)

    # -- servers: state changes -------------------------------------------------------

    def _require_write(self, caller: Caller, rule: str) -> None:
        if not caller.can_write:
            raise _policy_error(rule)

    def _require_admin(self, caller: Caller, rule: str) -> None:
        if not caller.is_admin:
            raise _policy_error(rule)

    @staticmethod
    def _check_lock(caller: Caller, server: Obj) -> None:
        if server.get("locked") and not caller.is_admin:
            raise nova_error(409, f"Instance {server['id']} is locked")

    @staticmethod
    def _check_state(
        server: Obj,
        method: str,
        vm_states: Iterable[str] | None,
        task_states: Iterable[str | None] | None = (None,),
    ) -> None:
        """Nova's check_instance_state, answered as the API does: 409."""
        vm_state = server.get(VM_STATE)
        task_state = server.get(TASK_STATE)
        if vm_states is not None and vm_state not in set(vm_states):
            raise nova_error(
                409,
                f"Cannot '{method}' instance {server['id']} while it is in vm_state {vm_state}",
            )
        if task_states is not None and task_state not in set(task_states):
            raise nova_error(
                409,
                f"Cannot '{method}' instance {server['id']} while it is in task_state {task_state}",
            )

    def _touch(self, server: Obj) -> None:
        """A server record was saved: bump its updated time and keep the stored status
        in step with vm_state and task_state (other services read the state directly)."""
        server["updated"] = nova_time()
        if server.get(VM_STATE) is not None:
            server["status"] = server_status(server)

    def _transition(
        self, server: Obj, task_state: str | None, finish: Callable[[Obj], None]
    ) -> None:
        """Start an action: show `task_state` now, run `finish` (which sets the end
        state) at once or after `_action_delay` seconds, then clear the task state."""
        server_id = server["id"]
        with self._lock():
            server[TASK_STATE] = task_state
            self._touch(server)
        notify_server_task(self.sim, server, task_state, "start")

        def complete() -> None:
            with self._lock():
                current = self.region.servers.get(server_id)
                if current is None:
                    return
                finish(current)
                if server_id in self.region.servers:
                    current[TASK_STATE] = None
                    self._touch(current)
            notify_server_task(self.sim, current, task_state, "end")

        delay = self._action_delay()
        if delay <= 0:
            complete()
        else:
            asyncio.get_running_loop().call_later(delay, complete)

    @staticmethod
    def _set_power(server: Obj, vm_state: str, power_state: int) -> None:
        server[VM_STATE] = vm_state
        server[POWER_STATE] = power_state
        server["status"] = server_status(server)

    async def server_action(self, request: Request, caller: Caller) -> Response:
        server = self._server_for(caller, request.path_params["server_id"])
        body = await _read_body(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise nova_error(400, "Malformed request body")
        name, argument = next(iter(body.items()))
        if name in _POWER_ACTIONS:
            return self._power_action(caller, server, name)
        action = self._actions.get(name)
        if action is None:
            raise nova_error(400, f"There is no such action: {name}")
        return await action(request, caller, server, argument)

    def _power_action(self, caller: Caller, server: Obj, name: str) -> Response:
        """os-stop, os-start, pause, unpause, suspend, resume (see _POWER_ACTIONS)."""
        rule, method, allowed, task, vm_state, power = _POWER_ACTIONS[name]
        self._require_write(caller, f"os_compute_api:{rule}")
        self._check_lock(caller, server)
        self._check_state(server, method, allowed)

        def finish(current: Obj) -> None:
            hosts = getattr(self.sim, "hosts", None)
            if hosts is not None and hosts.power_fails_for(str(current["id"])):
                # the compute service failed it (/_sim/servers/.../break, mode power):
                # Nova reverts the task state, keeps the vm state and records an
                # instance fault, which its API shows only once a server is in ERROR
                current["fault"] = {
                    "code": 500,
                    "message": f"{method} failed: simulated hypervisor error",
                    "created": nova_time(),
                }
                return
            self._set_power(current, vm_state, power)

        self._transition(server, task, finish)
        return empty_response(202)

    async def _action_reboot(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_write(caller, "os_compute_api:servers:reboot")
        kind = arg.get("type") if isinstance(arg, dict) else None
        if not isinstance(kind, str) or kind.upper() not in ("SOFT", "HARD"):
            raise nova_error(
                400,
                f"Invalid input for field/attribute type. Value: {kind}. {kind!r} is not one "
                "of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']",
            )
        self._check_lock(caller, server)
        if kind.upper() == "SOFT":
            self._check_state(server, "reboot", ("active",))
            task = "reboot_started"
        else:
            self._check_state(
                server,
                "reboot",
                ("active", "stopped", "paused", "suspended", "error"),
                (None, "rebooting", "reboot_pending", "reboot_started", "rebooting_hard",
                 "reboot_pending_hard", "reboot_started_hard", "pausing", "unpausing",
                 "suspending", "resuming"),
            )  # fmt: skip
            task = "reboot_started_hard"

        def finish(current: Obj) -> None:
            if self._repaired_by(current, "reboot") is False:
                # broken until a rebuild (/_sim/servers/.../break): the reboot fails
                self._set_power(current, "error", 0)
                current["fault"] = {"code": 500, "message": "reboot failed: no bootable disk"}
                return
            self._set_power(current, "active", RUNNING)

        self._transition(server, task, finish)
        return empty_response(202)

    async def _action_lock(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_write(caller, "os_compute_api:os-lock-server:lock")
        reason = None
        if caller.at_least(73) and isinstance(arg, dict):
            reason = arg.get("locked_reason")
            if reason is not None and (not isinstance(reason, str) or len(reason) > 255):
                raise nova_error(400, "Invalid input for field/attribute locked_reason.")
        with self._lock():
            server["locked"] = True
            server["locked_reason"] = reason
            self._locked_by_admin[server["id"]] = caller.is_admin
            self._touch(server)
        notify_server(self.sim, "instance.lock", server)
        return empty_response(202)

    async def _action_unlock(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_write(caller, "os_compute_api:os-lock-server:unlock")
        if self._locked_by_admin.get(server["id"]) and not caller.is_admin:
            raise _policy_error("os_compute_api:os-lock-server:unlock:unlock_override")
        with self._lock():
            server["locked"] = False
            server["locked_reason"] = None
            self._locked_by_admin.pop(server["id"], None)
            self._touch(server)
        notify_server(self.sim, "instance.unlock", server)
        return empty_response(202)

    async def _action_reset_state(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_admin(caller, "os_compute_api:os-admin-actions:reset_state")
        state = arg.get("state") if isinstance(arg, dict) else None
        if state not in ("active", "error"):
            raise nova_error(
                400,
                f"Invalid input for field/attribute state. Value: {state}. {state!r} is not "
                "one of ['active', 'error']",
            )
        with self._lock():
            server[VM_STATE] = state
            server[TASK_STATE] = None
            server["status"] = server_status(server)
            self._touch(server)
        return empty_response(202)

    async def _action_rebuild(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        """Rebuild from an image (imageRef required): the server goes REBUILD, then
        ACTIVE (or SHUTOFF when it was stopped, since 2.75 as in Nova)."""
        self._require_write(caller, "os_compute_api:servers:rebuild")
        image = arg.get("imageRef") if isinstance(arg, dict) else None
        if not isinstance(image, str) or not image:
            raise nova_error(400, "Invalid input for field/attribute rebuild. imageRef required")
        if image not in self.region.images:
            raise nova_error(400, f"Image {image} could not be found.")
        self._check_lock(caller, server)
        self._check_state(server, "rebuild", ("active", "stopped", "error"))
        was_stopped = server.get(VM_STATE) == "stopped"

        def finish(current: Obj) -> None:
            current["image"] = {"id": image}
            current.pop("fault", None)
            self._repaired_by(current, "rebuild")
            if was_stopped:
                self._set_power(current, "stopped", SHUTDOWN)
            else:
                self._set_power(current, "active", RUNNING)

        self._transition(server, "rebuilding", finish)
        view = self._view(request, caller)
        return json_response({"server": self.render_server(server, view, show=True)}, 202)

    # -- moves between hosts ----------------------------------------------------------

    def _hypervisors_of_host(self, host: str) -> list[Obj]:
        return [
            h
            for h in self.region.hypervisors.values()
            if (h.get("service") or {}).get("host") == host
        ]

    def _compute_service(self, host: str | None) -> Obj | None:
        if not host:
            return None
        for service in self.region.compute_services.values():
            if service.get("host") == host and service.get("binary") == "nova-compute":
                return service
        return None

    @staticmethod
    def _service_up(service: Obj | None) -> bool:
        return service is not None and service_view(service)[0] == "up"

    def _provider_of(self, hypervisor: Obj) -> str | None:
        if hypervisor.get("id") in self.region.resource_providers:
            return str(hypervisor["id"])
        return providers_by_name(self.region).get(hypervisor.get("hypervisor_hostname", ""))

    def _schedule(
        self,
        server: Obj,
        *,
        requested_host: str | None,
        force: bool = False,
        zone: str | None = None,
        candidates_from_placement: bool = False,
    ) -> Obj | None:
        """The hypervisor the scheduler would pick for `server` (None: no valid host):
        compute service up and enabled (in `zone` when given), another host, room in
        Placement, the server's (anti-)affinity groups respected; the soft policies
        weigh (fewest other members on the host for soft-anti-affinity, most for
        soft-affinity), then most free RAM wins, then the hostname.

        A forced destination skips the filters but not what Nova still does for it:
        its nova-compute must be up and Placement must take the claim (room). A build
        (`candidates_from_placement`) asks Placement for allocation candidates even
        when forced, and Placement offers no provider carrying COMPUTE_STATUS_DISABLED
        (since Train); forced evacuations and live migrations claim directly and do
        not see that trait."""
        source = server.get(HOST)
        resources = server_resources(server)
        group_hosts: list[tuple[str, set[str]]] = []
        soft: list[tuple[str, list[str]]] = []
        for group in self.region.server_groups.values():
            members = group.get("members") or []
            if server["id"] not in members:
                continue
            others_list = [
                str(self.region.servers[m].get(HOST))
                for m in members
                if m != server["id"] and m in self.region.servers
                and self.region.servers[m].get(HOST)
            ]  # fmt: skip
            if group.get("policy") in ("affinity", "anti-affinity"):
                group_hosts.append((str(group["policy"]), set(others_list)))
            elif group.get("policy") in ("soft-affinity", "soft-anti-affinity"):
                soft.append((str(group["policy"]), others_list))
        candidates: list[tuple[float, float, str, Obj]] = []
        for hypervisor in self.region.hypervisors.values():
            host = (hypervisor.get("service") or {}).get("host")
            if not host or host == source:
                continue
            if requested_host is not None and host != requested_host:
                continue
            provider = self._provider_of(hypervisor)
            if force:
                return self._forced(hypervisor, provider, server, candidates_from_placement)
            service = self._compute_service(host)
            if not self._service_up(service) or (service or {}).get("status") == "disabled":
                continue
            if zone is not None and str((service or {}).get("zone") or "nova") != zone:
                continue
            if provider is None or not provider_fits(self.region, provider, resources):
                continue
            if any(
                (policy == "anti-affinity" and host in hosts)
                or (policy == "affinity" and hosts and host not in hosts)
                for policy, hosts in group_hosts
            ):
                continue
            memory = self.region.inventories.get(provider, {}).get("MEMORY_MB", {})
            free_ram = _capacity(memory) - provider_usages(self.region, provider).get(
                "MEMORY_MB", 0
            )
            weight = sum(
                hosts.count(host) * (1 if policy == "soft-anti-affinity" else -1)
                for policy, hosts in soft
            )
            candidates.append(
                (weight, -free_ram, str(hypervisor.get("hypervisor_hostname")), hypervisor)
            )
        if not candidates:
            return None
        candidates.sort(key=lambda c: (c[0], c[1], c[2]))
        return candidates[0][3]

    def _forced(
        self, hypervisor: Obj, provider: str | None, server: Obj, from_placement: bool
    ) -> Obj | None:
        """A forced destination if Nova would accept it (see `_schedule`)."""
        host = (hypervisor.get("service") or {}).get("host")
        if (
            provider is None
            or not self._service_up(self._compute_service(host))
            or not provider_fits(self.region, provider, server_resources(server))
            or (
                from_placement
                and "COMPUTE_STATUS_DISABLED" in self.region.provider_traits.get(provider, [])
            )
        ):
            return None
        return hypervisor

    def _ensure_usages(self, provider: str | None) -> None:
        """Record a provider's usage before it changes, for providers whose usage was
        only ever derived."""
        if (
            provider
            and provider not in self.region.usages
            and provider in self.region.resource_providers
        ):
            self.region.usages[provider] = derived_usages(self.region, provider)

    def _add_usage(self, provider: str | None, resources: dict[str, int], sign: int) -> None:
        if not provider or provider not in self.region.resource_providers:
            return
        usage = self.region.usages.setdefault(provider, {})
        for rc, amount in resources.items():
            usage[rc] = max(0, usage.get(rc, 0) + sign * amount)
        rp = self.region.resource_providers[provider]
        rp["generation"] = int(rp.get("generation") or 0) + 1

    def _move(self, server: Obj, destination: Obj, *, release_source: bool = True) -> None:
        """Put `server` on `destination` (a hypervisor): host and node, the ports'
        binding host, volume attachments, and Placement usage (the source's is kept when
        a migration record still holds it). Call with the state lock held."""
        by_name = providers_by_name(self.region)
        source_provider = server_provider(self.region, server, by_name)
        dest_provider = self._provider_of(destination)
        resources = server_resources(server)
        self._ensure_usages(source_provider)
        self._ensure_usages(dest_provider)
        if release_source:
            self._add_usage(source_provider, resources, -1)
        self._add_usage(dest_provider, resources, +1)
        new_host = str((destination.get("service") or {}).get("host"))
        server[HOST] = new_host
        server[NODE] = destination.get("hypervisor_hostname")
        server["hostId"] = host_id(new_host, str(server.get("tenant_id") or ""))
        service = self._compute_service(new_host)
        if service is not None and service.get("zone"):
            server["OS-EXT-AZ:availability_zone"] = service["zone"]
        self._rebind(server["id"], new_host)
        if "host_status" in server:
            server["host_status"] = _host_status_of(service)

    def _rebind(self, server_id: str, host: str) -> None:
        now = nova_time()
        for port in self.region.ports.values():
            if port.get("device_id") == server_id:
                port["binding:host_id"] = host
                if "updated_at" in port:
                    port["updated_at"] = now
                if isinstance(port.get("revision_number"), int):
                    port["revision_number"] += 1
        for volume in self.region.volumes.values():
            for attachment in volume.get("attachments") or []:
                if attachment.get("server_id") == server_id:
                    attachment["host_name"] = host

    def _new_migration(self, server: Obj, kind: str, destination: Obj | None, status: str) -> Obj:
        source_host = server.get(HOST)
        source_node = server.get(NODE)
        flavor = server.get("flavor") or {}
        name = flavor.get("original_name")
        flavor_id = next(
            (f.get("id") for f in self.region.flavors.values() if f.get("name") == name), None
        )
        type_id = _as_int(flavor_id) if str(flavor_id or "").isdigit() else None
        now = _db_time()
        migration = {
            "id": len(self.region.migrations) + 1,
            "uuid": str(uuid.uuid4()),
            "source_compute": source_host,
            "source_node": source_node,
            "dest_compute": (destination.get("service") or {}).get("host") if destination else None,
            "dest_node": destination.get("hypervisor_hostname") if destination else None,
            "dest_host": destination.get("host_ip") if destination else None,
            "status": status,
            "instance_uuid": server["id"],
            "old_instance_type_id": type_id,
            "new_instance_type_id": type_id,
            "migration_type": kind,
            "created_at": now,
            "updated_at": None,
            "project_id": server.get("tenant_id"),
            "user_id": server.get("user_id"),
        }
        with self._lock():
            self.region.migrations[migration["uuid"]] = migration
        return migration

    @staticmethod
    def _set_migration(migration: Obj, status: str) -> None:
        migration["status"] = status
        migration["updated_at"] = _db_time()

    def _target_host(self, body: Any, key: str = "host") -> str | None:
        if not isinstance(body, dict):
            return None
        host = body.get(key)
        if host is not None and not isinstance(host, str):
            raise nova_error(400, f"Invalid input for field/attribute {key}.")
        return host

    async def _action_evacuate(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_admin(caller, "os_compute_api:os-evacuate")
        host = self._target_host(arg)
        force = bool(
            isinstance(arg, dict) and (2, 29) <= caller.version < (2, 68) and arg.get("force")
        )
        if force and not host:
            raise nova_error(400, "Can't force to a non-provided destination")
        if host is not None and self._compute_service(host) is None:
            raise nova_error(404, f"Compute host {host} not found.")
        if server.get(HOST) == host:
            raise nova_error(400, "The target host can't be the same one.")
        self._check_state(server, "evacuate", ("active", "stopped", "error"))
        source = server.get(HOST)
        if self._service_up(self._compute_service(source)):
            # Nova refuses to evacuate from a host whose compute service still reports.
            raise nova_error(400, f"Compute service of {source} is still in use.")
        destination = self._schedule(server, requested_host=host, force=force)
        migration = self._new_migration(server, "evacuation", destination, "accepted")
        arrive_stopped = caller.at_least(95) or server.get(VM_STATE) == "stopped"

        def finish(current: Obj) -> None:
            if destination is None:
                # The conductor found no host: the server stays where it was.
                self._set_migration(migration, "error")
                return
            self._move(current, destination)
            if arrive_stopped:
                self._set_power(current, "stopped", SHUTDOWN)
            else:
                self._set_power(current, "active", RUNNING)
            current.pop("fault", None)
            self._set_migration(migration, "done")

        self._transition(server, "rebuilding", finish)
        if not caller.at_least(14):
            return json_response({"adminPass": uuid.uuid4().hex[:12]})
        return Response(status_code=200)

    async def _action_migrate(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_admin(caller, "os_compute_api:os-migrate-server:migrate")
        host = self._target_host(arg) if caller.at_least(56) else None
        self._check_lock(caller, server)
        self._check_state(server, "migrate", ("active", "stopped"))
        if host is not None:
            if self._compute_service(host) is None:
                raise nova_error(400, f"Compute host {host} could not be found.")
            if host == server.get(HOST):
                raise nova_error(400, "Cannot migrate to the host where the server exists.")
        destination = self._schedule(server, requested_host=host)
        if destination is None:
            raise nova_error(400, "No valid host was found. There are not enough hosts available.")
        migration = self._new_migration(server, "migration", destination, "pre-migrating")

        def finish(current: Obj) -> None:
            # The source allocation moves to the migration record until the resize is
            # confirmed or reverted.
            self._move(current, destination, release_source=False)
            current[VM_STATE] = "resized"
            current["status"] = server_status(current)
            self._set_migration(migration, "finished")

        self._transition(server, "resize_prep", finish)
        return empty_response(202)

    def _pending_resize(self, server: Obj) -> Obj | None:
        for migration in reversed(list(self.region.migrations.values())):
            if (
                migration.get("instance_uuid") == server["id"]
                and migration.get("status") == "finished"
            ):
                return migration
        return None

    async def _action_confirm_resize(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_write(caller, "os_compute_api:servers:confirm_resize")
        self._check_lock(caller, server)
        self._check_state(server, "confirmResize", ("resized",))
        migration = self._pending_resize(server)
        if migration is None:
            raise nova_error(400, "Instance has not been resized.")
        with self._lock():
            source_provider = providers_by_name(self.region).get(migration.get("source_node") or "")
            self._ensure_usages(source_provider)
            self._add_usage(source_provider, held_resources(self.region, migration), -1)
            self._set_migration(migration, "confirmed")
            running = server.get(POWER_STATE) == RUNNING
            self._set_power(
                server, "active" if running else "stopped", RUNNING if running else SHUTDOWN
            )
            self._touch(server)
        return empty_response(204)

    async def _action_revert_resize(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_write(caller, "os_compute_api:servers:revert_resize")
        self._check_lock(caller, server)
        self._check_state(server, "revertResize", ("resized",))
        migration = self._pending_resize(server)
        if migration is None:
            raise nova_error(400, "Instance has not been resized.")
        source = next(
            (
                h
                for h in self.region.hypervisors.values()
                if h.get("hypervisor_hostname") == migration.get("source_node")
            ),
            None,
        )
        self._set_migration(migration, "reverting")

        def finish(current: Obj) -> None:
            if source is not None:
                # Back onto the source, whose allocation the migration still held.
                dest_provider = server_provider(self.region, current)
                self._ensure_usages(dest_provider)
                self._add_usage(dest_provider, server_resources(current), -1)
                source_provider = self._provider_of(source)
                if source_provider in self.region.resource_providers:
                    rp = self.region.resource_providers[source_provider]
                    rp["generation"] = int(rp.get("generation") or 0) + 1
                current[HOST] = (source.get("service") or {}).get("host")
                current[NODE] = source.get("hypervisor_hostname")
                current["hostId"] = host_id(current[HOST], str(current.get("tenant_id") or ""))
                self._rebind(current["id"], str(current[HOST]))
                if "host_status" in current:
                    current["host_status"] = _host_status_of(self._compute_service(current[HOST]))
            if migration.get("old_flavor"):
                current["flavor"] = migration["old_flavor"]  # a resize reverted
            running = current.get(POWER_STATE) == RUNNING
            self._set_power(
                current, "active" if running else "stopped", RUNNING if running else SHUTDOWN
            )
            self._set_migration(migration, "reverted")

        self._transition(server, "resize_reverting", finish)
        return empty_response(202)

    async def _action_live_migrate(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_admin(caller, "os_compute_api:os-migrate-server:migrate_live")
        if not isinstance(arg, dict) or "block_migration" not in arg:
            raise nova_error(
                400, "Invalid input for field/attribute os-migrateLive. Value: "
                f"{arg}. 'block_migration' is a required property",
            )  # fmt: skip
        host = self._target_host(arg)
        force = bool((2, 30) <= caller.version < (2, 68) and arg.get("force"))
        self._check_lock(caller, server)
        self._check_state(server, "os-migrateLive", ("active", "paused"))
        if host is not None:
            if self._compute_service(host) is None:
                raise nova_error(400, f"Compute host {host} could not be found.")
            if host == server.get(HOST):
                raise nova_error(
                    400, f"The source compute {host} is the same as the destination compute."
                )
        source_up = self._service_up(self._compute_service(server.get(HOST)))
        destination = (
            self._schedule(server, requested_host=host, force=force) if source_up else None
        )
        if destination is None and not caller.at_least(34):
            # Before 2.34 the pre-checks ran synchronously and failed the request.
            if not source_up:
                raise nova_error(
                    400, f"Compute service of {server.get(HOST)} is unavailable at this time."
                )
            raise nova_error(400, "No valid host was found. There are not enough hosts available.")
        migration = self._new_migration(server, "live-migration", destination, "queued")

        def finish(current: Obj) -> None:
            if destination is None:
                self._set_migration(migration, "error")
                return
            self._move(current, destination)
            self._set_migration(migration, "completed")

        self._transition(server, "migrating", finish)
        return empty_response(202)

    async def _action_create_image(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self._require_write(caller, "os_compute_api:servers:create_image")
        if (
            not isinstance(arg, dict)
            or not isinstance(arg.get("name"), str)
            or not arg["name"].strip()
        ):
            raise nova_error(
                400, "Invalid input for field/attribute createImage. 'name' is a required property"
            )
        metadata = arg.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise nova_error(400, "Invalid input for field/attribute metadata.")
        self._check_lock(caller, server)
        self._check_state(server, "createImage", ("active", "stopped", "paused", "suspended"))
        image = self._snapshot_image(server, arg["name"], metadata)
        with self._lock():
            self.region.images[image["id"]] = image

        def finish(current: Obj) -> None:
            image["status"] = "active"
            image["updated_at"] = nova_time()

        self._transition(server, "image_snapshot", finish)
        if caller.at_least(45):
            return json_response({"image_id": image["id"]}, 202)
        image_url = f"{self.sim.endpoint_url('image', self.region.name)}/v2/images/{image['id']}"
        return Response(status_code=202, headers={"Location": image_url})

    def _snapshot_image(self, server: Obj, name: str, metadata: Obj) -> Obj:
        """A Glance image for a server snapshot, inheriting the base image's formats."""
        base_ref = server.get("image")
        base_id = base_ref.get("id") if isinstance(base_ref, dict) else None
        base = self.region.images.get(base_id or "") or {}
        image_id = str(uuid.uuid4())
        now = nova_time()
        flavor = server.get("flavor") or {}
        image: Obj = {
            "id": image_id,
            "name": name,
            "status": "queued",
            "visibility": "private",
            "protected": False,
            "os_hidden": False,
            "owner": server.get("tenant_id"),
            "container_format": base.get("container_format", "bare"),
            "disk_format": base.get("disk_format", "qcow2"),
            "min_disk": max(_as_int(flavor.get("disk")), _as_int(base.get("min_disk"))),
            "min_ram": _as_int(base.get("min_ram")),
            "size": base.get("size"),
            "virtual_size": base.get("virtual_size"),
            "checksum": base.get("checksum"),
            "os_hash_algo": base.get("os_hash_algo"),
            "os_hash_value": base.get("os_hash_value"),
            "tags": [],
            "created_at": now,
            "updated_at": now,
            "file": f"/v2/images/{image_id}/file",
            "self": f"/v2/images/{image_id}",
            "schema": "/v2/schemas/image",
            "image_type": "snapshot",
            "instance_uuid": server["id"],
            "base_image_ref": base_id or "",
            "user_id": server.get("user_id"),
            "owner_user_name": None,
        }
        for key in ("os_distro", "os_version", "hw_disk_bus", "hw_vif_model"):
            if key in base:
                image[key] = base[key]
        image.update({str(k): str(v) for k, v in metadata.items()})
        return image

    async def delete_server(self, request: Request, caller: Caller) -> Response:
        server = self._server_for(caller, request.path_params["server_id"])
        self._require_write(caller, "os_compute_api:servers:delete")
        self._check_lock(caller, server)
        self._transition(server, "deleting", self._remove_server)
        return empty_response(204)

    def _remove_server(self, server: Obj) -> None:
        """Delete a server as Nova does: its allocation is freed, the ports Nova made for
        it are deleted (their floating IPs disassociated), its volumes detached and its
        group memberships dropped. Call with the state lock held."""
        server_id = server["id"]
        provider = server_provider(self.region, server)
        self._ensure_usages(provider)
        self._add_usage(provider, server_resources(server), -1)
        for migration in self.region.migrations.values():
            if migration.get("instance_uuid") == server_id and migration_holds(
                self.region, migration
            ):
                source = providers_by_name(self.region).get(migration.get("source_node") or "")
                self._ensure_usages(source)
                self._add_usage(source, server_resources(server), -1)
                self._set_migration(migration, "confirmed")
        del self.region.servers[server_id]
        now = nova_time()
        gone_ports = {
            pid
            for pid, port in self.region.ports.items()
            if port.get("device_id") == server_id
            and str(port.get("device_owner", "")).startswith("compute:")
        }
        for pid in gone_ports:
            del self.region.ports[pid]
        for fip in self.region.floatingips.values():
            if fip.get("port_id") in gone_ports:
                fip.update(port_id=None, fixed_ip_address=None, status="DOWN", updated_at=now)
        for attached in server.get("os-extended-volumes:volumes_attached") or []:
            # block_device_mapping_v2's delete_on_termination: Nova deletes the volume
            if attached.get("delete_on_termination"):
                self.region.volumes.pop(str(attached.get("id")), None)
        for volume in self.region.volumes.values():
            attachments = volume.get("attachments") or []
            kept = [a for a in attachments if a.get("server_id") != server_id]
            if len(kept) != len(attachments):
                volume["attachments"] = kept
                if not kept:
                    volume["status"] = "available"
                volume["updated_at"] = _db_time()
        for group in self.region.server_groups.values():
            members = group.get("members") or []
            if server_id in members:
                group["members"] = [m for m in members if m != server_id]
        self._locked_by_admin.pop(server_id, None)

    # -- server metadata and tags -----------------------------------------------------

    def _check_metadata_writable(self, caller: Caller, server: Obj, method: str) -> None:
        self._require_write(caller, "os_compute_api:server-metadata:update")
        self._check_lock(caller, server)
        self._check_state(
            server, method,
            ("active", "paused", "suspended", "stopped", "shelved", "shelved_offloaded"),
            None,
        )  # fmt: skip

    @staticmethod
    def _valid_metadata(metadata: Any) -> dict[str, str]:
        if not isinstance(metadata, dict):
            raise nova_error(400, "Malformed request body")
        for key, value in metadata.items():
            if not isinstance(key, str) or not 1 <= len(key) <= 255:
                raise nova_error(400, f"Invalid input for field/attribute metadata. Value: {key}.")
            if not isinstance(value, str) or len(value) > 255:
                raise nova_error(400, f"Invalid input for field/attribute {key}. Value: {value}.")
        if len(metadata) > QUOTA_DEFAULTS["metadata_items"]:
            raise nova_error(403, "Quota exceeded for metadata_items: Requested")
        return dict(metadata)

    async def list_metadata(self, request: Request, caller: Caller) -> Response:
        server = self._server_for(caller, request.path_params["server_id"])
        return json_response({"metadata": dict(server.get("metadata") or {})})

    async def replace_metadata(self, request: Request, caller: Caller) -> Response:
        return await self._write_metadata(request, caller, replace=True)

    async def merge_metadata(self, request: Request, caller: Caller) -> Response:
        return await self._write_metadata(request, caller, replace=False)

    async def _write_metadata(self, request: Request, caller: Caller, *, replace: bool) -> Response:
        server = self._server_for(caller, request.path_params["server_id"])
        body = await _read_body(request)
        if not isinstance(body, dict) or "metadata" not in body:
            raise nova_error(
                400, "Invalid input for field/attribute metadata. 'metadata' is a required property"
            )
        metadata = self._valid_metadata(body["metadata"])
        self._check_metadata_writable(caller, server, "update metadata")
        with self._lock():
            merged = metadata if replace else {**(server.get("metadata") or {}), **metadata}
            server["metadata"] = merged
            self._touch(server)
        return json_response({"metadata": dict(merged)})

    async def show_metadata_item(self, request: Request, caller: Caller) -> Response:
        server = self._server_for(caller, request.path_params["server_id"])
        key = request.path_params["key"]
        metadata = server.get("metadata") or {}
        if key not in metadata:
            raise nova_error(404, "Metadata item was not found")
        return json_response({"meta": {key: metadata[key]}})

    async def set_metadata_item(self, request: Request, caller: Caller) -> Response:
        server = self._server_for(caller, request.path_params["server_id"])
        key = request.path_params["key"]
        body = await _read_body(request)
        meta = body.get("meta") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or len(meta) != 1:
            raise nova_error(400, "Request body contains too many items")
        if key not in meta:
            raise nova_error(400, "Request body and URI mismatch")
        item = self._valid_metadata(meta)
        self._check_metadata_writable(caller, server, "update metadata")
        with self._lock():
            server["metadata"] = {**(server.get("metadata") or {}), **item}
            self._touch(server)
        return json_response({"meta": item})

    async def delete_metadata_item(self, request: Request, caller: Caller) -> Response:
        server = self._server_for(caller, request.path_params["server_id"])
        key = request.path_params["key"]
        if key not in (server.get("metadata") or {}):
            raise nova_error(404, "Metadata item was not found")
        self._check_metadata_writable(caller, server, "delete metadata")
        with self._lock():
            server["metadata"] = {k: v for k, v in server["metadata"].items() if k != key}
            self._touch(server)
        return empty_response(204)

    def _tags_server(self, request: Request, caller: Caller) -> Obj:
        if not caller.at_least(26):
            raise _not_found()
        return self._server_for(caller, request.path_params["server_id"])

    def _check_tags_writable(self, caller: Caller, server: Obj, method: str) -> None:
        self._require_write(caller, "os_compute_api:os-server-tags:update")
        self._check_state(
            server, method,
            ("active", "paused", "suspended", "stopped", "shelved", "shelved_offloaded"),
        )  # fmt: skip

    @staticmethod
    def _valid_tag(tag: Any) -> str:
        if not isinstance(tag, str) or not 1 <= len(tag) <= 60 or "/" in tag or "," in tag:
            raise nova_error(400, f"Invalid input for field/attribute tag. Value: {tag}.")
        return tag

    async def list_tags(self, request: Request, caller: Caller) -> Response:
        server = self._tags_server(request, caller)
        return json_response({"tags": list(server.get("tags") or [])})

    async def replace_tags(self, request: Request, caller: Caller) -> Response:
        server = self._tags_server(request, caller)
        body = await _read_body(request)
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list):
            raise nova_error(
                400, "Invalid input for field/attribute tags. 'tags' is a required property"
            )
        clean = list(dict.fromkeys(self._valid_tag(t) for t in tags))
        if len(clean) > 50:
            raise nova_error(400, "The number of tags exceeded the per-server limit 50")
        self._check_tags_writable(caller, server, "update tags")
        with self._lock():
            server["tags"] = clean
            self._touch(server)
        return json_response({"tags": clean})

    async def delete_tags(self, request: Request, caller: Caller) -> Response:
        server = self._tags_server(request, caller)
        self._check_tags_writable(caller, server, "delete tags")
        with self._lock():
            server["tags"] = []
            self._touch(server)
        return empty_response(204)

    async def check_tag(self, request: Request, caller: Caller) -> Response:
        server = self._tags_server(request, caller)
        tag = request.path_params["tag"]
        if tag not in (server.get("tags") or []):
            raise nova_error(404, f"Instance {server['id']} has no tag '{tag}'")
        return empty_response(204)

    async def add_tag(self, request: Request, caller: Caller) -> Response:
        server = self._tags_server(request, caller)
        tag = self._valid_tag(request.path_params["tag"])
        self._check_tags_writable(caller, server, "update tag")
        tags = list(server.get("tags") or [])
        if tag in tags:
            return empty_response(204)
        if len(tags) >= 50:
            raise nova_error(400, "The number of tags exceeded the per-server limit 50")
        with self._lock():
            server["tags"] = [*tags, tag]
            self._touch(server)
        view = self._view(request, caller)
        location = f"{view.root}/servers/{server['id']}/tags/{tag}"
        return Response(status_code=201, headers={"Location": location})

    async def delete_tag(self, request: Request, caller: Caller) -> Response:
        server = self._tags_server(request, caller)
        tag = request.path_params["tag"]
        self._check_tags_writable(caller, server, "delete tag")
        if tag not in (server.get("tags") or []):
            raise nova_error(404, f"Instance {server['id']} has no tag '{tag}'")
        with self._lock():
            server["tags"] = [t for t in server["tags"] if t != tag]
            self._touch(server)
        return empty_response(204)

    # -- flavors ----------------------------------------------------------------------

    def render_flavor(self, flavor: Obj, view: _View, *, detail: bool) -> Obj:
        """A stored flavor shaped for the caller's microversion."""
        version = view.caller.version
        flavor_id = str(flavor["id"])
        links = self._links(view, "flavors", flavor_id)
        if not detail:
            out: Obj = {"id": flavor_id, "name": flavor.get("name"), "links": links}
            if version >= (2, 55):
                out["description"] = flavor.get("description")
            return out
        out = dict(flavor)
        out["id"] = flavor_id
        out["links"] = links
        if version < (2, 55):
            out.pop("description", None)
        else:
            out.setdefault("description", None)
        if version < (2, 61):
            out.pop("extra_specs", None)
        else:
            out["extra_specs"] = dict(flavor.get("extra_specs") or {})
        if version < (2, 75) and not out.get("swap"):
            # Before 2.75 Nova showed "no swap" as an empty string.
            out["swap"] = ""
        return out

    def _visible_flavors(self, request: Request, caller: Caller) -> list[Obj]:
        raw = request.query_params.get("is_public")
        if not caller.is_admin or raw is None:
            is_public: bool | None = True
        elif raw.strip().lower() == "none":
            is_public = None
        else:
            try:
                is_public = _bool_param(raw, "is_public")
            except ApiError as exc:
                raise nova_error(400, f"Invalid is_public filter [{raw}]") from exc
        flavors = [
            f
            for f in self.region.flavors.values()
            if (is_public is None or bool(f.get("os-flavor-access:is_public", True)) == is_public)
            and (caller.is_admin or not f.get("OS-FLV-DISABLED:disabled"))
        ]
        for param, key in (("minRam", "ram"), ("minDisk", "disk")):
            raw_min = request.query_params.get(param)
            if raw_min is not None:
                try:
                    minimum = int(raw_min)
                except ValueError as exc:
                    raise nova_error(400, f"Invalid {param} filter [{raw_min}]") from exc
                flavors = [f for f in flavors if _as_int(f.get(key)) >= minimum]
        sort_key = request.query_params.get("sort_key", "flavorid")
        sort_dir = request.query_params.get("sort_dir", "asc").lower()
        field_name = _FLAVOR_SORT_KEYS.get(sort_key)
        if field_name is None or sort_dir not in ("asc", "desc"):
            raise nova_error(
                400, f"Invalid input for query parameters sort_key. Value: {sort_key}."
            )
        order = {fid: i for i, fid in enumerate(self.region.flavors)}
        return sorted(
            flavors,
            key=lambda f: (_sortable(f.get(field_name)), order.get(f["id"], 0)),
            reverse=sort_dir == "desc",
        )

    async def list_flavors(self, request: Request, caller: Caller) -> Response:
        return self._list_flavors(request, caller, detail=False)

    async def list_flavors_detail(self, request: Request, caller: Caller) -> Response:
        return self._list_flavors(request, caller, detail=True)

    def _list_flavors(self, request: Request, caller: Caller, *, detail: bool) -> Response:
        limit, marker = _limit_marker(request)
        flavors = self._visible_flavors(request, caller)
        start = 0
        if marker:
            index = next((i for i, f in enumerate(flavors) if str(f["id"]) == marker), None)
            if index is None:
                raise nova_error(400, f"marker [{marker}] not found")
            start = index + 1
        page = flavors[start : start + limit]
        view = self._view(request, caller)
        body: Obj = {"flavors": [self.render_flavor(f, view, detail=detail) for f in page]}
        links = _collection_links(
            request, view.root, "flavors/detail" if detail else "flavors", page, "id"
        )
        if links:
            body["flavors_links"] = links
        return json_response(body)

    def _flavor(self, flavor_id: str) -> Obj:
        flavor = self.region.flavors.get(flavor_id)
        if flavor is None:
            raise nova_error(404, f"Flavor {flavor_id} could not be found.")
        return flavor

    async def show_flavor(self, request: Request, caller: Caller) -> Response:
        flavor = self._flavor(request.path_params["flavor_id"])
        view = self._view(request, caller)
        return json_response({"flavor": self.render_flavor(flavor, view, detail=True)})

    async def list_extra_specs(self, request: Request, caller: Caller) -> Response:
        flavor = self._flavor(request.path_params["flavor_id"])
        return json_response({"extra_specs": dict(flavor.get("extra_specs") or {})})

    async def show_extra_spec(self, request: Request, caller: Caller) -> Response:
        flavor_id = request.path_params["flavor_id"]
        key = request.path_params["key"]
        specs = self._flavor(flavor_id).get("extra_specs") or {}
        if key not in specs:
            raise nova_error(404, f"Flavor {flavor_id} has no extra specs with key {key}.")
        return json_response({key: specs[key]})

    # -- hypervisors ------------------------------------------------------------------

    def _hypervisor_stats(self, hypervisor: Obj, servers_by_node: dict[str, list[Obj]]) -> Obj:
        """The pre-2.88 statistics of a hypervisor: totals from its Placement
        inventory, use summed from the servers on it (as Nova's resource tracker)."""
        provider = self._provider_of(hypervisor)
        inventory = self.region.inventories.get(provider or "", {})
        servers = servers_by_node.get(str(hypervisor.get("hypervisor_hostname")), [])
        vcpus = _as_int(inventory.get("VCPU", {}).get("total")) + _as_int(
            inventory.get("PCPU", {}).get("total")
        )
        memory_mb = _as_int(inventory.get("MEMORY_MB", {}).get("total"))
        local_gb = _as_int(inventory.get("DISK_GB", {}).get("total"))
        vcpus_used = sum(_as_int((s.get("flavor") or {}).get("vcpus")) for s in servers)
        memory_used = _as_int(inventory.get("MEMORY_MB", {}).get("reserved")) + sum(
            _as_int((s.get("flavor") or {}).get("ram")) for s in servers
        )
        disk_used = _as_int(inventory.get("DISK_GB", {}).get("reserved")) + sum(
            server_resources(s).get("DISK_GB", 0) for s in servers
        )
        return {
            "vcpus": hypervisor.get("vcpus", vcpus),
            "memory_mb": hypervisor.get("memory_mb", memory_mb),
            "local_gb": hypervisor.get("local_gb", local_gb),
            "vcpus_used": vcpus_used,
            "memory_mb_used": memory_used,
            "local_gb_used": disk_used,
            "free_ram_mb": memory_mb - memory_used,
            "free_disk_gb": local_gb - disk_used,
            "current_workload": sum(1 for s in servers if s.get(TASK_STATE)),
            "running_vms": len(servers),
            "disk_available_least": local_gb - disk_used,
        }

    def _servers_by_node(self) -> dict[str, list[Obj]]:
        index: dict[str, list[Obj]] = {}
        for server in self.region.servers.values():
            node = server.get(NODE)
            if node:
                index.setdefault(node, []).append(server)
        return index

    def render_hypervisor(
        self, hypervisor: Obj, view: _View, *, detail: bool,
        servers_by_node: dict[str, list[Obj]], with_servers: bool = False,
    ) -> Obj:  # fmt: skip
        """A stored hypervisor shaped for the caller's microversion; state and status
        follow its compute service."""
        version = view.caller.version
        host = str((hypervisor.get("service") or {}).get("host") or "")
        service = view.services_by_host.get(host)
        uuid_ids = version >= (2, 53)
        hid = hypervisor["id"] if uuid_ids else view.hypervisor_ids.get(hypervisor["id"])
        out: Obj = {
            "id": hid,
            "hypervisor_hostname": hypervisor.get("hypervisor_hostname"),
            "state": _service_state(service) if service else hypervisor.get("state"),
            "status": service.get("status") if service else hypervisor.get("status"),
        }
        if detail:
            out["hypervisor_type"] = hypervisor.get("hypervisor_type")
            out["hypervisor_version"] = hypervisor.get("hypervisor_version")
            out["host_ip"] = hypervisor.get("host_ip")
            service_id: Any = (service or {}).get("id") or (hypervisor.get("service") or {}).get(
                "id"
            )
            if not uuid_ids and service is not None:
                service_id = view.service_ids.get(service["id"])
            out["service"] = {
                "host": host,
                "id": service_id,
                "disabled_reason": (service or hypervisor.get("service") or {}).get(
                    "disabled_reason"
                ),
            }
            if version >= (2, 88):
                out["uptime"] = hypervisor.get("uptime")
            else:
                out.update(self._hypervisor_stats(hypervisor, servers_by_node))
                cpu_info = hypervisor.get("cpu_info") or _DEFAULT_CPU_INFO
                out["cpu_info"] = cpu_info if version >= (2, 28) else json.dumps(cpu_info)
        if with_servers:
            servers = servers_by_node.get(str(hypervisor.get("hypervisor_hostname")), [])
            if servers or version >= (2, 75):
                out["servers"] = [
                    {
                        "name": s.get("OS-EXT-SRV-ATTR:instance_name") or s.get("name"),
                        "uuid": s["id"],
                    }
                    for s in servers
                ]
        return out

    async def list_hypervisors(self, request: Request, caller: Caller) -> Response:
        return self._list_hypervisors(request, caller, detail=False)

    async def list_hypervisors_detail(self, request: Request, caller: Caller) -> Response:
        return self._list_hypervisors(request, caller, detail=True)

    def _list_hypervisors(self, request: Request, caller: Caller, *, detail: bool) -> Response:
        rule = "list-detail" if detail else "list"
        self._require_admin(caller, f"os_compute_api:os-hypervisors:{rule}")
        version = caller.version
        params = request.query_params
        hypervisors = list(self.region.hypervisors.values())
        paged = version >= (2, 33)
        pattern = params.get("hypervisor_hostname_pattern") if version >= (2, 53) else None
        with_servers = (
            _bool_param(params["with_servers"], "with_servers")
            if version >= (2, 53) and "with_servers" in params
            else False
        )
        links_allowed = paged
        if pattern is not None:
            if "limit" in params or params.get("marker"):
                raise nova_error(
                    400,
                    "Paging over hypervisors with the hypervisor_hostname_pattern query "
                    "parameter is not supported.",
                )
            hypervisors = [h for h in hypervisors if pattern in str(h.get("hypervisor_hostname"))]
            if not hypervisors:
                raise nova_error(404, f"No hypervisor matching '{pattern}' could be found.")
            links_allowed = False
        elif paged:
            limit, marker = _limit_marker(request)
            start = 0
            if marker:
                ids = (
                    list(self.region.hypervisors)
                    if version >= (2, 53)
                    else [str(i) for i in self._view(request, caller).hypervisor_ids.values()]
                )
                if marker not in ids:
                    raise nova_error(400, f"marker [{marker}] not found")
                start = ids.index(marker) + 1
            hypervisors = hypervisors[start : start + limit]
        view = self._view(request, caller)
        by_node = self._servers_by_node() if (detail and version < (2, 88)) or with_servers else {}
        items = [
            self.render_hypervisor(
                h, view, detail=detail, servers_by_node=by_node, with_servers=with_servers
            )
            for h in hypervisors
        ]
        body: Obj = {"hypervisors": items}
        if links_allowed:
            collection = "os-hypervisors/detail" if detail else "os-hypervisors"
            links = _collection_links(request, view.root, collection, items, "id")
            if links:
                body["hypervisors_links"] = links
        return json_response(body)

    def _hypervisor(self, caller: Caller, raw_id: str) -> Obj:
        if caller.at_least(53):
            try:
                uuid.UUID(raw_id)
            except ValueError as exc:
                raise nova_error(400, f"Invalid uuid {raw_id}") from exc
            hypervisor = self.region.hypervisors.get(raw_id)
        else:
            ids = {hid: index + 1 for index, hid in enumerate(self.region.hypervisors)}
            by_int = {str(v): k for k, v in ids.items()}
            hypervisor = self.region.hypervisors.get(by_int.get(raw_id, ""))
        if hypervisor is None:
            raise nova_error(404, f"Hypervisor with ID '{raw_id}' could not be found.")
        return hypervisor

    async def show_hypervisor(self, request: Request, caller: Caller) -> Response:
        self._require_admin(caller, "os_compute_api:os-hypervisors:show")
        hypervisor = self._hypervisor(caller, request.path_params["hypervisor_id"])
        params = request.query_params
        with_servers = (
            _bool_param(params["with_servers"], "with_servers")
            if caller.at_least(53) and "with_servers" in params
            else False
        )
        view = self._view(request, caller)
        by_node = self._servers_by_node()
        body = self.render_hypervisor(
            hypervisor, view, detail=True, servers_by_node=by_node, with_servers=with_servers
        )
        return json_response({"hypervisor": body})

    async def hypervisor_uptime(self, request: Request, caller: Caller) -> Response:
        if caller.at_least(88):
            raise _not_found()
        self._require_admin(caller, "os_compute_api:os-hypervisors:uptime")
        hypervisor = self._hypervisor(caller, request.path_params["hypervisor_id"])
        host = (hypervisor.get("service") or {}).get("host")
        if not self._service_up(self._compute_service(host)):
            raise nova_error(400, f"Compute service of {host} is unavailable at this time.")
        if hypervisor.get("uptime") is None:
            raise nova_error(501, "Action not allowed.")
        view = self._view(request, caller)
        body = self.render_hypervisor(hypervisor, view, detail=False, servers_by_node={})
        body["uptime"] = hypervisor["uptime"]
        return json_response({"hypervisor": body})

    async def hypervisor_statistics(self, request: Request, caller: Caller) -> Response:
        if caller.at_least(88):
            raise _not_found()
        self._require_admin(caller, "os_compute_api:os-hypervisors:statistics")
        view = self._view(request, caller)
        by_node = self._servers_by_node()
        totals: Obj = {"count": 0, **{k: 0 for k in _HYPERVISOR_STATS}}
        for hypervisor in self.region.hypervisors.values():
            service = view.services_by_host.get(str((hypervisor.get("service") or {}).get("host")))
            if service is not None and service.get("status") == "disabled":
                continue
            totals["count"] += 1
            for key, value in self._hypervisor_stats(hypervisor, by_node).items():
                totals[key] += value
        return json_response({"hypervisor_statistics": totals})

    async def search_hypervisors(self, request: Request, caller: Caller) -> Response:
        return self._legacy_hypervisor_search(request, caller, with_servers=False)

    async def hypervisor_servers(self, request: Request, caller: Caller) -> Response:
        return self._legacy_hypervisor_search(request, caller, with_servers=True)

    def _legacy_hypervisor_search(
        self, request: Request, caller: Caller, *, with_servers: bool
    ) -> Response:
        if caller.at_least(53):
            raise _not_found()
        rule = "servers" if with_servers else "search"
        self._require_admin(caller, f"os_compute_api:os-hypervisors:{rule}")
        pattern = request.path_params["pattern"]
        matches = [
            h
            for h in self.region.hypervisors.values()
            if pattern in str(h.get("hypervisor_hostname"))
        ]
        if not matches:
            raise nova_error(404, f"No hypervisor matching '{pattern}' could be found.")
        view = self._view(request, caller)
        by_node = self._servers_by_node() if with_servers else {}
        items = [
            self.render_hypervisor(
                h, view, detail=False, servers_by_node=by_node, with_servers=with_servers
            )
            for h in matches
        ]
        return json_response({"hypervisors": items})

    # -- compute services -------------------------------------------------------------

    def render_service(self, service: Obj, view: _View) -> Obj:
        """A stored compute service shaped for the caller's microversion. Its state is
        Nova's view of its heartbeats now (simulator/hosts.py `service_view`)."""
        caller = view.caller
        state, updated_at = service_view(service)
        out: Obj = {
            "id": service["id"] if caller.at_least(53) else view.service_ids.get(service["id"]),
            "binary": service.get("binary"),
            "host": service.get("host"),
            "zone": service.get("zone"),
            "status": service.get("status"),
            "state": state,
            "updated_at": updated_at,
            "disabled_reason": service.get("disabled_reason"),
        }
        if caller.at_least(11):
            out["forced_down"] = bool(service.get("forced_down"))
        return out

    async def list_services(self, request: Request, caller: Caller) -> Response:
        self._require_admin(caller, "os_compute_api:os-services:list")
        host = request.query_params.get("host")
        binary = request.query_params.get("binary")
        view = self._view(request, caller)
        services = [
            self.render_service(s, view)
            for s in self.region.compute_services.values()
            if (not host or s.get("host") == host) and (not binary or s.get("binary") == binary)
        ]
        return json_response({"services": services})

    async def update_service(self, request: Request, caller: Caller) -> Response:
        self._require_admin(caller, "os_compute_api:os-services:update")
        if not caller.at_least(53):
            return await self._legacy_update_service(request, caller)
        service_id = request.path_params["service_id"]
        try:
            uuid.UUID(service_id)
        except ValueError as exc:
            raise nova_error(400, f"Invalid uuid {service_id}") from exc
        service = self.region.compute_services.get(service_id)
        if service is None:
            raise nova_error(404, f"Service {service_id} could not be found.")
        body = await _read_body(request)
        if not isinstance(body, dict) or set(body) - {"status", "disabled_reason", "forced_down"}:
            raise nova_error(400, "Invalid input for field/attribute service update.")
        if service.get("binary") != "nova-compute":
            raise nova_error(
                400,
                f"Updating a {service.get('binary')} service is not supported. Only "
                "nova-compute services can be updated.",
            )
        status = body.get("status")
        if status is not None and status not in ("enabled", "disabled"):
            raise nova_error(400, f"Invalid input for field/attribute status. Value: {status}.")
        reason = body.get("disabled_reason")
        if reason is not None and (not isinstance(reason, str) or not 1 <= len(reason) <= 255):
            raise nova_error(400, "Invalid input for field/attribute disabled_reason.")
        forced: bool | None = None
        if "forced_down" in body:
            raw = body["forced_down"]
            forced = raw if isinstance(raw, bool) else _bool_param(str(raw), "forced_down")
        if status is None and forced is None:
            raise nova_error(
                400,
                "No updates were requested. Fields 'status' or 'forced_down' should be specified.",
            )
        if status == "enabled" and reason:
            raise nova_error(400, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
        with self._lock():
            if status == "enabled":
                self._set_service_status(service, "enabled", None)
            elif status == "disabled":
                self._set_service_status(service, "disabled", reason)
            if forced is not None:
                self._set_forced_down(service, forced)
        return json_response({"service": self.render_service(service, self._view(request, caller))})

    async def _legacy_update_service(self, request: Request, caller: Caller) -> Response:
        """PUT /os-services/{enable,disable,disable-log-reason,force-down} (before 2.53):
        the body names the service by host and binary."""
        action = request.path_params["service_id"]
        actions = {"enable", "disable", "disable-log-reason"}
        if caller.at_least(11):
            actions.add("force-down")
        if action not in actions:
            raise nova_error(404, "Unknown action")
        body = await _read_body(request)
        if not isinstance(body, dict) or "host" not in body or "binary" not in body:
            raise nova_error(400, "Invalid input for field/attribute service.")
        host, binary = body["host"], body["binary"]
        if binary != "nova-compute":
            raise nova_error(
                400,
                f"Updating a {binary} service is not supported. Only nova-compute services "
                "can be updated.",
            )
        service = self._compute_service(host)
        if service is None:
            raise nova_error(404, f"Could not find binary {binary} on host {host}.")
        result: Obj = {"host": host, "binary": binary}
        with self._lock():
            if action == "enable":
                self._set_service_status(service, "enabled", None)
                result["status"] = "enabled"
            elif action == "force-down":
                if "forced_down" not in body:
                    raise nova_error(400, "Missing forced_down field")
                raw = body["forced_down"]
                forced = raw if isinstance(raw, bool) else _bool_param(str(raw), "forced_down")
                self._set_forced_down(service, forced)
                result = {"host": host, "binary": binary, "forced_down": forced}
            else:
                reason = body.get("disabled_reason")
                if action == "disable-log-reason" and not reason:
                    raise nova_error(400, "Missing disabled reason field")
                self._set_service_status(service, "disabled", reason)
                result["status"] = "disabled"
                if reason:
                    result["disabled_reason"] = reason
        return json_response({"service": result})

    def _set_service_status(self, service: Obj, status: str, reason: str | None) -> None:
        """Enable or disable a compute service; its hypervisors and their resource
        providers (the COMPUTE_STATUS_DISABLED trait, as Nova sets it) follow."""
        hypervisors = self._hypervisors_of_host(str(service.get("host")))
        providers = [p for p in (self._provider_of(h) for h in hypervisors) if p]
        for provider in providers:
            # Record the traits as they were before the service changes.
            if provider not in self.region.provider_traits:
                self.region.provider_traits[provider] = provider_traits(self.region, provider)
        service["status"] = status
        service["disabled_reason"] = reason
        service["updated_at"] = _db_time()
        for hypervisor in hypervisors:
            hypervisor["status"] = status
            hypervisor.setdefault("service", {})["disabled_reason"] = reason
        self._refresh_host_status(service.get("host"))

        def sync_traits() -> None:
            for provider in providers:
                traits = self.region.provider_traits[provider]
                had = "COMPUTE_STATUS_DISABLED" in traits
                if status == "disabled" and not had:
                    traits.append("COMPUTE_STATUS_DISABLED")
                elif status == "enabled" and had:
                    traits.remove("COMPUTE_STATUS_DISABLED")
                else:
                    continue
                rp = self.region.resource_providers[provider]
                rp["generation"] = int(rp.get("generation") or 0) + 1

        lag = self._trait_sync_delay()
        if lag <= 0:
            sync_traits()
            return

        def later() -> None:
            with self._lock():
                sync_traits()

        # the compute's own trait sync failed (a provider generation conflict, seen on
        # the real testbed): Placement catches up at its next periodic resync
        timer = threading.Timer(lag, later)
        timer.daemon = True
        timer.start()

    def _trait_sync_delay(self) -> float:
        """Seconds before Placement's COMPUTE_STATUS_DISABLED follows a service enabled
        or disabled (``Simulator.trait_sync_delay`` when set; default: at once, as when
        nova-compute's sync call succeeds)."""
        try:
            return max(0.0, float(getattr(self.sim, "trait_sync_delay", 0.0) or 0.0))
        except (TypeError, ValueError):
            return 0.0

    def _set_forced_down(self, service: Obj, forced: bool) -> None:
        """Force a compute service down (after fencing its host) or release it: the
        state goes down at once; released, it reports what it did before."""
        service_id = service["id"]
        if forced and not service.get("forced_down"):
            self._state_before_forced_down[service_id] = str(service.get("state") or "up")
        service["forced_down"] = forced
        service["state"] = (
            "down" if forced else self._state_before_forced_down.pop(service_id, "up")
        )
        # Saving the service record bumps its updated_at, as in Nova's database.
        service["updated_at"] = _db_time()
        for hypervisor in self._hypervisors_of_host(str(service.get("host"))):
            hypervisor["state"] = service["state"]
        self._refresh_host_status(service.get("host"))

    # -- server groups ----------------------------------------------------------------

    def render_server_group(self, group: Obj, caller: Caller) -> Obj:
        """A stored server group shaped for the caller's microversion."""
        out: Obj = {
            "id": group["id"],
            "name": group.get("name"),
            "members": [m for m in group.get("members") or [] if m in self.region.servers],
        }
        if caller.at_least(64):
            out["policy"] = group.get("policy")
            out["rules"] = dict(group.get("rules") or {})
        else:
            out["policies"] = [group.get("policy")]
            out["metadata"] = {}
        if caller.at_least(13):
            out["project_id"] = group.get("project_id")
            out["user_id"] = group.get("user_id")
        return out

    async def list_server_groups(self, request: Request, caller: Caller) -> Response:
        params = request.query_params
        # Nova looks only at the parameter's presence, not at its value.
        all_projects = "all_projects" in params
        if all_projects and not caller.is_admin:
            raise _policy_error("os_compute_api:os-server-groups:index:all_projects")
        groups = [
            g
            for g in self.region.server_groups.values()
            if all_projects or g.get("project_id") == caller.project_id
        ]
        offset, limit = _offset_limit(request)
        page = groups[offset : offset + limit]
        return json_response({"server_groups": [self.render_server_group(g, caller) for g in page]})

    async def show_server_group(self, request: Request, caller: Caller) -> Response:
        group_id = request.path_params["group_id"]
        group = self.region.server_groups.get(group_id)
        if group is None or (not caller.is_admin and group.get("project_id") != caller.project_id):
            raise nova_error(404, f"Instance group {group_id} could not be found.")
        return json_response({"server_group": self.render_server_group(group, caller)})

    # -- availability zones, limits, quotas, migrations ---------------------------------

    async def list_availability_zones(self, request: Request, caller: Caller) -> Response:
        zones: dict[str, bool] = {}
        for service in self.region.compute_services.values():
            if service.get("binary") != "nova-compute":
                continue
            zone = str(service.get("zone") or "nova")
            zones[zone] = zones.get(zone, False) or service.get("status") == "enabled"
        info = [
            {"zoneName": zone, "zoneState": {"available": available}, "hosts": None}
            for zone, available in sorted(zones.items(), key=lambda kv: (not kv[1], kv[0]))
        ]
        return json_response({"availabilityZoneInfo": info})

    async def list_availability_zones_detail(self, request: Request, caller: Caller) -> Response:
        self._require_admin(caller, "os_compute_api:os-availability-zone:detail")
        zones: dict[str, Obj] = {}
        available: dict[str, bool] = {}
        for service in self.region.compute_services.values():
            compute = service.get("binary") == "nova-compute"
            zone = str(service.get("zone") or "nova") if compute else "internal"
            hosts = zones.setdefault(zone, {})
            hosts.setdefault(str(service.get("host")), {})[str(service.get("binary"))] = {
                "available": _service_state(service) == "up",
                "active": service.get("status") == "enabled",
                "updated_at": service.get("updated_at"),
            }
            enabled = service.get("status") == "enabled"
            available[zone] = available.get(zone, False) or enabled or not compute
        info = [
            {"zoneName": zone, "zoneState": {"available": available[zone]}, "hosts": hosts}
            for zone, hosts in sorted(zones.items(), key=lambda kv: (kv[0] != "internal", kv[0]))
        ]
        return json_response({"availabilityZoneInfo": info})

    def _project_usage(self, project_id: str) -> dict[str, int]:
        usage = {"instances": 0, "cores": 0, "ram": 0}
        for server in self.region.servers.values():
            if server.get("tenant_id") == project_id:
                flavor = server.get("flavor") or {}
                usage["instances"] += 1
                usage["cores"] += _as_int(flavor.get("vcpus"))
                usage["ram"] += _as_int(flavor.get("ram"))
        usage["server_groups"] = sum(
            1 for g in self.region.server_groups.values() if g.get("project_id") == project_id
        )
        return usage

    async def show_limits(self, request: Request, caller: Caller) -> Response:
        project_id = caller.project_id
        requested = request.query_params.get("tenant_id")
        if requested and caller.is_admin:
            project_id = requested
        usage = self._project_usage(project_id)
        absolute: Obj = {
            "maxServerMeta": QUOTA_DEFAULTS["metadata_items"],
            "maxTotalInstances": QUOTA_DEFAULTS["instances"],
            "maxTotalCores": QUOTA_DEFAULTS["cores"],
            "maxTotalRAMSize": QUOTA_DEFAULTS["ram"],
            "maxTotalKeypairs": QUOTA_DEFAULTS["key_pairs"],
            "maxServerGroups": QUOTA_DEFAULTS["server_groups"],
            "maxServerGroupMembers": QUOTA_DEFAULTS["server_group_members"],
            "totalInstancesUsed": usage["instances"],
            "totalCoresUsed": usage["cores"],
            "totalRAMUsed": usage["ram"],
            "totalServerGroupsUsed": usage["server_groups"],
        }
        if not caller.at_least(57):
            absolute.update(maxPersonality=5, maxPersonalitySize=10240)
        if not caller.at_least(39):
            absolute["maxImageMeta"] = 128
        if not caller.at_least(36):
            absolute.update(
                maxSecurityGroups=10, maxSecurityGroupRules=20, maxTotalFloatingIps=10,
                totalSecurityGroupsUsed=0, totalFloatingIpsUsed=0,
            )  # fmt: skip
        return json_response({"limits": {"rate": [], "absolute": absolute}})

    def _quota_limits(self, caller: Caller) -> dict[str, int]:
        limits = dict(QUOTA_DEFAULTS)
        if not caller.at_least(57):
            limits.update(injected_files=5, injected_file_content_bytes=10240,
                          injected_file_path_bytes=255)  # fmt: skip
        if not caller.at_least(36):
            limits.update(
                fixed_ips=-1, floating_ips=10, security_groups=10, security_group_rules=20
            )
        return limits

    def _quota_project(self, request: Request, caller: Caller) -> str:
        project_id = request.path_params["project_id"]
        if not caller.is_admin and project_id != caller.project_id:
            raise _policy_error("os_compute_api:os-quota-sets:show")
        return project_id

    def _project_limits(self, caller: Caller, project_id: str) -> dict[str, int]:
        """The defaults with the project's overrides (os-quota-sets PUT, or the generator)."""
        overrides = self.region.quotas.get("compute", {}).get(project_id, {})
        return {**self._quota_limits(caller), **overrides}

    async def show_quota_set(self, request: Request, caller: Caller) -> Response:
        project_id = self._quota_project(request, caller)
        limits = self._project_limits(caller, project_id)
        return json_response({"quota_set": {"id": project_id, **limits}})

    async def show_quota_defaults(self, request: Request, caller: Caller) -> Response:
        project_id = request.path_params["project_id"]
        return json_response({"quota_set": {"id": project_id, **self._quota_limits(caller)}})

    async def show_quota_set_detail(self, request: Request, caller: Caller) -> Response:
        project_id = self._quota_project(request, caller)
        usage = self._project_usage(project_id)
        detail: Obj = {"id": project_id}
        for key, limit in self._project_limits(caller, project_id).items():
            detail[key] = {"limit": limit, "in_use": usage.get(key, 0), "reserved": 0}
        return json_response({"quota_set": detail})

    def render_migration(self, migration: Obj, caller: Caller) -> Obj:
        out = {
            k: migration.get(k)
            for k in (
                "id", "created_at", "updated_at", "dest_compute", "dest_host", "dest_node",
                "instance_uuid", "new_instance_type_id", "old_instance_type_id",
                "source_compute", "source_node", "status",
            )
        }  # fmt: skip
        if caller.at_least(23):
            out["migration_type"] = migration.get("migration_type")
        if caller.at_least(59):
            out["uuid"] = migration.get("uuid")
        if caller.at_least(80):
            out["project_id"] = migration.get("project_id")
            out["user_id"] = migration.get("user_id")
        return out

    async def list_migrations(self, request: Request, caller: Caller) -> Response:
        self._require_admin(caller, "os_compute_api:os-migrations:index")
        params = request.query_params
        migrations = list(self.region.migrations.values())
        for name in ("status", "instance_uuid", "migration_type", "source_compute"):
            if params.get(name):
                migrations = [m for m in migrations if str(m.get(name)) == params[name]]
        if params.get("host"):
            host = params["host"]
            migrations = [
                m for m in migrations if host in (m.get("source_compute"), m.get("dest_compute"))
            ]
        if caller.at_least(80):
            for name in ("project_id", "user_id"):
                if params.get(name):
                    migrations = [m for m in migrations if m.get(name) == params[name]]
        migrations.sort(key=lambda m: (m.get("created_at") or "", m.get("id") or 0), reverse=True)
        body: Obj = {}
        if caller.at_least(59):
            limit, marker = _limit_marker(request)
            start = 0
            if marker:
                index = next((i for i, m in enumerate(migrations) if m.get("uuid") == marker), None)
                if index is None:
                    raise nova_error(400, f"Marker {marker} could not be found.")
                start = index + 1
            migrations = migrations[start : start + limit]
            view = self._view(request, caller)
            links = _collection_links(request, view.root, "os-migrations", migrations, "uuid")
            if links:
                body["migrations_links"] = links
        body["migrations"] = [self.render_migration(m, caller) for m in migrations]
        return json_response(body)


def _host_status_of(service: Obj | None) -> str:
    """Nova's host_status of a server from its host's compute service."""
    if service is None:
        return ""
    if service.get("forced_down"):
        return "DOWN"
    if service.get("status") == "disabled":
        return "MAINTENANCE"
    return "UP" if service.get("state") == "up" else "UNKNOWN"


def _service_state(service: Obj) -> str:
    """up / down as Nova's servicegroup API says it now (the heartbeat's age, forced
    down): what a hypervisor's state and a zone's availability follow."""
    return service_view(service)[0]


def _server_ips(server: Obj) -> list[str]:
    return [
        str(address.get("addr"))
        for addresses in (server.get("addresses") or {}).values()
        for address in addresses
    ]


def _sortable(value: Any) -> tuple[int, Any]:
    # flavorid is a string column: "10" sorts before "2", as in Nova's database.
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


async def _read_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise nova_error(400, "Malformed request body") from exc


def build(sim: Simulator, region: RegionState) -> Router:
    """The Nova router of one region, mounted at ``/{region}/compute``."""
    nova = Nova(sim, region)
    return Router(routes=nova.routes(), default=_NotFoundApp())
