"""A deterministic, seeded fleet generator: the simulated cloud's starting state.

`generate(config)` returns a `CloudState` whose every collection holds objects shaped
like the real APIs' detail JSON (see `stackfleet.simulator.state`), consistent across
services:

- a server's ports exist (``device_id`` = server id, ``binding:host_id`` = its host) and
  its ``addresses`` list their fixed IPs and any floating IP;
- floating IPs point at real ports; attached volumes appear on both sides;
- Placement usages are the sums of the flavors of the servers on each provider;
- Cinder pools account for the volumes on them.

It also makes the mess real clouds have, with the answers kept in
``CloudState.ground_truth[region][scenario]`` (sorted ids) so tests and demos can check
what StackFleet finds: see `SCENARIOS`.

Same config (seed and ``now`` included) gives the same state, object for object and in
the same order. Sizes are per region.
"""

from __future__ import annotations

import gc
import hashlib
import ipaddress
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stackfleet.simulator.state import CloudState, RegionState

Obj = dict[str, Any]

# Ground-truth scenario names -> what they mean. Every list is sorted ids of one region.
SCENARIOS: dict[str, str] = {
    "idle_servers": "ACTIVE servers whose workload is idle (near-zero CPU).",
    "long_shutoff_servers": "SHUTOFF servers, stopped more than 90 days before `now`.",
    "recent_shutoff_servers": "SHUTOFF servers, stopped less than 30 days before `now`.",
    "error_servers": "Servers in ERROR.",
    "servers_on_down_hosts": "Servers whose compute host's nova-compute is down.",
    "unattached_floating_ips": "Floating IPs not associated with any port.",
    "long_available_volumes": "Volumes `available` (unattached) for more than 30 days.",
    "recent_available_volumes": "Volumes `available` for less than 7 days.",
    "error_volumes": "Volumes in `error`.",
    "down_unbound_ports": "Ports with status DOWN, no device and no binding host.",
    "down_compute_services": "nova-compute services reported down.",
    "down_hypervisors": "Hypervisors whose state is down.",
    "disabled_compute_services": "nova-compute services disabled by an operator.",
    "dead_network_agents": "Neutron agents not alive.",
    "routers_on_dead_l3_agents": "Routers an L3 agent that is not alive hosts (the L3 agent "
    "of the last network node died; with two network nodes or more).",
    "single_l3_agent_routers": "Routers that are not HA and are hosted by fewer than two "
    "alive L3 agents (every router: each has its ports on one network node).",
    "single_dhcp_agent_networks": "Networks with a DHCP-enabled subnet served by fewer than "
    "two alive DHCP agents (all tenant networks but one, which has a second DHCP agent "
    "when there are two network nodes or more).",
    "open_ssh_security_groups": "Security groups allowing tcp/22 from 0.0.0.0/0.",
    "open_ssh_security_group_rules": "The ingress rules opening tcp/22 to 0.0.0.0/0.",
    "nearly_full_hypervisors": "Hypervisors at 90% or more of VCPU or MEMORY_MB capacity.",
    "pcpu_hypervisors": "Hypervisors with dedicated-CPU (PCPU) inventory.",
    "maintenance_baremetal_nodes": "Ironic nodes in maintenance.",
    "failed_baremetal_nodes": "Ironic nodes in deploy failed / clean failed.",
    "unused_images": "Active images no server uses.",
    "old_volume_snapshots": "Volume snapshots taken more than 180 days before `now`.",
    "nearly_exhausted_external_networks": "External networks with 80% or more of their "
    "allocation pools' addresses in use.",
    "projects_near_cores_quota": "Projects using 90% or more of their compute cores quota.",
    "admin_outside_allowed_list": (
        "Role assignments giving `admin` to a user other than the cloud admin and the "
        "service users (`mallory` on the first tenant project); ids as StackFleet's "
        "role_assignment kind names them (project:P:user:U:role:R). Keystone is global: "
        "every region lists the same."
    ),
}

DEFAULT_NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


class FleetConfig(BaseModel):
    """What to generate. Sizes are per region; `now` anchors every timestamp (and so
    every age), making the state reproducible."""

    model_config = ConfigDict(frozen=True)

    seed: int = 42
    regions: tuple[str, ...] = ("RegionOne",)
    availability_zones: tuple[str, ...] = ("nova",)
    projects: int = Field(default=4, ge=1, description="tenant projects besides admin and service")
    hypervisors: int = Field(default=12, ge=4)
    servers: int = Field(default=60, ge=0)
    ports: int = Field(default=0, ge=0, description="total ports; 0 = what the fleet needs + a few")
    floating_ips: int = Field(default=20, ge=0)
    volumes: int = Field(default=40, ge=0)
    images: int = Field(default=8, ge=1)
    baremetal_nodes: int = Field(default=6, ge=0)
    network_nodes: int = Field(default=2, ge=1)
    controllers: int = Field(default=3, ge=1)
    now: datetime = DEFAULT_NOW
    admin_password: str = "secret"
    user_password: str = "password"

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("regions")
    @classmethod
    def _some_regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError("regions must be a non-empty list of distinct names")
        return value


PresetName = Literal["small", "two-region", "benchmark"]

PRESETS: dict[str, dict[str, Any]] = {
    # The demo: one region, enough of everything to show every scenario.
    "small": {},
    "two-region": {"regions": ("RegionOne", "RegionTwo"), "availability_zones": ("az1", "az2")},
    # The scale target of DESIGN.md.
    "benchmark": {
        "projects": 200,
        "hypervisors": 1000,
        "servers": 20_000,
        "ports": 40_000,
        "floating_ips": 10_000,
        "volumes": 20_000,
        "images": 2_000,
        "baremetal_nodes": 200,
        "network_nodes": 12,
        "availability_zones": ("az1", "az2", "az3"),
    },
}


def preset(name: str, **overrides: Any) -> FleetConfig:
    """The FleetConfig of a named preset (`PRESETS`), with field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return FleetConfig(**{**PRESETS[name], **overrides})


# -- static catalog data ----------------------------------------------------------------


@dataclass(frozen=True)
class _Flavor:
    name: str
    vcpus: int
    ram: int
    disk: int
    pinned: bool = False


FLAVORS: tuple[_Flavor, ...] = (
    _Flavor("m1.tiny", 1, 512, 1),
    _Flavor("m1.small", 1, 2048, 20),
    _Flavor("m1.medium", 2, 4096, 40),
    _Flavor("m1.large", 4, 8192, 80),
    _Flavor("m1.xlarge", 8, 16384, 160),
    _Flavor("r1.2xlarge", 8, 65536, 160),
    _Flavor("c1.pinned-4", 4, 8192, 40, pinned=True),
    _Flavor("c1.pinned-8", 8, 16384, 80, pinned=True),
)
# Relative popularity of the shared (non-pinned) flavors.
_FLAVOR_WEIGHTS = (3, 10, 12, 8, 4, 1)


@dataclass(frozen=True)
class _Hardware:
    threads: int
    ram_mb: int
    disk_gb: int


_HARDWARE_STANDARD = (_Hardware(64, 393_216, 1_800), _Hardware(96, 786_432, 3_600))
_HARDWARE_OLD = _Hardware(24, 131_072, 900)
_VCPU_RATIO = 4.0
_RAM_RATIO = 1.0
_DISK_RATIO = 1.0
_RAM_RESERVED = 4096
# Regular placement stops short of this share of capacity, so that "nearly full" stays
# the property of the hosts meant to be.
_REGULAR_FILL_CAP = 0.85

_BASE_IMAGES: tuple[tuple[str, str, int, int, str, str], ...] = (
    # name, os_distro, size bytes, min_disk, disk_format, os_version
    ("cirros-0.6.2-x86_64-disk", "cirros", 21_430_272, 1, "qcow2", "0.6.2"),
    ("ubuntu-22.04-server-cloudimg", "ubuntu", 663_420_928, 10, "qcow2", "22.04"),
    ("ubuntu-24.04-server-cloudimg", "ubuntu", 592_969_728, 10, "qcow2", "24.04"),
    ("debian-12-genericcloud", "debian", 345_112_576, 5, "qcow2", "12"),
    ("rocky-9-genericcloud", "rocky", 1_032_192_000, 10, "qcow2", "9"),
    ("windows-server-2022", "windows", 10_737_418_240, 40, "raw", "2022"),
)

_PROJECT_WORDS = (
    "alpha", "bravo", "cobalt", "delta", "ember", "falcon", "garnet", "harbor",
    "indigo", "juniper", "krypton", "lumen", "meridian", "nimbus", "onyx", "pulsar",
    "quartz", "raven", "sierra", "tundra",
)  # fmt: skip
_SERVER_ROLES = ("web", "api", "db", "cache", "worker", "batch", "ci", "vpn", "lb", "etl")
# Ironic node lifecycles, in turn; the order puts every kind into small fleets.
_NODE_FATES = (
    "active", "maintenance", "available", "deploy failed", "active", "manageable",
    "active", "clean failed", "available", "enroll",
)  # fmt: skip
_LONG_SHUTOFF_DAYS = (91, 400)
_RECENT_SHUTOFF_DAYS = (1, 29)
_OLD_AVAILABLE_DAYS = (31, 500)
_RECENT_AVAILABLE_DAYS = (0, 6)


# -- time formats: each service writes its own ----------------------------------------


# isoformat() is several times faster than strftime(), which counts at 200,000 stamps.
# Every moment here is in UTC.


def _iso_z(moment: datetime) -> str:
    """Nova, Neutron, Glance: 2025-06-01T12:00:00Z."""
    return moment.isoformat(timespec="seconds")[:19] + "Z"


def _iso_micro(moment: datetime) -> str:
    """Cinder, Nova's launched_at and services: 2025-06-01T12:00:00.000000."""
    return moment.isoformat(timespec="microseconds")[:26]


def _iso_offset(moment: datetime) -> str:
    """Ironic: 2025-06-01T12:00:00+00:00."""
    return moment.isoformat(timespec="seconds")[:19] + "+00:00"


def _space(moment: datetime) -> str:
    """Neutron agents: 2025-06-01 12:00:00."""
    return moment.isoformat(" ", "seconds")[:19]


# -- the generator ------------------------------------------------------------------------


def generate(config: FleetConfig | None = None) -> CloudState:
    """A new simulated cloud built from `config` (default: the `small` preset)."""
    config = config or FleetConfig()
    # A fleet is millions of small acyclic objects: while it grows, the cyclic garbage
    # collector would walk all of it again and again (seconds on the benchmark preset)
    # and find nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        state = CloudState()
        identity = _build_identity(state, config)
        for index, region_name in enumerate(config.regions):
            region = RegionState(name=region_name)
            state.regions[region_name] = region
            builder = _RegionBuilder(config, region, identity, index)
            builder.build()
            state.ground_truth[region_name] = builder.ground_truth()
            state.ground_truth[region_name]["admin_outside_allowed_list"] = sorted(
                identity.admins_outside_allowed_list
            )
    finally:
        if collecting:
            gc.enable()
    return state


@dataclass
class _Identity:
    """The Keystone facts the regions need: who owns what."""

    admin_project: str
    service_project: str
    admin_user: str
    tenant_projects: list[str]
    project_names: dict[str, str]
    # project id -> the user who creates its resources
    project_users: dict[str, str]
    # ground truth admin_outside_allowed_list (role assignment ids)
    admins_outside_allowed_list: list[str] = field(default_factory=list)


def _uuid4_int(rng: random.Random) -> int:
    # The bits uuid.UUID(int=..., version=4) sets, without its (slow) constructor.
    value = rng.getrandbits(128)
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)
    return (value & ~(0xF000 << 64)) | (4 << 76)


def _uuid4(rng: random.Random) -> str:
    """A random (version 4) UUID drawn from `rng`, in its 8-4-4-4-12 form."""
    h = f"{_uuid4_int(rng):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _hex_id(rng: random.Random) -> str:
    """A Keystone-style id: a UUID4 as 32 hex digits."""
    return f"{_uuid4_int(rng):032x}"


def _build_identity(state: CloudState, config: FleetConfig) -> _Identity:
    rng = random.Random(f"{config.seed}:identity")
    state.domains["default"] = {
        "id": "default",
        "name": "Default",
        "description": "The default domain",
        "enabled": True,
        "tags": [],
        "options": {},
    }
    for role_name in ("admin", "member", "reader", "service"):
        role_id = _hex_id(rng)
        state.roles[role_id] = {
            "id": role_id,
            "name": role_name,
            "domain_id": None,
            "description": None,
            "options": {"immutable": True} if role_name != "service" else {},
        }

    def project(name: str, description: str) -> str:
        project_id = _hex_id(rng)
        state.projects[project_id] = {
            "id": project_id,
            "name": name,
            "domain_id": "default",
            "description": description,
            "enabled": True,
            "parent_id": "default",
            "is_domain": False,
            "tags": [],
            "options": {},
        }
        return project_id

    def user(name: str, password: str, project_id: str | None = None) -> str:
        user_id = _hex_id(rng)
        obj: Obj = {
            "id": user_id,
            "name": name,
            "domain_id": "default",
            "enabled": True,
            "password_expires_at": None,
            "options": {},
        }
        if project_id:
            obj["default_project_id"] = project_id
        state.users[user_id] = obj
        state.passwords[user_id] = password
        return user_id

    admin_project = project("admin", "Bootstrap project for initializing the cloud.")
    service_project = project("service", "Service project for the OpenStack services.")
    admin_user = user("admin", config.admin_password)
    state.assignments[(admin_user, admin_project)] = ["admin"]
    state.assignments[(admin_user, "system")] = ["admin"]
    for service_user in ("nova", "neutron", "cinder", "glance", "placement", "ironic"):
        user_id = user(service_user, config.user_password)
        state.assignments[(user_id, service_project)] = ["admin", "service"]

    tenants: list[str] = []
    names: dict[str, str] = {admin_project: "admin", service_project: "service"}
    owners: dict[str, str] = {admin_project: admin_user, service_project: admin_user}
    for index in range(config.projects):
        word = _PROJECT_WORDS[index % len(_PROJECT_WORDS)]
        name = f"{word}-{index // len(_PROJECT_WORDS) + 1:02d}"
        project_id = project(name, f"Team {word} workloads")
        member = user(f"{name}-user", config.user_password, project_id)
        reader = user(f"{name}-viewer", config.user_password, project_id)
        state.assignments[(member, project_id)] = ["member"]
        state.assignments[(reader, project_id)] = ["reader"]
        state.assignments[(admin_user, project_id)] = ["admin"]
        tenants.append(project_id)
        names[project_id] = name
        owners[project_id] = member
    # Someone who should not be an admin: made last, so no other id changes.
    mallory = user("mallory", config.user_password, tenants[0])
    state.assignments[(mallory, tenants[0])] = ["admin"]
    admin_role = next(r["id"] for r in state.roles.values() if r["name"] == "admin")
    outsiders = [f"project:{tenants[0]}:user:{mallory}:role:{admin_role}"]
    return _Identity(admin_project, service_project, admin_user, tenants, names, owners, outsiders)


@dataclass
class _Host:
    """A compute node as the generator tracks it while placing servers."""

    index: int
    host: str
    hypervisor_hostname: str
    zone: str
    hardware: _Hardware
    pcpus: int
    hypervisor_id: str
    service_id: str
    down: bool = False
    disabled: bool = False
    nearly_full: bool = False
    vcpu_used: int = 0
    pcpu_used: int = 0
    ram_used: int = 0
    disk_used: int = 0
    servers: int = 0

    @property
    def vcpus(self) -> int:
        return self.hardware.threads - self.pcpus

    @property
    def vcpu_capacity(self) -> float:
        return self.vcpus * _VCPU_RATIO

    @property
    def ram_capacity(self) -> float:
        return (self.hardware.ram_mb - _RAM_RESERVED) * _RAM_RATIO

    def fits(self, flavor: _Flavor, share: float) -> bool:
        if flavor.pinned:
            if self.pcpu_used + flavor.vcpus > self.pcpus * share:
                return False
        elif self.vcpu_used + flavor.vcpus > self.vcpu_capacity * share:
            return False
        return (
            self.ram_used + flavor.ram <= self.ram_capacity * share
            and self.disk_used + flavor.disk <= self.hardware.disk_gb * _DISK_RATIO
        )

    def add(self, flavor: _Flavor) -> None:
        if flavor.pinned:
            self.pcpu_used += flavor.vcpus
        else:
            self.vcpu_used += flavor.vcpus
        self.ram_used += flavor.ram
        self.disk_used += flavor.disk
        self.servers += 1


@dataclass
class _Subnet:
    """An IPv4 subnet that hands out addresses in order."""

    id: str
    network_id: str
    network_name: str
    cidr: ipaddress.IPv4Network
    next_host: int = 10
    gateway: str = ""

    def allocate(self) -> str:
        address = self.cidr.network_address + self.next_host
        if address >= self.cidr.broadcast_address:
            raise RuntimeError(f"subnet {self.cidr} is full")
        self.next_host += 1
        return str(address)


@dataclass
class _ProjectNet:
    project_id: str
    network_id: str
    subnet: _Subnet
    router_id: str
    default_sg: str
    extra_sgs: list[str] = field(default_factory=list)


class _RegionBuilder:
    """Fills one RegionState. Methods run in a fixed order; each draws from the same
    seeded random stream, so the order is part of the determinism."""

    def __init__(
        self, config: FleetConfig, region: RegionState, identity: _Identity, index: int
    ) -> None:
        self.config = config
        self.region = region
        self.identity = identity
        self.region_index = index
        self.rng = random.Random(f"{config.seed}:region:{region.name}")
        self.now = config.now.astimezone(UTC).replace(microsecond=0)
        self.domain = f"{region.name.lower()}.example.net"
        self.hosts: list[_Host] = []
        self.flavor_ids: dict[str, str] = {}
        self.controllers = [f"ctl{i + 1:02d}" for i in range(config.controllers)]
        self.network_hosts = [f"net{i + 1:02d}" for i in range(config.network_nodes)]
        self.nets: dict[str, _ProjectNet] = {}
        self.external_net = ""
        self.external_subnet: _Subnet | None = None
        self.public_images: list[str] = []
        self.truth: dict[str, list[str]] = {name: [] for name in SCENARIOS}
        # server id -> its ports (first = primary)
        self.server_ports: dict[str, list[str]] = {}
        self.host_ids: dict[tuple[str, str], str] = {}
        self.counter = 0

    # -- small helpers -------------------------------------------------------------------

    def uuid(self) -> str:
        return _uuid4(self.rng)

    def mac(self) -> str:
        value = self.rng.getrandbits(24)
        return f"fa:16:3e:{value >> 16:02x}:{(value >> 8) & 0xFF:02x}:{value & 0xFF:02x}"

    def ago(self, low_days: float, high_days: float) -> datetime:
        seconds = self.rng.uniform(low_days * 86_400, high_days * 86_400)
        return self.now - timedelta(seconds=int(seconds))

    def user_of(self, project_id: str) -> str:
        return self.identity.project_users.get(project_id, self.identity.admin_user)

    def host_id(self, project_id: str, host: str) -> str:
        """Nova's hostId: a hash of project and host, opaque to users."""
        key = (project_id, host)
        if key not in self.host_ids:
            self.host_ids[key] = hashlib.sha224((project_id + host).encode()).hexdigest()
        return self.host_ids[key]

    # -- orchestration -------------------------------------------------------------------

    def build(self) -> None:
        self.build_flavors()
        self.build_hosts()
        self.build_compute_services()
        self.build_network_agents()
        self.build_networks()
        self.build_images()
        self.build_servers()
        self.build_server_groups()
        self.build_placement()
        self.build_hypervisors()
        self.build_floating_ips()
        self.build_extra_ports()
        self.build_volumes()
        self.build_snapshots()
        self.build_block_storage_services()
        self.build_baremetal_nodes()
        self.build_capacity_scenarios()
        self.build_agent_scenarios()
        self.build_keypairs()

    def build_keypairs(self) -> None:
        """The key pair each server's `key_name` names, kept by the user that owns it
        (the project's user), and one of the admin's. Draws nothing from the random
        stream, so the rest of the fleet is what it was before key pairs existed."""
        owners = [(self.identity.admin_user, "admin-key")] + [
            (self.user_of(p), f"{self.identity.project_names[p]}-key")
            for p in self.identity.tenant_projects
        ]
        created = _iso_z(self.now - timedelta(days=400))
        for number, (user_id, name) in enumerate(owners, start=1):
            body = hashlib.sha256(name.encode()).hexdigest()[:40]
            public_key = f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{body} {name}"
            digest = hashlib.md5(public_key.encode(), usedforsecurity=False).hexdigest()  # noqa: S324
            self.region.keypairs[f"{user_id}:{name}"] = {
                "id": number,
                "name": name,
                "public_key": public_key,
                "fingerprint": ":".join(digest[i : i + 2] for i in range(0, 32, 2)),
                "type": "ssh",
                "user_id": user_id,
                "created_at": created,
            }

    def ground_truth(self) -> dict[str, list[str]]:
        region = self.region
        truth = self.truth
        truth["unattached_floating_ips"] = [
            f["id"] for f in region.floatingips.values() if f["port_id"] is None
        ]
        truth["down_unbound_ports"] = [
            p["id"]
            for p in region.ports.values()
            if p["status"] == "DOWN" and not p["device_id"] and not p["binding:host_id"]
        ]
        truth["error_volumes"] = [
            v["id"] for v in region.volumes.values() if v["status"] == "error"
        ]
        truth["error_servers"] = [
            s["id"] for s in region.servers.values() if s["status"] == "ERROR"
        ]
        truth["dead_network_agents"] = [a["id"] for a in region.agents.values() if not a["alive"]]
        used_images = {s["image"]["id"] for s in region.servers.values() if s["image"]}
        truth["unused_images"] = [
            i["id"]
            for i in region.images.values()
            if i["status"] == "active" and i["id"] not in used_images
        ]
        truth["nearly_full_hypervisors"] = [h.hypervisor_id for h in self.hosts if _nearly_full(h)]
        return {name: sorted(ids) for name, ids in truth.items()}

    # -- Nova ----------------------------------------------------------------------------

    def build_flavors(self) -> None:
        for index, flavor in enumerate(FLAVORS):
            flavor_id = str(index + 1)
            extra_specs = {"hw:cpu_policy": "dedicated"} if flavor.pinned else {}
            self.flavor_ids[flavor.name] = flavor_id
            self.region.flavors[flavor_id] = {
                "id": flavor_id,
                "name": flavor.name,
                "vcpus": flavor.vcpus,
                "ram": flavor.ram,
                "disk": flavor.disk,
                "swap": 0,
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "OS-FLV-DISABLED:disabled": False,
                "os-flavor-access:is_public": True,
                "rxtx_factor": 1.0,
                "description": None,
                "extra_specs": extra_specs,
            }

    def build_hosts(self) -> None:
        count = self.config.hypervisors
        zones = self.config.availability_zones
        nearly_full = max(1, count // 20)
        pcpu_every = 6
        for index in range(count):
            name = f"cmp{index + 1:04d}"
            is_nearly_full = index < nearly_full
            pcpu = not is_nearly_full and index % pcpu_every == pcpu_every - 1
            hardware = _HARDWARE_OLD if is_nearly_full else self.rng.choice(_HARDWARE_STANDARD)
            self.hosts.append(
                _Host(
                    index=index,
                    host=name,
                    hypervisor_hostname=f"{name}.{self.domain}",
                    zone=zones[index % len(zones)],
                    hardware=hardware,
                    pcpus=hardware.threads // 2 if pcpu else 0,
                    hypervisor_id=self.uuid(),
                    service_id=self.uuid(),
                    nearly_full=is_nearly_full,
                )
            )
        # One host has lost its nova-compute, another is drained for maintenance: never
        # the nearly-full ones, so each scenario stays separate.
        self.hosts[-1].down = True
        self.hosts[-2].disabled = True
        self.truth["pcpu_hypervisors"] = [h.hypervisor_id for h in self.hosts if h.pcpus]
        self.truth["down_hypervisors"] = [self.hosts[-1].hypervisor_id]
        self.truth["down_compute_services"] = [self.hosts[-1].service_id]
        self.truth["disabled_compute_services"] = [self.hosts[-2].service_id]

    def build_compute_services(self) -> None:
        fresh = _iso_micro(self.now - timedelta(seconds=7))
        for host in self.controllers:
            for binary in ("nova-scheduler", "nova-conductor"):
                service_id = self.uuid()
                self.region.compute_services[service_id] = _compute_service(
                    service_id, binary, host, "internal", fresh
                )
        for h in self.hosts:
            service = _compute_service(h.service_id, "nova-compute", h.host, h.zone, fresh)
            if h.down:
                service["state"] = "down"
                service["updated_at"] = _iso_micro(self.now - timedelta(hours=5, minutes=13))
            if h.disabled:
                service["status"] = "disabled"
                service["disabled_reason"] = "maintenance: DIMM replacement, ticket OPS-1432"
            self.region.compute_services[h.service_id] = service

    def build_hypervisors(self) -> None:
        for h in self.hosts:
            uptime = None
            if not h.down:
                days = 20 + (h.index * 7) % 300
                uptime = (
                    f" 12:00:00 up {days} days,  3:12,  0 users,  "
                    f"load average: {h.servers * 0.21:.2f}, {h.servers * 0.2:.2f}, "
                    f"{h.servers * 0.19:.2f}"
                )
            self.region.hypervisors[h.hypervisor_id] = {
                "id": h.hypervisor_id,
                "hypervisor_hostname": h.hypervisor_hostname,
                "state": "down" if h.down else "up",
                "status": "disabled" if h.disabled else "enabled",
                "hypervisor_type": "QEMU",
                "hypervisor_version": 8002002,
                "host_ip": f"10.0.{h.index // 250}.{h.index % 250 + 4}",
                "service": {
                    "host": h.host,
                    "id": h.service_id,
                    "disabled_reason": (
                        self.region.compute_services[h.service_id]["disabled_reason"]
                    ),
                },
                "uptime": uptime,
            }

    def build_placement(self) -> None:
        # Nova mirrors each availability zone's host aggregate into Placement; a single
        # default zone ("nova") has no aggregate.
        zones = self.config.availability_zones
        zone_aggregates = {z: self.uuid() for z in zones} if zones != ("nova",) else {}
        for h in self.hosts:
            if h.zone in zone_aggregates:
                self.region.provider_aggregates[h.hypervisor_id] = [zone_aggregates[h.zone]]
            rp = h.hypervisor_id
            inventory: dict[str, Obj] = {
                "VCPU": _inventory(h.vcpus, 0, _VCPU_RATIO, h.vcpus),
                "MEMORY_MB": _inventory(
                    h.hardware.ram_mb, _RAM_RESERVED, _RAM_RATIO, h.hardware.ram_mb
                ),
                "DISK_GB": _inventory(h.hardware.disk_gb, 0, _DISK_RATIO, h.hardware.disk_gb),
            }
            usage = {"VCPU": h.vcpu_used, "MEMORY_MB": h.ram_used, "DISK_GB": h.disk_used}
            if h.pcpus:
                inventory["PCPU"] = _inventory(h.pcpus, 0, 1.0, h.pcpus)
                usage["PCPU"] = h.pcpu_used
            # Each inventory update and each allocation bumps the generation.
            self.region.resource_providers[rp] = {
                "uuid": rp,
                "name": h.hypervisor_hostname,
                "generation": 1 + len(inventory) + h.servers,
                "parent_provider_uuid": None,
                "root_provider_uuid": rp,
            }
            self.region.inventories[rp] = inventory
            self.region.usages[rp] = usage

    def build_server_groups(self) -> None:
        # project -> host -> its servers there, hosts in name order
        placed: dict[str, dict[str, list[Obj]]] = {}
        for server in self.region.servers.values():
            host = server["OS-EXT-SRV-ATTR:host"]
            if host and server["status"] != "ERROR":
                placed.setdefault(server["tenant_id"], {}).setdefault(host, []).append(server)
        groups = max(2, len(self.identity.tenant_projects) // 2)
        for number, project_id in enumerate(self.identity.tenant_projects[:groups]):
            by_host = [placed.get(project_id, {})[h] for h in sorted(placed.get(project_id, {}))]
            # anti-affinity: one server from each of up to three hosts
            members = [servers[0] for servers in by_host][:3]
            if len(members) >= 2:
                self._server_group(project_id, f"anti-affinity-{number}", "anti-affinity", members)
            # affinity: two more servers sharing a host
            pair = next((servers[1:3] for servers in by_host if len(servers) >= 3), None)
            if pair:
                self._server_group(project_id, f"affinity-{number}", "affinity", pair)

    def _server_group(self, project_id: str, name: str, policy: str, members: list[Obj]) -> None:
        group_id = self.uuid()
        self.region.server_groups[group_id] = {
            "id": group_id,
            "name": name,
            "policy": policy,
            "rules": {},
            "members": [m["id"] for m in members],
            "project_id": project_id,
            "user_id": self.user_of(project_id),
        }
        for member in members:
            member["server_groups"] = [group_id]

    def build_servers(self) -> None:
        config = self.config
        tenants = self.identity.tenant_projects
        total = config.servers
        if total == 0 or not tenants:
            return
        shared_flavors = [f for f in FLAVORS if not f.pinned]
        pinned_flavors = [f for f in FLAVORS if f.pinned]
        pcpu_hosts = [h for h in self.hosts if h.pcpus and not h.down and not h.disabled]
        regular = [h for h in self.hosts if not h.nearly_full and not h.disabled]
        # Scenario budgets: small in share, but at least one each when there is room.
        n_error = max(1, total // 50)
        n_long_off = max(1, total * 4 // 100)
        n_recent_off = max(1, total * 2 // 100)
        n_idle = max(1, total * 8 // 100)
        n_down_host = max(1, min(total // 40, 20))

        plans: list[tuple[_Flavor, _Host | None, str]] = []
        # Fill the nearly-full hosts first, with big flavors, to 90-97% of memory.
        for h in (h for h in self.hosts if h.nearly_full):
            target = h.ram_capacity * self.rng.uniform(0.915, 0.97)
            for flavor in sorted(shared_flavors, key=lambda f: -f.ram):
                while (
                    len(plans) < total and h.ram_used + flavor.ram <= target and h.fits(flavor, 1.0)
                ):
                    h.add(flavor)
                    plans.append((flavor, h, "active"))
        # The down host keeps its servers (Nova still says ACTIVE); the drained one has a
        # couple left.
        for special, count, kind in (
            (self.hosts[-1], n_down_host, "on-down-host"),
            (self.hosts[-2], 2, "active-on-disabled"),
        ):
            for _ in range(min(count, total - len(plans))):
                flavor = self.rng.choices(shared_flavors, _FLAVOR_WEIGHTS)[0]
                if special.fits(flavor, _REGULAR_FILL_CAP):
                    special.add(flavor)
                    plans.append((flavor, special, kind))
        for _ in range(min(n_error // 2 + 1, total - len(plans))):
            plans.append((self.rng.choices(shared_flavors, _FLAVOR_WEIGHTS)[0], None, "error"))
        up_regular = [h for h in regular if not h.down]
        while len(plans) < total:
            use_pinned = bool(pcpu_hosts) and self.rng.random() < 0.04
            flavor = (
                self.rng.choice(pinned_flavors)
                if use_pinned
                else self.rng.choices(shared_flavors, _FLAVOR_WEIGHTS)[0]
            )
            candidates = pcpu_hosts if use_pinned else up_regular
            host = self._place(flavor, candidates)
            if host is None:
                flavor = FLAVORS[0]
                host = self._place(flavor, up_regular)
            if host is None:
                raise ValueError(
                    "the fleet is too small for the servers asked for: "
                    "raise `hypervisors` or lower `servers`"
                )
            host.add(flavor)
            plans.append((flavor, host, "active"))

        # Decide the lifecycle of the regular servers (those placed on regular hosts).
        regular_indexes = [
            i
            for i, plan in enumerate(plans)
            if plan[2] == "active" and plan[1] and not plan[1].nearly_full
        ]
        self.rng.shuffle(regular_indexes)
        fates: dict[int, str] = {}
        cursor = 0
        for fate, count in (
            ("error-on-host", n_error - (n_error // 2 + 1)),
            ("long-shutoff", n_long_off),
            ("recent-shutoff", n_recent_off),
            ("idle", n_idle),
        ):
            for index in regular_indexes[cursor : cursor + max(0, count)]:
                fates[index] = fate
            cursor += max(0, count)

        for index, (flavor, host, kind) in enumerate(plans):
            project_id = tenants[self.rng.randrange(len(tenants))]
            fate = fates.get(index, kind)
            self._server(index, flavor, host, project_id, fate)

    def _place(self, flavor: _Flavor, candidates: list[_Host]) -> _Host | None:
        if not candidates:
            return None
        for _ in range(8):
            host = candidates[self.rng.randrange(len(candidates))]
            if host.fits(flavor, _REGULAR_FILL_CAP):
                return host
        return next((h for h in candidates if h.fits(flavor, _REGULAR_FILL_CAP)), None)

    def _server(
        self, index: int, flavor: _Flavor, host: _Host | None, project_id: str, fate: str
    ) -> None:
        server_id = self.uuid()
        project_name = self.identity.project_names[project_id]
        role = _SERVER_ROLES[index % len(_SERVER_ROLES)]
        name = f"{project_name}-{role}-{index + 1:05d}"
        created = self.ago(3, 720)
        launched = created + timedelta(seconds=self.rng.randint(20, 90))
        updated = launched
        status, vm_state, power_state = "ACTIVE", "active", 1
        fault: Obj | None = None
        if fate == "long-shutoff":
            updated = self.ago(*_LONG_SHUTOFF_DAYS)
            created = min(created, updated - timedelta(days=30))
            launched = created + timedelta(seconds=45)
            status, vm_state, power_state = "SHUTOFF", "stopped", 4
            self.truth["long_shutoff_servers"].append(server_id)
        elif fate == "recent-shutoff":
            updated = self.ago(*_RECENT_SHUTOFF_DAYS)
            created = min(created, updated - timedelta(days=3))
            launched = created + timedelta(seconds=45)
            status, vm_state, power_state = "SHUTOFF", "stopped", 4
            self.truth["recent_shutoff_servers"].append(server_id)
        elif fate == "error":
            updated = created + timedelta(seconds=4)
            status, vm_state, power_state = "ERROR", "error", 0
            fault = {
                "code": 500,
                "created": _iso_z(updated),
                "message": "No valid host was found. There are not enough hosts available.",
                "details": "Traceback (most recent call last):\n  ...\n"
                "nova.exception.NoValidHost: No valid host was found.",
            }
        elif fate == "error-on-host":
            updated = self.ago(1, 60)
            status, vm_state, power_state = "ERROR", "error", 4
            fault = {
                "code": 500,
                "created": _iso_z(updated),
                "message": "Unexpected error while running command.",
                "details": "Traceback (most recent call last):\n  ...\n"
                "nova.exception.InstanceFaultRollback: Unexpected error while running command.",
            }
        elif fate == "idle":
            self.truth["idle_servers"].append(server_id)
        elif fate == "on-down-host":
            self.truth["servers_on_down_hosts"].append(server_id)
        launched_at: str | None = _iso_micro(launched) if fate != "error" else None

        image_id = self.public_images[self.rng.randrange(len(self.public_images))]
        ports = self.server_ports.setdefault(server_id, [])
        addresses: dict[str, list[Obj]] = {}
        net = self.nets[project_id]
        group_ids = [net.default_sg]
        if net.extra_sgs and index % 3 == 0:
            group_ids.append(net.extra_sgs[index % len(net.extra_sgs)])
        if host is not None:
            port = self._port(
                project_id,
                net,
                device_id=server_id,
                device_owner=f"compute:{host.zone}",
                host=host.host,
                status="ACTIVE" if status == "ACTIVE" else "DOWN",
                created=launched - timedelta(seconds=10),
                security_groups=group_ids,
            )
            ports.append(port["id"])
            addresses[net.subnet.network_name] = [_nova_address(port)]

        host_status = ""
        if host is not None:
            host_status = "UNKNOWN" if host.down else ("MAINTENANCE" if host.disabled else "UP")
        self.counter += 1
        metadata: Obj = {}
        if index % 7 == 0:
            metadata["owner"] = f"{project_name}@example.org"
        tags = ["production"] if index % 5 == 0 else (["dev"] if index % 5 == 1 else [])
        self.region.servers[server_id] = {
            "id": server_id,
            "name": name,
            "status": status,
            "tenant_id": project_id,
            "user_id": self.user_of(project_id),
            "metadata": metadata,
            "hostId": self.host_id(project_id, host.host) if host else "",
            "image": {"id": image_id},
            "flavor": {
                "vcpus": flavor.vcpus,
                "ram": flavor.ram,
                "disk": flavor.disk,
                "ephemeral": 0,
                "swap": 0,
                "original_name": flavor.name,
                "extra_specs": {"hw:cpu_policy": "dedicated"} if flavor.pinned else {},
            },
            "created": _iso_z(created),
            "updated": _iso_z(updated),
            "addresses": addresses,
            "accessIPv4": "",
            "accessIPv6": "",
            "key_name": f"{project_name}-key",
            "config_drive": "",
            "progress": 0,
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": host.zone if host else "",
            "OS-EXT-SRV-ATTR:host": host.host if host else None,
            "OS-EXT-SRV-ATTR:hypervisor_hostname": host.hypervisor_hostname if host else None,
            "OS-EXT-SRV-ATTR:instance_name": f"instance-{self.counter:08x}",
            "OS-EXT-SRV-ATTR:hostname": name,
            "OS-EXT-SRV-ATTR:reservation_id": f"r-{self.rng.getrandbits(32):08x}",
            "OS-EXT-SRV-ATTR:launch_index": 0,
            "OS-EXT-SRV-ATTR:kernel_id": "",
            "OS-EXT-SRV-ATTR:ramdisk_id": "",
            "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda" if host else None,
            "OS-EXT-SRV-ATTR:user_data": None,
            "OS-EXT-STS:task_state": None,
            "OS-EXT-STS:vm_state": vm_state,
            "OS-EXT-STS:power_state": power_state,
            "OS-SRV-USG:launched_at": launched_at,
            "OS-SRV-USG:terminated_at": None,
            "os-extended-volumes:volumes_attached": [],
            "security_groups": (
                [{"name": self.region.security_groups[g]["name"]} for g in group_ids]
                if host
                else []
            ),
            "locked": False,
            "locked_reason": None,
            "description": None,
            "tags": tags,
            "trusted_image_certificates": None,
            "host_status": host_status,
            "server_groups": [],
            "pinned_availability_zone": None,
        }
        if fault is not None:
            self.region.servers[server_id]["fault"] = fault

    # -- Neutron -------------------------------------------------------------------------

    def _neutron_times(self, created: datetime) -> Obj:
        return {"created_at": _iso_z(created), "updated_at": _iso_z(created)}

    def build_network_agents(self) -> None:
        created = self.now - timedelta(days=800)

        def agent(
            agent_type: str,
            binary: str,
            host: str,
            topic: str,
            zone: str | None,
            configurations: Obj,
            alive: bool = True,
        ) -> None:
            agent_id = self.uuid()
            beat = self.now - (timedelta(seconds=12) if alive else timedelta(hours=5, minutes=13))
            self.region.agents[agent_id] = {
                "id": agent_id,
                "agent_type": agent_type,
                "binary": binary,
                "host": host,
                "topic": topic,
                "admin_state_up": True,
                "alive": alive,
                "availability_zone": zone,
                "configurations": configurations,
                "created_at": _space(created),
                "started_at": _space(created),
                "heartbeat_timestamp": _space(beat),
                "description": None,
                "resources_synced": None,
            }

        ovs = {"bridge_mappings": {"physnet1": "br-ex"}, "tunnel_types": ["vxlan"], "devices": 0}
        for host in self.network_hosts:
            zone = self.config.availability_zones[0]
            agent(
                "L3 agent",
                "neutron-l3-agent",
                host,
                "l3_agent",
                zone,
                {"agent_mode": "legacy", "routers": 0},
            )
            agent(
                "DHCP agent",
                "neutron-dhcp-agent",
                host,
                "dhcp_agent",
                zone,
                {"dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq", "networks": 0},
            )
            agent("Metadata agent", "neutron-metadata-agent", host, "N/A", None, {})
            agent("Open vSwitch agent", "neutron-openvswitch-agent", host, "N/A", None, ovs)
        for h in self.hosts:
            agent(
                "Open vSwitch agent",
                "neutron-openvswitch-agent",
                h.host,
                "N/A",
                None,
                ovs,
                alive=not h.down,
            )

    def _port(
        self,
        project_id: str,
        net: _ProjectNet | None,
        *,
        device_id: str,
        device_owner: str,
        host: str,
        status: str,
        created: datetime,
        subnet: _Subnet | None = None,
        address: str | None = None,
        tenant: str | None = None,
        security_groups: list[str] | None = None,
    ) -> Obj:
        subnet = subnet or (net.subnet if net else None)
        assert subnet is not None
        port_id = self.uuid()
        owner = project_id if tenant is None else tenant
        bound = bool(host)
        compute = device_owner.startswith("compute:")
        port: Obj = {
            "id": port_id,
            "name": "",
            "network_id": subnet.network_id,
            "tenant_id": owner,
            "project_id": owner,
            "mac_address": self.mac(),
            "admin_state_up": True,
            "status": status,
            "device_id": device_id,
            "device_owner": device_owner,
            "fixed_ips": [{"subnet_id": subnet.id, "ip_address": address or subnet.allocate()}],
            "allowed_address_pairs": [],
            "extra_dhcp_opts": [],
            "security_groups": security_groups or [],
            "description": "",
            "binding:host_id": host,
            "binding:profile": {},
            "binding:vif_details": (
                {
                    "connectivity": "l2",
                    "port_filter": True,
                    "ovs_hybrid_plug": False,
                    "datapath_type": "system",
                    "bridge_name": "br-int",
                }
                if bound
                else {}
            ),
            "binding:vif_type": "ovs" if bound else "unbound",
            "binding:vnic_type": "normal",
            "port_security_enabled": compute or not device_owner,
            "dns_name": "",
            "dns_assignment": [],
            "qos_policy_id": None,
            "qos_network_policy_id": None,
            "resource_request": None,
            "ip_allocation": "immediate",
            "propagate_uplink_status": False,
            "tags": [],
            "revision_number": 4 if bound else 1,
            **self._neutron_times(created),
        }
        self.region.ports[port_id] = port
        return port

    def build_networks(self) -> None:
        region = self.region
        admin = self.identity.admin_project
        created = self.now - timedelta(days=800)
        tenants = self.identity.tenant_projects
        # External network, big enough for every router gateway and floating IP.
        needed = self.config.floating_ips + len(tenants) + 16
        # (addresses are handed out from .10 on)
        prefix = max(12, min(24, 32 - math.ceil(math.log2(needed + 12))))
        ext_cidr = ipaddress.IPv4Network(f"172.16.0.0/{prefix}")
        self.external_net = self.uuid()
        ext_subnet = _Subnet(self.uuid(), self.external_net, "public", ext_cidr)
        ext_subnet.gateway = str(ext_cidr.network_address + 1)
        self.external_subnet = ext_subnet
        region.networks[self.external_net] = _network(
            self.external_net,
            "public",
            admin,
            [ext_subnet.id],
            "flat",
            None,
            1500,
            external=True,
            shared=False,
            times=self._neutron_times(created),
            physical_network="physnet1",
        )
        region.subnets[ext_subnet.id] = _subnet(
            ext_subnet, admin, enable_dhcp=False, times=self._neutron_times(created)
        )

        # Tenant networks: one /N per project out of 10.0.0.0/8, sized for its ports.
        per_project = max(
            64, (self.config.servers * 2 + self.config.ports) // max(1, len(tenants)) * 3
        )
        host_bits = max(8, math.ceil(math.log2(per_project + 16)))
        tenant_prefix = 32 - host_bits
        if 2 ** (tenant_prefix - 8) < len(tenants):
            raise ValueError("too many projects for the simulated address plan")
        blocks = ipaddress.IPv4Network("10.0.0.0/8").subnets(new_prefix=tenant_prefix)
        agent_hosts = self.network_hosts
        for number, project_id in enumerate(tenants):
            name = self.identity.project_names[project_id]
            t_created = self.ago(300, 790)
            times = self._neutron_times(t_created)
            network_id = self.uuid()
            cidr = ipaddress.IPv4Network(next(blocks))
            subnet = _Subnet(self.uuid(), network_id, f"{name}-net", cidr)
            subnet.gateway = str(cidr.network_address + 1)
            region.networks[network_id] = _network(
                network_id,
                f"{name}-net",
                project_id,
                [subnet.id],
                "vxlan",
                1000 + number,
                1450,
                external=False,
                shared=False,
                times=times,
            )
            region.subnets[subnet.id] = _subnet(subnet, project_id, enable_dhcp=True, times=times)
            router_id = self.uuid()
            l3_host = agent_hosts[number % len(agent_hosts)]
            gateway_port = self._port(
                project_id,
                None,
                device_id=router_id,
                device_owner="network:router_gateway",
                host=l3_host,
                status="ACTIVE",
                created=t_created,
                subnet=ext_subnet,
                tenant="",
            )
            self._port(
                project_id,
                None,
                device_id=router_id,
                device_owner="network:router_interface",
                host=l3_host,
                status="ACTIVE",
                created=t_created,
                subnet=subnet,
                address=subnet.gateway,
            )
            self._port(
                project_id,
                None,
                device_id=f"dhcp{uuid.UUID(int=number).hex[:8]}-{network_id}",
                device_owner="network:dhcp",
                host=agent_hosts[(number + 1) % len(agent_hosts)],
                status="ACTIVE",
                created=t_created,
                subnet=subnet,
                address=str(cidr.network_address + 2),
            )
            region.routers[router_id] = {
                "id": router_id,
                "name": f"{name}-router",
                "tenant_id": project_id,
                "project_id": project_id,
                "admin_state_up": True,
                "status": "ACTIVE",
                "external_gateway_info": {
                    "network_id": self.external_net,
                    "enable_snat": True,
                    "external_fixed_ips": gateway_port["fixed_ips"],
                },
                "routes": [],
                "ha": False,
                "distributed": False,
                "availability_zone_hints": [],
                "availability_zones": ["nova"],
                "flavor_id": None,
                "description": "",
                "tags": [],
                "revision_number": 3,
                **times,
            }
            default_sg = self._security_group(
                project_id, "default", "Default security group", t_created
            )
            net = _ProjectNet(project_id, network_id, subnet, router_id, default_sg)
            self.nets[project_id] = net
            if number % 3 == 0:
                web = self._security_group(project_id, "web", "HTTP and HTTPS", t_created)
                for port in (80, 443):
                    self._rule(
                        web,
                        project_id,
                        "ingress",
                        "IPv4",
                        "tcp",
                        port,
                        port,
                        "0.0.0.0/0",
                        None,
                        t_created,
                    )
                net.extra_sgs.append(web)
            if number % 3 == 1:
                admin_sg = self._security_group(
                    project_id, "ssh-internal", "SSH from the office", t_created
                )
                self._rule(
                    admin_sg,
                    project_id,
                    "ingress",
                    "IPv4",
                    "tcp",
                    22,
                    22,
                    "10.0.0.0/8",
                    None,
                    t_created,
                )
                net.extra_sgs.append(admin_sg)
        # The classic mistake: SSH open to the world, in the first project (and more in
        # larger fleets).
        for number, project_id in enumerate(tenants):
            if number % 10 != 0:
                continue
            created_sg = self.ago(10, 200)
            sg = self._security_group(
                project_id, "ssh-anywhere", "temporary debug access", created_sg
            )
            rule = self._rule(
                sg, project_id, "ingress", "IPv4", "tcp", 22, 22, "0.0.0.0/0", None, created_sg
            )
            self.nets[project_id].extra_sgs.append(sg)
            self.truth["open_ssh_security_groups"].append(sg)
            self.truth["open_ssh_security_group_rules"].append(rule)

    def _security_group(
        self, project_id: str, name: str, description: str, created: datetime
    ) -> str:
        sg_id = self.uuid()
        self.region.security_groups[sg_id] = {
            "id": sg_id,
            "name": name,
            "tenant_id": project_id,
            "project_id": project_id,
            "description": description,
            "stateful": True,
            "shared": False,
            "tags": [],
            "revision_number": 1,
            **self._neutron_times(created),
            # Neutron shows a group's rules inside it (copies of the rule objects of
            # `security_group_rules`, see _rule: the embedded form has more fields).
            "security_group_rules": [],
        }
        for ethertype in ("IPv4", "IPv6"):
            self._rule(
                sg_id, project_id, "egress", ethertype, None, None, None, None, None, created
            )
        if name == "default":
            for ethertype in ("IPv4", "IPv6"):
                self._rule(
                    sg_id, project_id, "ingress", ethertype, None, None, None, None, sg_id, created
                )
        return sg_id

    def _rule(
        self,
        sg_id: str,
        project_id: str,
        direction: str,
        ethertype: str,
        protocol: str | None,
        port_min: int | None,
        port_max: int | None,
        remote_ip: str | None,
        remote_group: str | None,
        created: datetime,
    ) -> str:
        rule_id = self.uuid()
        default_sg = self.region.security_groups[sg_id]["name"] == "default"
        rule: Obj = {
            "id": rule_id,
            "security_group_id": sg_id,
            "direction": direction,
            "ethertype": ethertype,
            "protocol": protocol,
            "port_range_min": port_min,
            "port_range_max": port_max,
            "remote_ip_prefix": remote_ip,
            "remote_group_id": remote_group,
            "remote_address_group_id": None,
            # Neutron normalises the remote prefix it was given; none given, none shown
            "normalized_cidr": remote_ip,
            "tenant_id": project_id,
            "project_id": project_id,
            "description": "",
            "belongs_to_default_sg": default_sg,
            "revision_number": 0,
            **self._neutron_times(created),
        }
        self.region.security_group_rules[rule_id] = rule
        # Rules are not taggable; a group shows its rules as stored objects, which carry
        # their standard attribute id and (empty) tags besides the rule's own fields.
        embedded = {**rule, "standard_attr_id": len(self.region.security_group_rules), "tags": []}
        self.region.security_groups[sg_id]["security_group_rules"].append(embedded)
        return rule_id

    def build_floating_ips(self) -> None:
        assert self.external_subnet is not None
        total = self.config.floating_ips
        if total == 0:
            return
        candidates = [
            s
            for s in self.region.servers.values()
            if s["status"] in ("ACTIVE", "SHUTOFF") and self.server_ports.get(s["id"])
        ]
        self.rng.shuffle(candidates)
        n_unattached = max(1, total * 3 // 10)
        n_attached = min(total - n_unattached, len(candidates))
        n_unattached = total - n_attached
        for number in range(total):
            fip_id = self.uuid()
            attached = number < n_attached
            server = candidates[number] if attached else None
            project_id = (
                server["tenant_id"]
                if server
                else self.identity.tenant_projects[
                    self.rng.randrange(len(self.identity.tenant_projects))
                ]
            )
            created = self.ago(1, 600)
            address = self.external_subnet.allocate()
            fip: Obj = {
                "id": fip_id,
                "floating_ip_address": address,
                "floating_network_id": self.external_net,
                "router_id": None,
                "port_id": None,
                "fixed_ip_address": None,
                "status": "DOWN",
                "tenant_id": project_id,
                "project_id": project_id,
                "description": "",
                "dns_domain": "",
                "dns_name": "",
                "port_details": None,
                "qos_policy_id": None,
                "port_forwardings": [],
                "tags": [],
                "revision_number": 0,
                **self._neutron_times(created),
            }
            if server is not None:
                port = self.region.ports[self.server_ports[server["id"]][0]]
                fixed_ip = port["fixed_ips"][0]["ip_address"]
                fip.update(
                    {
                        "router_id": self.nets[project_id].router_id,
                        "port_id": port["id"],
                        "fixed_ip_address": fixed_ip,
                        "status": "ACTIVE",
                        "revision_number": 2,
                        "port_details": {
                            "name": port["name"],
                            "network_id": port["network_id"],
                            "mac_address": port["mac_address"],
                            "admin_state_up": port["admin_state_up"],
                            "status": port["status"],
                            "device_id": port["device_id"],
                            "device_owner": port["device_owner"],
                        },
                    }
                )
                for entry in server["addresses"][self.nets[project_id].subnet.network_name]:
                    if entry["addr"] == fixed_ip:
                        floating = dict(entry, addr=address)
                        floating["OS-EXT-IPS:type"] = "floating"
                        server["addresses"][self.nets[project_id].subnet.network_name].append(
                            floating
                        )
                        break
            self.region.floatingips[fip_id] = fip
            # Neutron backs each floating IP with a port of its own.
            self._port(
                project_id,
                None,
                device_id=fip_id,
                device_owner="network:floatingip",
                host="",
                status="N/A",
                created=created,
                subnet=self.external_subnet,
                address=address,
                tenant="",
            )

    def build_extra_ports(self) -> None:
        """Second NICs on some servers and forgotten DOWN ports, up to `ports`."""
        tenants = self.identity.tenant_projects
        extra = self.config.ports - len(self.region.ports) if self.config.ports else 0
        n_orphans = max(3, extra // 4) if extra > 0 else 3
        n_second = max(0, extra - n_orphans)
        for _ in range(n_orphans):
            project_id = tenants[self.rng.randrange(len(tenants))]
            net = self.nets[project_id]
            self._port(
                project_id,
                net,
                device_id="",
                device_owner="",
                host="",
                status="DOWN",
                created=self.ago(40, 700),
                security_groups=[net.default_sg],
            )
        servers = [s for s in self.region.servers.values() if s["OS-EXT-SRV-ATTR:host"]]
        self.rng.shuffle(servers)
        for server in servers[:n_second]:
            project_id = server["tenant_id"]
            net = self.nets[project_id]
            primary = self.region.ports[self.server_ports[server["id"]][0]]
            port = self._port(
                project_id,
                net,
                device_id=server["id"],
                device_owner=primary["device_owner"],
                host=primary["binding:host_id"],
                status=primary["status"],
                created=_parse_z(server["created"]),
                security_groups=list(primary["security_groups"]),
            )
            self.server_ports[server["id"]].append(port["id"])
            server["addresses"][net.subnet.network_name].append(_nova_address(port))

    # -- Glance --------------------------------------------------------------------------

    def build_images(self) -> None:
        admin = self.identity.admin_project
        tenants = self.identity.tenant_projects
        total = self.config.images
        for number in range(total):
            image_id = self.uuid()
            created = self.ago(30, 900)
            if number < len(_BASE_IMAGES) or number == 0:
                name, distro, size, min_disk, disk_format, version = _BASE_IMAGES[
                    number % len(_BASE_IMAGES)
                ]
                owner, visibility = admin, "public"
                properties: Obj = {
                    "os_distro": distro,
                    "os_version": version,
                    "hw_disk_bus": "virtio",
                }
                self.public_images.append(image_id)
            else:
                owner = tenants[self.rng.randrange(len(tenants))]
                base = _BASE_IMAGES[self.rng.randrange(len(_BASE_IMAGES) - 1)]
                name = f"{self.identity.project_names[owner]}-snapshot-{number:05d}"
                distro, size, min_disk, disk_format, version = (
                    base[1],
                    base[2] * 2,
                    base[3],
                    "qcow2",
                    base[5],
                )
                visibility = (
                    ("private", "shared", "community")[number % 3] if number % 4 else "private"
                )
                properties = {
                    "os_distro": distro,
                    "image_type": "snapshot",
                    "instance_uuid": self.uuid(),
                    "base_image_ref": self.public_images[0],
                }
            status = "active"
            if number >= len(_BASE_IMAGES) and number % 37 == 5:
                status = "deactivated"
            if number >= len(_BASE_IMAGES) and number % 97 == 11:
                status = "queued"
            checksum = hashlib.md5(image_id.encode(), usedforsecurity=False).hexdigest()
            image: Obj = {
                "id": image_id,
                "name": name,
                "status": status,
                "visibility": visibility,
                "protected": visibility == "public",
                "os_hidden": False,
                "checksum": checksum if status != "queued" else None,
                "os_hash_algo": "sha512" if status != "queued" else None,
                "os_hash_value": (
                    hashlib.sha512(image_id.encode()).hexdigest() if status != "queued" else None
                ),
                "owner": owner,
                "size": size if status != "queued" else None,
                "virtual_size": size * 4 if status != "queued" else None,
                "min_ram": 0,
                "min_disk": min_disk,
                "container_format": "bare",
                "disk_format": disk_format,
                "created_at": _iso_z(created),
                "updated_at": _iso_z(created + timedelta(minutes=3)),
                "tags": [],
                "self": f"/v2/images/{image_id}",
                "file": f"/v2/images/{image_id}/file",
                "schema": "/v2/schemas/image",
                "stores": "file" if status != "queued" else None,
                **properties,
            }
            if image["stores"] is None:
                del image["stores"]
            self.region.images[image_id] = image

    # -- Cinder --------------------------------------------------------------------------

    def build_volumes(self) -> None:
        total = self.config.volumes
        if total == 0:
            return
        backends = self._backends()
        attachable = [
            s
            for s in self.region.servers.values()
            if s["OS-EXT-SRV-ATTR:host"] and s["status"] in ("ACTIVE", "SHUTOFF")
        ]
        self.rng.shuffle(attachable)
        n_error = max(1, total // 100)
        n_old_available = max(1, total * 12 // 100)
        n_recent_available = max(1, total * 4 // 100)
        n_attached = min(
            len(attachable) * 2, total - n_error - n_old_available - n_recent_available
        )
        n_attached = max(0, n_attached)
        self.pool_allocated: dict[str, int] = {b[0]: 0 for b in backends}
        for number in range(total):
            volume_id = self.uuid()
            backend, volume_type, type_id = backends[number % len(backends)]
            size = self.rng.choice((10, 20, 20, 50, 100, 100, 200, 500, 1000))
            created = self.ago(2, 700)
            updated = created + timedelta(minutes=1)
            status = "available"
            attachments: list[Obj] = []
            project_id: str
            if number < n_attached:
                server = attachable[number % len(attachable)]
                project_id = server["tenant_id"]
                status = "in-use"
                attached = _parse_z(server["created"]) + timedelta(minutes=5)
                created = min(created, attached - timedelta(minutes=1))
                updated = attached
                device = (
                    f"/dev/vd{chr(ord('b') + len(server['os-extended-volumes:volumes_attached']))}"
                )
                attachments.append(
                    {
                        "id": volume_id,
                        "attachment_id": self.uuid(),
                        "volume_id": volume_id,
                        "server_id": server["id"],
                        "host_name": server["OS-EXT-SRV-ATTR:host"],
                        "device": device,
                        "attached_at": _iso_micro(attached),
                    }
                )
                server["os-extended-volumes:volumes_attached"].append(
                    {"id": volume_id, "delete_on_termination": False}
                )
            else:
                project_id = self.identity.tenant_projects[
                    self.rng.randrange(len(self.identity.tenant_projects))
                ]
                rest = number - n_attached
                if rest < n_error:
                    status = "error"
                    updated = created + timedelta(seconds=30)
                elif rest < n_error + n_old_available:
                    updated = self.ago(*_OLD_AVAILABLE_DAYS)
                    created = min(created, updated - timedelta(days=1))
                    self.truth["long_available_volumes"].append(volume_id)
                elif rest < n_error + n_old_available + n_recent_available:
                    updated = self.ago(*_RECENT_AVAILABLE_DAYS)
                    created = min(created, updated - timedelta(days=1))
                    self.truth["recent_available_volumes"].append(volume_id)
                else:
                    # available, age in between: neither "long" nor "recent"
                    updated = self.ago(8, 29)
                    created = min(created, updated - timedelta(days=1))
            host = None if status == "error" else backend
            if host is not None:
                self.pool_allocated[backend] += size
            self.region.volumes[volume_id] = {
                "id": volume_id,
                "name": f"{self.identity.project_names[project_id]}-vol-{number + 1:05d}",
                "description": None,
                "status": status,
                "size": size,
                "availability_zone": "nova",
                "created_at": _iso_micro(created),
                "updated_at": _iso_micro(updated),
                "attachments": attachments,
                "bootable": "false",
                "encrypted": False,
                "multiattach": False,
                "metadata": {},
                "volume_type": volume_type,
                "volume_type_id": type_id,
                "user_id": self.user_of(project_id),
                "os-vol-tenant-attr:tenant_id": project_id,
                "os-vol-host-attr:host": host,
                "os-vol-mig-status-attr:migstat": None,
                "os-vol-mig-status-attr:name_id": None,
                "migration_status": None,
                "replication_status": None,
                "consistencygroup_id": None,
                "group_id": None,
                "snapshot_id": None,
                "source_volid": None,
                "provider_id": None,
                "service_uuid": self._volume_service_uuid(backend) if host else None,
                "shared_targets": False if host else None,
                "cluster_name": None,
                "consumes_quota": True,
                "encryption_key_id": None,
            }

    def build_snapshots(self) -> None:
        """Snapshots of some volumes; a share of them forgotten for months."""
        volumes = [
            v for v in self.region.volumes.values() if v["status"] in ("available", "in-use")
        ]
        for number, volume in enumerate(volumes[3::10]):
            snapshot_id = self.uuid()
            volume_created = datetime.fromisoformat(volume["created_at"]).replace(tzinfo=UTC)
            age = (self.now - volume_created) / timedelta(days=1)
            if number % 3 == 0 and age > 200:
                created = self.ago(181, age - 1)
            else:
                created = self.ago(0, min(age, 60))
            if (self.now - created) > timedelta(days=180):
                self.truth["old_volume_snapshots"].append(snapshot_id)
            project_id = volume["os-vol-tenant-attr:tenant_id"]
            self.region.snapshots[snapshot_id] = {
                "id": snapshot_id,
                "name": f"{volume['name']}-snap-{number + 1:04d}",
                "description": None,
                "status": "available",
                "size": volume["size"],
                "volume_id": volume["id"],
                "metadata": {},
                "created_at": _iso_micro(created),
                "updated_at": _iso_micro(created + timedelta(seconds=40)),
                "os-extended-snapshot-attributes:progress": "100%",
                "os-extended-snapshot-attributes:project_id": project_id,
                "group_snapshot_id": None,
                "user_id": volume["user_id"],
                "consumes_quota": True,
            }

    def _backends(self) -> list[tuple[str, str, str]]:
        """(pool name, volume type, type id) of each Cinder back end."""
        if not hasattr(self, "_backend_list"):
            self._backend_list = [
                ("stor01@rbd-1#rbd-1", "standard", self.uuid()),
                ("stor02@rbd-ssd#rbd-ssd", "ssd", self.uuid()),
            ]
            for pool, type_name, type_id in self._backend_list:
                self.region.volume_types[type_id] = {
                    "id": type_id,
                    "name": type_name,
                    "description": f"{type_name} volumes on {pool.split('#')[1]}",
                    "is_public": True,
                    "os-volume-type-access:is_public": True,
                    "qos_specs_id": None,
                    "extra_specs": {"volume_backend_name": pool.split("#")[1]},
                }
            default_id = self.uuid()
            self.region.volume_types[default_id] = {
                "id": default_id,
                "name": "__DEFAULT__",
                "description": "Default Volume Type",
                "is_public": True,
                "os-volume-type-access:is_public": True,
                "qos_specs_id": None,
                "extra_specs": {},
            }
            self._volume_service_ids = {
                pool.split("#")[0]: self.uuid() for pool, _, _ in self._backend_list
            }
        return self._backend_list

    def _volume_service_uuid(self, pool: str) -> str:
        return self._volume_service_ids[pool.split("#")[0]]

    def build_block_storage_services(self) -> None:
        fresh = _iso_micro(self.now - timedelta(seconds=9))
        zone = "nova"
        services = self.region.volume_services
        for host in self.controllers:
            services.append(_volume_service("cinder-scheduler", host, zone, fresh))
        for pool, _, _ in self._backends():
            backend_host = pool.split("#")[0]
            service = _volume_service("cinder-volume", backend_host, zone, fresh)
            service["backend_state"] = "up"
            services.append(service)
        services.append(_volume_service("cinder-backup", self.controllers[0], zone, fresh))
        allocated = getattr(self, "pool_allocated", {})
        for pool, _volume_type, _ in self._backends():
            backend_name = pool.split("#")[1]
            used = allocated.get(pool, 0)
            total = max(10_240, math.ceil(used * 1.6 / 1024) * 1024)
            self.region.pools.append(
                {
                    "name": pool,
                    "capabilities": {
                        "pool_name": backend_name,
                        "volume_backend_name": backend_name,
                        "vendor_name": "Open Source",
                        "driver_version": "1.3.0",
                        "storage_protocol": "ceph",
                        "total_capacity_gb": float(total),
                        # Ceph reports real usage; thin volumes use about a third.
                        "free_capacity_gb": round(total - used * 0.35, 2),
                        "allocated_capacity_gb": used,
                        "provisioned_capacity_gb": used,
                        "max_over_subscription_ratio": "20.0",
                        "reserved_percentage": 0,
                        "thin_provisioning_support": True,
                        "thick_provisioning_support": False,
                        "multiattach": True,
                        "QoS_support": True,
                        "location_info": f"ceph:/etc/ceph/ceph.conf:{backend_name}",
                        "backend_state": "up",
                        "timestamp": _iso_micro(self.now - timedelta(seconds=20)),
                        "filter_function": None,
                        "goodness_function": None,
                    },
                }
            )

    # -- Ironic --------------------------------------------------------------------------

    def build_capacity_scenarios(self) -> None:
        """Capacity trouble, made last so nothing before changes (no random draws): the
        public network's allocation pool ends a little past its last used address, and
        the project using the most cores gets a cores quota just above its use."""
        region = self.region
        subnet = self.external_subnet
        if subnet is not None:
            used = subnet.next_host - 10
            spare = max(4, used // 8)
            last = min(
                subnet.cidr.network_address + subnet.next_host - 1 + spare,
                subnet.cidr.broadcast_address - 1,
            )
            region.subnets[subnet.id]["allocation_pools"] = [
                {"start": str(subnet.cidr.network_address + 10), "end": str(last)}
            ]
            if used / (used + spare) >= 0.8:
                self.truth["nearly_exhausted_external_networks"].append(subnet.network_id)
        cores: dict[str, int] = {}
        for server in region.servers.values():
            project = server["tenant_id"]
            cores[project] = cores.get(project, 0) + int(server["flavor"]["vcpus"])
        if cores:
            busiest = max(sorted(cores), key=lambda p: cores[p])
            limit = cores[busiest] + max(1, cores[busiest] // 20)
            region.quotas.setdefault("compute", {})[busiest] = {"cores": limit}
            self.truth["projects_near_cores_quota"].append(busiest)

    def build_agent_scenarios(self) -> None:
        """Network node trouble, made last (no random draws): one tenant network gets a
        second DHCP agent and the L3 agent of the last network node dies (with two
        network nodes or more). Every L3/DHCP agent then reports in `configurations` how
        many routers / networks it hosts, as real agents do in their heartbeats."""
        region = self.region
        hosts = self.network_hosts
        agents = list(region.agents.values())
        orphans = [
            p
            for p in region.ports.values()
            if p["status"] == "DOWN" and not p["device_owner"] and not p["binding:host_id"]
        ]
        if len(hosts) >= 2 and orphans:
            # the last forgotten DOWN port becomes a second DHCP port of its network, on
            # a network node that does not serve it yet (the port count stays the same)
            port = orphans[-1]
            network_id = port["network_id"]
            served = {
                p["binding:host_id"]
                for p in region.ports.values()
                if p["network_id"] == network_id and p["device_owner"] == "network:dhcp"
            }
            port.update(
                {
                    "device_id": f"dhcp{hosts[-1][:8]}-{network_id}",
                    "device_owner": "network:dhcp",
                    "status": "ACTIVE",
                    "binding:host_id": next(h for h in hosts if h not in served),
                    "binding:vif_type": "ovs",
                    "binding:vif_details": {
                        "connectivity": "l2",
                        "port_filter": True,
                        "ovs_hybrid_plug": False,
                        "datapath_type": "system",
                        "bridge_name": "br-int",
                    },
                    "port_security_enabled": False,
                    "security_groups": [],
                    "revision_number": 4,
                }
            )
            for agent in agents:
                if agent["agent_type"] == "L3 agent" and agent["host"] == hosts[-1]:
                    agent["alive"] = False
                    agent["heartbeat_timestamp"] = _space(self.now - timedelta(hours=2))
        l3_owners = ("network:router_gateway", "network:router_interface")
        on_host: dict[tuple[str, str], set[str]] = {}
        for port in region.ports.values():
            owner = port["device_owner"]
            what = "L3 agent" if owner in l3_owners else "DHCP agent"
            if owner in l3_owners or owner == "network:dhcp":
                item = port["device_id"] if what == "L3 agent" else port["network_id"]
                on_host.setdefault((what, port["binding:host_id"]), set()).add(item)
        hosting: dict[tuple[str, str], list[Obj]] = {}
        for agent in agents:
            count = {"L3 agent": "routers", "DHCP agent": "networks"}.get(agent["agent_type"])
            if count is None:
                continue
            items = on_host.get((agent["agent_type"], agent["host"]), set())
            agent["configurations"] = {**agent["configurations"], count: len(items)}
            for item in items:
                hosting.setdefault((agent["agent_type"], item), []).append(agent)
        truth = self.truth
        for router in region.routers.values():
            found = hosting.get(("L3 agent", router["id"]), [])
            if any(not a["alive"] for a in found):
                truth["routers_on_dead_l3_agents"].append(router["id"])
            if not router.get("ha") and sum(1 for a in found if a["alive"]) < 2:
                truth["single_l3_agent_routers"].append(router["id"])
        for network in region.networks.values():
            dhcp = any(region.subnets[s]["enable_dhcp"] for s in network["subnets"])
            found = hosting.get(("DHCP agent", network["id"]), [])
            if dhcp and sum(1 for a in found if a["alive"]) < 2:
                truth["single_dhcp_agent_networks"].append(network["id"])

    def build_baremetal_nodes(self) -> None:
        total = self.config.baremetal_nodes
        conductors = self.controllers
        for number in range(total):
            node_id = self.uuid()
            created = self.ago(100, 900)
            redfish = number % 2 == 0
            # made-up BMC addresses, but on loopback (127.20.x.y, nothing listens on
            # 443): a sweep that follows Ironic's driver_info never leaves the machine
            bmc_ip = f"127.20.{number // 250}.{number % 250 + 4}"
            if redfish:
                system_id = self.uuid()
                driver = "redfish"
                driver_info: Obj = {
                    "redfish_address": f"https://{bmc_ip}",
                    "redfish_system_id": f"/redfish/v1/Systems/{system_id}",
                    "redfish_username": "admin",
                    "redfish_password": "******",
                    "redfish_verify_ca": False,
                }
            else:
                driver = "ipmi"
                driver_info = {
                    "ipmi_address": bmc_ip,
                    "ipmi_username": "admin",
                    "ipmi_password": "******",
                }
            provision, target_power = "available", None
            power: str | None = "power off"
            maintenance, reason, last_error = False, None, None
            owner = None
            instance_info: Obj = {}
            fate = _NODE_FATES[number % len(_NODE_FATES)]
            if fate == "active":
                provision, power = "active", "power on"
                owner = self.identity.tenant_projects[number % len(self.identity.tenant_projects)]
                instance_info = {
                    "image_source": self.public_images[1 % len(self.public_images)],
                    "root_gb": "100",
                }
            elif fate in ("manageable", "enroll"):
                provision = fate
                power = None if fate == "enroll" else power
            elif fate == "maintenance":
                maintenance = True
                reason = "BMC unreachable after firmware update"
                self.truth["maintenance_baremetal_nodes"].append(node_id)
            elif fate == "deploy failed":
                provision = fate
                last_error = "Timeout reached while waiting for callback for node " + node_id
                self.truth["failed_baremetal_nodes"].append(node_id)
            elif fate == "clean failed":
                provision = fate
                maintenance = True
                reason = last_error = "Failed to tear down from cleaning for node " + node_id
                self.truth["failed_baremetal_nodes"].append(node_id)
                self.truth["maintenance_baremetal_nodes"].append(node_id)
            updated = self.ago(0, 60)
            self.region.nodes[node_id] = {
                "uuid": node_id,
                "name": f"bm-{self.region.name.lower()}-{number + 1:04d}",
                "power_state": power,
                "target_power_state": target_power,
                "provision_state": provision,
                "target_provision_state": None,
                "maintenance": maintenance,
                "maintenance_reason": reason,
                "fault": "power failure" if fate == "maintenance" else None,
                "last_error": last_error,
                "reservation": None,
                "driver": driver,
                "driver_info": driver_info,
                "driver_internal_info": {},
                "extra": {},
                "properties": {
                    "cpus": 64,
                    "memory_mb": 262_144,
                    "local_gb": 1800,
                    "cpu_arch": "x86_64",
                    "capabilities": "boot_mode:uefi",
                },
                "instance_info": instance_info,
                "instance_uuid": None,
                "chassis_uuid": None,
                "resource_class": "baremetal.general",
                "conductor_group": "",
                "conductor": conductors[number % len(conductors)],
                "owner": owner,
                "lessee": None,
                "protected": False,
                "protected_reason": None,
                "description": None,
                "allocation_uuid": None,
                "automated_clean": None,
                "retired": False,
                "retired_reason": None,
                "network_data": {},
                "boot_mode": "uefi" if power else None,
                "secure_boot": None,
                "shard": None,
                "parent_node": None,
                "console_enabled": False,
                "clean_step": {},
                "deploy_step": {},
                "raid_config": {},
                "target_raid_config": {},
                "inspection_started_at": None,
                "inspection_finished_at": None,
                "provision_updated_at": _iso_offset(updated),
                "created_at": _iso_offset(created),
                "updated_at": _iso_offset(updated),
                "traits": [],
                "bios_interface": "no-bios" if not redfish else "redfish",
                "boot_interface": "redfish-virtual-media" if redfish else "ipxe",
                "console_interface": "no-console",
                "deploy_interface": "direct",
                "firmware_interface": "redfish" if redfish else "no-firmware",
                "inspect_interface": "redfish" if redfish else "inspector",
                "management_interface": driver,
                "network_interface": "flat",
                "power_interface": driver,
                "raid_interface": "no-raid",
                "rescue_interface": "no-rescue",
                "storage_interface": "noop",
                "vendor_interface": "no-vendor" if redfish else "ipmitool",
            }


# -- shape builders (pure) ----------------------------------------------------------------


def _nearly_full(h: _Host) -> bool:
    vcpu_share = h.vcpu_used / h.vcpu_capacity if h.vcpu_capacity else 0.0
    ram_share = h.ram_used / h.ram_capacity if h.ram_capacity else 0.0
    return max(vcpu_share, ram_share) >= 0.90


def _parse_z(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _inventory(total: int, reserved: int, ratio: float, max_unit: int) -> Obj:
    return {
        "total": total,
        "reserved": reserved,
        "min_unit": 1,
        "max_unit": max_unit,
        "step_size": 1,
        "allocation_ratio": ratio,
    }


def _compute_service(service_id: str, binary: str, host: str, zone: str, updated: str) -> Obj:
    return {
        "id": service_id,
        "binary": binary,
        "host": host,
        "zone": zone,
        "status": "enabled",
        "state": "up",
        "updated_at": updated,
        "disabled_reason": None,
        "forced_down": False,
    }


def _volume_service(binary: str, host: str, zone: str, updated: str) -> Obj:
    return {
        "binary": binary,
        "host": host,
        "zone": zone,
        "status": "enabled",
        "state": "up",
        "updated_at": updated,
        "disabled_reason": None,
        "cluster": None,
        "replication_status": "disabled" if binary == "cinder-volume" else None,
        "active_backend_id": None,
        "frozen": False,
    }


def _nova_address(port: Obj) -> Obj:
    return {
        "addr": port["fixed_ips"][0]["ip_address"],
        "version": 4,
        "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
        "OS-EXT-IPS:type": "fixed",
    }


def _network(
    network_id: str,
    name: str,
    project_id: str,
    subnets: list[str],
    network_type: str,
    segmentation_id: int | None,
    mtu: int,
    *,
    external: bool,
    shared: bool,
    times: Obj,
    physical_network: str | None = None,
) -> Obj:
    return {
        "id": network_id,
        "name": name,
        "tenant_id": project_id,
        "project_id": project_id,
        "admin_state_up": True,
        "status": "ACTIVE",
        "subnets": subnets,
        "shared": shared,
        "router:external": external,
        # auto-allocated-topology shows is_default on external networks only
        **({"is_default": True} if external else {}),
        "availability_zone_hints": [],
        "availability_zones": ["nova"],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "description": "",
        "mtu": mtu,
        "port_security_enabled": True,
        "dns_domain": "",
        "qos_policy_id": None,
        "l2_adjacency": True,
        "provider:network_type": network_type,
        "provider:physical_network": physical_network,
        "provider:segmentation_id": segmentation_id,
        "tags": [],
        "revision_number": 2,
        **times,
    }


def _subnet(subnet: _Subnet, project_id: str, *, enable_dhcp: bool, times: Obj) -> Obj:
    cidr = subnet.cidr
    return {
        "id": subnet.id,
        "name": f"{subnet.network_name}-subnet",
        "network_id": subnet.network_id,
        "tenant_id": project_id,
        "project_id": project_id,
        "ip_version": 4,
        "cidr": str(cidr),
        "gateway_ip": subnet.gateway,
        "allocation_pools": [
            {"start": str(cidr.network_address + 2), "end": str(cidr.broadcast_address - 1)}
        ],
        "host_routes": [],
        "dns_nameservers": [] if not enable_dhcp else ["10.0.0.53"],
        "enable_dhcp": enable_dhcp,
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
        "subnetpool_id": None,
        "service_types": [],
        "segment_id": None,
        "dns_publish_fixed_ip": False,
        "description": "",
        "tags": [],
        "revision_number": 0,
        **times,
    }
