"""Capacity planning over the inventory: how full the cloud is and what still fits.

Everything here is a pure computation over store records (plain dicts of the kinds in
`stackfleet.model.kinds`), so a report is as fresh as the last pass and costs no API call:

- **allocation** per hypervisor and resource class, from Placement's inventory and usage
  as the hypervisor records carry them — VCPU and dedicated PCPU apart, as Placement
  counts them (capacity = (total - reserved) × allocation_ratio);
- **flavor fit**: how many more servers of each flavor fit, host by host (the smallest
  of free ÷ demand over the flavor's resource classes), summed per region and zone;
- **N+1**: whether a region survives losing its largest host — the servers of that host
  are packed first-fit-decreasing onto the free capacity of the other enabled, up hosts;
- **quotas**: per project, usage counted from the inventory against the limits the
  quota sweep read (-1 = unlimited; a limit not read is unknown, never 0 or unlimited);
- **IP pools**: used and total addresses of every external network (Neutron's IP
  availability, joined onto the network records);
- **network nodes**: the agents of each host, the routers and networks they host, and
  routers or networks that hang on a single agent;
- **storage**: Cinder pools with capacity, free space, provisioned ratio and volumes.

`load_fleet` reads what these need from the store; `capacity_report` and friends turn
it into rows for the CLI, the API and /metrics.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackfleet.engine.quota_sweep import stored_limits
from stackfleet.sources.openstack.capacity import read_at_epoch
from stackfleet.sources.openstack.quotas import QUOTA_RESOURCES
from stackfleet.store import Store

# Placement resource classes as hypervisor records name them
RESOURCE_CLASSES = ("vcpu", "pcpu", "memory_mb", "disk_gb")
# kinds a capacity report reads
CAPACITY_KINDS = (
    "hypervisor",
    "compute_service",
    "flavor",
    "server",
    "project",
    "volume",
    "floating_ip",
    "port",
    "network",
    "router",
    "network_agent",
    "storage_pool",
)
# what each view reads (loading 40,000 ports for a flavor fit would be waste)
REPORT_KINDS = ("hypervisor", "compute_service", "flavor", "server")
FLAVOR_FIT_KINDS = ("hypervisor", "compute_service", "flavor")
QUOTA_KINDS = ("project", "server", "volume", "floating_ip", "port")
# a usage at or above this share of a limit or of a pool is reported as "high"
HIGH_PERCENT = 80.0

Record = dict[str, Any]
RegionKey = tuple[str, str]


# -- records -----------------------------------------------------------------------------


@dataclass
class Fleet:
    """The records a capacity report reads, by kind (every cloud and region mixed)."""

    records: dict[str, list[Record]] = field(default_factory=dict)
    # (cloud, region, project_id) -> resource -> (limit, error); from the quota sweep
    quota_limits: dict[tuple[str, str, str], dict[str, tuple[int | None, str | None]]] = field(
        default_factory=dict
    )

    def of(self, kind: str) -> list[Record]:
        return self.records.get(kind, [])

    def regions(self) -> list[RegionKey]:
        keys = {(r["cloud"], r["region"]) for records in self.records.values() for r in records}
        return sorted(keys)


def load_fleet(
    store: Store,
    cloud: str | None = None,
    region: str | None = None,
    kinds: Sequence[str] = CAPACITY_KINDS,
) -> Fleet:
    """The current (not gone) records of `kinds`, and the newest quota limits."""
    fleet = Fleet()
    for kind in kinds:
        fleet.records[kind], _ = store.list_resources(kind, cloud=cloud, region=region)
    if "project" in kinds:
        fleet.quota_limits = stored_limits(store, cloud, region)
    return fleet


def _region(record: Record) -> RegionKey:
    return (str(record.get("cloud") or ""), str(record.get("region") or ""))


def _pct(used: float | None, total: float | None) -> float | None:
    if used is None or not total:
        return None
    return round(100.0 * used / total, 1)


# -- hosts -------------------------------------------------------------------------------


@dataclass
class HostCapacity:
    """One hypervisor's Placement capacity and allocations, per resource class. A class
    the host has no inventory of has no entry in `capacity`."""

    cloud: str
    region: str
    host: str
    hypervisor_hostname: str
    hypervisor_id: str
    zone: str | None
    usable: bool  # enabled and up: the scheduler may place servers on it
    capacity: dict[str, int] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)

    def free(self, rc: str) -> int:
        if rc not in self.capacity:
            return 0
        return max(0, self.capacity[rc] - self.used.get(rc, 0))

    def percent(self, rc: str) -> float | None:
        return _pct(self.used.get(rc, 0), self.capacity.get(rc))

    def as_row(self) -> Record:
        row: Record = {
            "cloud": self.cloud,
            "region": self.region,
            "host": self.host,
            "hypervisor_hostname": self.hypervisor_hostname,
            "zone": self.zone,
            "usable": self.usable,
        }
        for rc in RESOURCE_CLASSES:
            row[f"{rc}_capacity"] = self.capacity.get(rc)
            row[f"{rc}_used"] = self.used.get(rc) if rc in self.capacity else None
            row[f"{rc}_percent"] = self.percent(rc)
        return row


def host_capacities(
    hypervisors: Iterable[Record], compute_services: Iterable[Record] = ()
) -> list[HostCapacity]:
    """Every hypervisor's capacity; its zone comes from its nova-compute service."""
    zones = {
        (*_region(s), s.get("host")): s.get("zone")
        for s in compute_services
        if s.get("binary") == "nova-compute"
    }
    hosts = []
    for hyp in hypervisors:
        cloud, region = _region(hyp)
        host = str(hyp.get("host") or hyp.get("hypervisor_hostname") or hyp.get("id"))
        item = HostCapacity(
            cloud=cloud,
            region=region,
            host=host,
            hypervisor_hostname=str(hyp.get("hypervisor_hostname") or hyp.get("name") or host),
            hypervisor_id=str(hyp.get("id")),
            zone=zones.get((cloud, region, host)),
            usable=hyp.get("enabled") == "enabled" and hyp.get("state") == "up",
        )
        for rc in RESOURCE_CLASSES:
            capacity = hyp.get(f"{rc}_capacity")
            if capacity is None or hyp.get(f"{rc}_total") in (None, 0):
                continue
            item.capacity[rc] = int(capacity)
            item.used[rc] = int(hyp.get(f"{rc}_used") or 0)
        hosts.append(item)
    hosts.sort(key=lambda h: (h.cloud, h.region, h.host))
    return hosts


# -- demand ------------------------------------------------------------------------------


def is_dedicated(extra_specs: dict[str, Any] | None) -> bool:
    """Whether a flavor asks for pinned CPUs (Placement PCPU rather than VCPU)."""
    return str((extra_specs or {}).get("hw:cpu_policy", "")).lower() == "dedicated"


def flavor_demand(flavor: Record) -> dict[str, int]:
    """What one server of `flavor` allocates in Placement, by resource class.

    As Nova asks it of Placement: vCPUs as PCPU when `hw:cpu_policy=dedicated`, else VCPU;
    MEMORY_MB the RAM; DISK_GB root + ephemeral + swap (MiB, rounded up to GiB) for an
    image-backed server. Explicit `resources:<CLASS>` extra specs override."""
    specs = flavor.get("extra_specs") or {}
    vcpus = int(flavor.get("vcpus") or 0)
    # Nova says swap "" when there is none (before microversion 2.75)
    swap = str(flavor.get("swap") or "0")
    swap_mb = int(swap) if swap.isdigit() else 0
    demand = {
        "pcpu" if is_dedicated(specs) else "vcpu": vcpus,
        "memory_mb": int(flavor.get("ram") or 0),
        "disk_gb": int(flavor.get("disk") or 0)
        + int(flavor.get("ephemeral") or 0)
        + math.ceil(swap_mb / 1024),
    }
    for key, value in specs.items():
        if key.startswith("resources:") and key[len("resources:") :].lower() in RESOURCE_CLASSES:
            try:
                demand[key[len("resources:") :].lower()] = int(value)
            except (TypeError, ValueError):
                continue
    return {rc: amount for rc, amount in demand.items() if amount > 0}


def server_demand(
    server: Record, flavors_by_name: dict[RegionKey, dict[str, Record]]
) -> dict[str, int]:
    """What a server allocates, from its embedded flavor (and the flavor record, by name,
    for CPU pinning). A volume-backed server (no image) takes no local disk."""
    flavor = flavors_by_name.get(_region(server), {}).get(str(server.get("flavor_name")))
    dedicated = is_dedicated(flavor.get("extra_specs")) if flavor else False
    demand = {
        "pcpu" if dedicated else "vcpu": int(server.get("vcpus") or 0),
        "memory_mb": int(server.get("ram_mb") or 0),
        "disk_gb": int(server.get("disk_gb") or 0) if server.get("image_id") else 0,
    }
    return {rc: amount for rc, amount in demand.items() if amount > 0}


def fits(host: HostCapacity, demand: dict[str, int]) -> int:
    """How many servers of `demand` fit in the host's free capacity."""
    counts = [host.free(rc) // amount for rc, amount in demand.items() if amount > 0]
    return min(counts) if counts else 0


# -- flavor fit --------------------------------------------------------------------------


def flavor_fit(fleet: Fleet) -> list[Record]:
    """Per region, zone and flavor: how many more servers of the flavor fit on its enabled,
    up hosts (zone None: the whole region)."""
    hosts = host_capacities(fleet.of("hypervisor"), fleet.of("compute_service"))
    by_region: dict[RegionKey, list[HostCapacity]] = defaultdict(list)
    for host in hosts:
        if host.usable:
            by_region[(host.cloud, host.region)].append(host)
    rows: list[Record] = []
    for flavor in sorted(
        fleet.of("flavor"),
        key=lambda f: (_region(f), f.get("vcpus") or 0, f.get("ram") or 0, str(f.get("name"))),
    ):
        key = _region(flavor)
        demand = flavor_demand(flavor)
        region_hosts = by_region.get(key, [])
        per_zone: dict[str | None, int] = defaultdict(int)
        total = 0
        for host in region_hosts:
            count = fits(host, demand) if demand else 0
            total += count
            per_zone[host.zone] += count
        base = {
            "cloud": key[0],
            "region": key[1],
            "flavor": flavor.get("name"),
            "flavor_id": flavor.get("id"),
            "vcpus": flavor.get("vcpus"),
            "ram_mb": flavor.get("ram"),
            "disk_gb": flavor.get("disk"),
            "cpu": "dedicated" if "pcpu" in demand else "shared",
        }
        rows.append({**base, "zone": None, "fits": total, "hosts": len(region_hosts)})
        zones = {h.zone for h in region_hosts}
        if len(zones) > 1:
            for zone in sorted(z for z in zones if z is not None):
                zone_hosts = sum(1 for h in region_hosts if h.zone == zone)
                rows.append({**base, "zone": zone, "fits": per_zone[zone], "hosts": zone_hosts})
    return rows


# -- N+1 ---------------------------------------------------------------------------------


@dataclass
class NPlusOne:
    """Whether a region survives losing its largest host."""

    cloud: str
    region: str
    lost_host: str | None
    servers: int
    survives: bool | None  # None: not enough hosts to say
    unplaced: list[str]
    headroom: dict[str, int]
    headroom_percent: dict[str, float | None]
    reason: str | None = None

    def as_row(self) -> Record:
        row: Record = {
            "cloud": self.cloud,
            "region": self.region,
            "lost_host": self.lost_host,
            "servers_to_move": self.servers,
            "survives": self.survives,
            "unplaced_servers": self.unplaced,
            "reason": self.reason,
        }
        for rc in RESOURCE_CLASSES:
            row[f"{rc}_headroom"] = self.headroom.get(rc)
            row[f"{rc}_headroom_percent"] = self.headroom_percent.get(rc)
        return row


def _biggest_first(item: tuple[dict[str, int], Record]) -> tuple[int, int, int]:
    """The sort key of a (demand, server) pair: memory, then CPUs, then disk."""
    demand = item[0]
    return (
        demand.get("memory_mb", 0),
        demand.get("vcpu", 0) + demand.get("pcpu", 0),
        demand.get("disk_gb", 0),
    )


def largest_host(hosts: Sequence[HostCapacity]) -> HostCapacity | None:
    """The usable host with the most allocated: memory first, then CPUs (VCPU + PCPU)."""
    usable = [h for h in hosts if h.usable]
    if not usable:
        return None
    return max(
        usable,
        key=lambda h: (
            h.used.get("memory_mb", 0),
            h.used.get("vcpu", 0) + h.used.get("pcpu", 0),
            h.used.get("disk_gb", 0),
            h.host,
        ),
    )


def n_plus_one(
    cloud: str,
    region: str,
    hosts: Sequence[HostCapacity],
    servers: Sequence[Record],
    flavors_by_name: dict[RegionKey, dict[str, Record]],
) -> NPlusOne:
    """Lose the largest usable host of one region and pack its servers, biggest first,
    onto the first surviving usable host with room (first-fit decreasing)."""
    lost = largest_host(hosts)
    survivors = [h for h in hosts if h.usable and h is not lost]
    if lost is None or not survivors:
        return NPlusOne(
            cloud, region, lost.host if lost else None, 0, None, [], {}, {},
            reason="fewer than two enabled, up hosts",
        )  # fmt: skip
    moving = [
        (server_demand(s, flavors_by_name), s)
        for s in servers
        if s.get("host") == lost.host or s.get("hypervisor_hostname") == lost.hypervisor_hostname
    ]
    moving.sort(key=_biggest_first, reverse=True)
    free = [{rc: h.free(rc) for rc in h.capacity} for h in survivors]
    unplaced: list[str] = []
    for demand, server in moving:
        for room in free:
            if all(room.get(rc, 0) >= amount for rc, amount in demand.items()):
                for rc, amount in demand.items():
                    room[rc] -= amount
                break
        else:
            unplaced.append(str(server.get("name") or server.get("id")))
    headroom: dict[str, int] = {}
    percent: dict[str, float | None] = {}
    for rc in RESOURCE_CLASSES:
        capacity = sum(h.capacity.get(rc, 0) for h in survivors)
        if not capacity:
            continue
        headroom[rc] = sum(room.get(rc, 0) for room in free)
        percent[rc] = _pct(headroom[rc], capacity)
    return NPlusOne(
        cloud, region, lost.host, len(moving), not unplaced, sorted(unplaced), headroom, percent
    )


# -- drain fit ---------------------------------------------------------------------------

# how a shortfall names each resource class
_RC_WORDS = {"vcpu": "vCPU", "pcpu": "pinned CPU", "memory_mb": "MB RAM", "disk_gb": "GB disk"}


def _amounts(demand: dict[str, int]) -> str:
    return ", ".join(f"{amount} {_RC_WORDS[rc]}" for rc, amount in demand.items())


@dataclass
class DrainFit:
    """Whether the servers of a host to drain fit on the hosts left to take them."""

    host: str
    destinations: list[str]
    servers: int
    # server label -> why it fits nowhere (its flavor, what it needs, what is missing)
    unplaced: dict[str, str] = field(default_factory=dict)
    # resource class -> how much the servers need beyond the destinations' free total
    short: dict[str, int] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return not self.unplaced

    def message(self) -> str:
        where = ", ".join(self.destinations) or "none"
        text = (
            f"{len(self.unplaced)} of the {self.servers} servers of {self.host} fit on no "
            f"other usable host that could take them ({where}): "
            + "; ".join(f"{name}: {why}" for name, why in self.unplaced.items())
        )
        if self.short:
            text += "; short in total: " + _amounts(self.short)
        return text


def drain_fit(
    host: str,
    moving: Sequence[Record],
    destinations: Sequence[HostCapacity],
    flavors_by_name: dict[RegionKey, dict[str, Record]],
    anti_affinity: dict[str, set[str]],
    group_hosts: dict[str, set[str]],
) -> DrainFit:
    """Pack the servers of `host` (biggest first) onto the free capacity of
    `destinations` (first fit), never two members of one anti-affinity group on one host:
    `anti_affinity` maps a server id to its hard anti-affinity groups, `group_hosts` a
    group to the hosts its members already run on (outside `host`). What Nova's
    scheduler would do, from the inventory, before anything is disabled or moved."""
    result = DrainFit(host, sorted(h.host for h in destinations), len(moving))
    demands = [(server_demand(s, flavors_by_name), s) for s in moving]
    demands.sort(key=_biggest_first, reverse=True)
    free = {h.host: {rc: h.free(rc) for rc in h.capacity} for h in destinations}
    taken = {group: set(hosts) for group, hosts in group_hosts.items()}
    for demand, server in demands:
        groups = anti_affinity.get(str(server.get("id")), set())
        roomy = [
            name
            for name, room in free.items()
            if all(room.get(rc, 0) >= amount for rc, amount in demand.items())
        ]
        allowed = [name for name in roomy if not any(name in taken.get(g, ()) for g in groups)]
        if allowed:
            chosen = allowed[0]
            for rc, amount in demand.items():
                free[chosen][rc] -= amount
            for group in groups:
                taken.setdefault(group, set()).add(chosen)
            continue
        label_ = str(server.get("name") or server.get("id"))
        flavor = f"flavor {server.get('flavor_name') or '?'} needs {_amounts(demand)}"
        if roomy:
            why = (
                f"{flavor}; the hosts with room ({', '.join(roomy)}) already hold a member "
                f"of its anti-affinity group {', '.join(sorted(groups))}"
            )
        else:
            lacking = sorted(
                {
                    _RC_WORDS[rc]
                    for rc, amount in demand.items()
                    if not any(room.get(rc, 0) >= amount for room in free.values())
                }
            )
            why = f"{flavor}; no host has enough {' / '.join(lacking) or 'room for all of it'}"
        result.unplaced[label_] = why
    for rc in RESOURCE_CLASSES:
        needed = sum(d.get(rc, 0) for d, _ in demands)
        available = sum(h.free(rc) for h in destinations)
        if needed > available:
            result.short[rc] = needed - available
    return result


def flavors_by_name(flavors: Iterable[Record]) -> dict[RegionKey, dict[str, Record]]:
    result: dict[RegionKey, dict[str, Record]] = defaultdict(dict)
    for flavor in flavors:
        result[_region(flavor)][str(flavor.get("name"))] = flavor
    return result


# -- the region report -------------------------------------------------------------------


def capacity_report(fleet: Fleet) -> list[Record]:
    """Per region: hosts (usable of all), allocation % per resource class over the usable
    hosts, and the N+1 verdict with its headroom."""
    hosts = host_capacities(fleet.of("hypervisor"), fleet.of("compute_service"))
    flavors = flavors_by_name(fleet.of("flavor"))
    servers: dict[RegionKey, list[Record]] = defaultdict(list)
    for server in fleet.of("server"):
        servers[_region(server)].append(server)
    by_region: dict[RegionKey, list[HostCapacity]] = defaultdict(list)
    for host in hosts:
        by_region[(host.cloud, host.region)].append(host)
    rows = []
    for (cloud, region), region_hosts in sorted(by_region.items()):
        usable = [h for h in region_hosts if h.usable]
        row: Record = {
            "cloud": cloud,
            "region": region,
            "hosts": len(region_hosts),
            "usable_hosts": len(usable),
        }
        for rc in RESOURCE_CLASSES:
            capacity = sum(h.capacity.get(rc, 0) for h in usable)
            used = sum(h.used.get(rc, 0) for h in usable if rc in h.capacity)
            row[f"{rc}_capacity"] = capacity if capacity else None
            row[f"{rc}_used"] = used if capacity else None
            row[f"{rc}_percent"] = _pct(used, capacity)
        verdict = n_plus_one(cloud, region, region_hosts, servers[(cloud, region)], flavors)
        row["n_plus_one"] = verdict.as_row()
        rows.append(row)
    return rows


def hypervisor_rows(fleet: Fleet) -> list[Record]:
    """Per hypervisor: capacity, used and allocation % per resource class."""
    return [
        h.as_row() for h in host_capacities(fleet.of("hypervisor"), fleet.of("compute_service"))
    ]


# -- quotas ------------------------------------------------------------------------------

# resource -> (kind counted, how): a count of records, or the sum of a field
USAGE_SOURCES: dict[str, tuple[str, str | None]] = {
    "cores": ("server", "vcpus"),
    "ram_mb": ("server", "ram_mb"),
    "instances": ("server", None),
    "volumes": ("volume", None),
    "gigabytes": ("volume", "size"),
    "floating_ips": ("floating_ip", None),
    "ports": ("port", None),
}


def project_usage(fleet: Fleet) -> dict[tuple[str, str, str], dict[str, int]]:
    """Per (cloud, region, project): usage of each quota resource, counted from the
    inventory (every server counts, as Nova counts them, whatever its state)."""
    usage: dict[tuple[str, str, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(USAGE_SOURCES, 0)
    )
    for resource, (kind, value_field) in USAGE_SOURCES.items():
        for record in fleet.of(kind):
            project = record.get("project_id")
            if not project:
                continue
            amount = 1 if value_field is None else int(record.get(value_field) or 0)
            usage[(*_region(record), str(project))][resource] += amount
    return dict(usage)


def quota_rows(fleet: Fleet, project: str | None = None) -> list[Record]:
    """Per project and quota resource: used, limit (-1 unlimited, None unknown), percent,
    state ("ok", "high", "over", "unlimited", "unknown") and why a limit is unknown."""
    usage = project_usage(fleet)
    names = {(*_region(p), str(p.get("id"))): p.get("name") for p in fleet.of("project")}
    keys = set(usage) | set(fleet.quota_limits)
    rows = []
    for key in sorted(keys):
        cloud, region, project_id = key
        if project and project not in (project_id, names.get(key)):
            continue
        limits = fleet.quota_limits.get(key, {})
        used = usage.get(key, dict.fromkeys(USAGE_SOURCES, 0))
        for resource, service in QUOTA_RESOURCES.items():
            limit, error = limits.get(
                resource, (None, "not read yet (see `stackfleet capacity sweep`)")
            )
            count = used.get(resource, 0)
            if limit is None:
                state, percent = "unknown", None
            elif limit < 0:
                state, percent = "unlimited", None
            else:
                percent = _pct(count, limit) if limit else (100.0 if count else 0.0)
                state = (
                    "over"
                    if count > limit
                    else ("high" if (percent or 0) >= HIGH_PERCENT else "ok")
                )
            rows.append(
                {
                    "cloud": cloud,
                    "region": region,
                    "project_id": project_id,
                    "project": names.get(key),
                    "service": service,
                    "resource": resource,
                    "used": count,
                    "limit": limit,
                    "percent": percent,
                    "state": state,
                    "error": error if limit is None else None,
                }
            )
    return rows


# -- IP pools ----------------------------------------------------------------------------


def ip_pool_rows(fleet: Fleet, external_only: bool = True) -> list[Record]:
    """External networks (or all) with used / total addresses; None when not read."""
    rows = []
    for net in sorted(fleet.of("network"), key=lambda n: (_region(n), str(n.get("name")))):
        if external_only and not net.get("external"):
            continue
        total, used = net.get("ip_total"), net.get("ip_used")
        percent = _pct(used, total)
        rows.append(
            {
                "cloud": net.get("cloud"),
                "region": net.get("region"),
                "network_id": net.get("id"),
                "network": net.get("name"),
                "used": used,
                "total": total,
                "free": total - used if total is not None and used is not None else None,
                "percent": percent,
                "state": (
                    "unknown"
                    if total is None
                    else ("high" if percent is not None and percent >= HIGH_PERCENT else "ok")
                ),
                "subnets": net.get("ip_subnets"),
            }
        )
    return rows


# -- network nodes -----------------------------------------------------------------------


def network_node_rows(fleet: Fleet, host: str | None = None) -> list[Record]:
    """Per Neutron agent: host, type, liveness, and the routers / networks it hosts (by
    name); `shared_with` counts the other agents hosting the same router or network."""
    routers = {(*_region(r), r.get("id")): r.get("name") for r in fleet.of("router")}
    networks = {(*_region(n), n.get("id")): n.get("name") for n in fleet.of("network")}
    hosting: dict[tuple[str, str, str, str], list[Record]] = defaultdict(list)
    for agent in fleet.of("network_agent"):
        for field_name, what in (
            ("hosted_router_ids", "router"),
            ("hosted_network_ids", "network"),
        ):
            for item in agent.get(field_name) or []:
                hosting[(*_region(agent), what, item)].append(agent)
    rows = []
    for agent in sorted(
        fleet.of("network_agent"),
        key=lambda a: (_region(a), str(a.get("host")), str(a.get("agent_type"))),
    ):
        if host and agent.get("host") != host:
            continue
        cloud, region = _region(agent)
        hosted_routers = agent.get("hosted_router_ids")
        hosted_networks = agent.get("hosted_network_ids")
        single = [
            item
            for what, ids in (("router", hosted_routers), ("network", hosted_networks))
            for item in ids or []
            if len(hosting[(cloud, region, what, item)]) == 1
        ]
        rows.append(
            {
                "cloud": cloud,
                "region": region,
                "host": agent.get("host"),
                "agent_id": agent.get("id"),
                "agent_type": agent.get("agent_type"),
                "alive": agent.get("alive"),
                "admin_state_up": agent.get("admin_state_up"),
                "routers": (
                    None
                    if hosted_routers is None
                    else [routers.get((cloud, region, r)) or r for r in hosted_routers]
                ),
                "networks": (
                    None
                    if hosted_networks is None
                    else [networks.get((cloud, region, n)) or n for n in hosted_networks]
                ),
                "single_agent_items": len(single),
                # the routers / networks are carried between passes: when they were read
                "hosting_read_at": agent.get("hosting_read_at"),
                "hosting_age_s": _age(agent.get("hosting_read_at")),
            }
        )
    return rows


def _age(read_at: Any) -> int | None:
    """Whole seconds since an ISO 8601 UTC time; None when there is none."""
    epoch = read_at_epoch(read_at)
    return None if epoch is None else max(0, int(time.time() - epoch))


def single_agent_rows(fleet: Fleet) -> list[Record]:
    """Routers and networks hosted by exactly one agent, or only by dead ones."""
    names = {(*_region(r), "router", r.get("id")): r.get("name") for r in fleet.of("router")}
    names |= {(*_region(n), "network", n.get("id")): n.get("name") for n in fleet.of("network")}
    hosting: dict[tuple[str, str, str, str], list[Record]] = defaultdict(list)
    for agent in fleet.of("network_agent"):
        for field_name, what in (
            ("hosted_router_ids", "router"),
            ("hosted_network_ids", "network"),
        ):
            for item in agent.get(field_name) or []:
                hosting[(*_region(agent), what, item)].append(agent)
    rows = []
    for (cloud, region, what, item), agents in sorted(hosting.items()):
        alive = [a for a in agents if a.get("alive")]
        if len(agents) > 1 and alive:
            continue
        rows.append(
            {
                "cloud": cloud,
                "region": region,
                "kind": what,
                "id": item,
                "name": names.get((cloud, region, what, item)),
                "agents": len(agents),
                "alive_agents": len(alive),
                "hosts": sorted(str(a.get("host")) for a in agents),
            }
        )
    return rows


# -- storage -----------------------------------------------------------------------------


def storage_pool_rows(fleet: Fleet, host: str | None = None) -> list[Record]:
    """Cinder pools (`host@backend#pool`): capacity, free, provisioned ratio
    (provisioned ÷ total) and the volumes on each (their `os-vol-host-attr:host`)."""
    volumes: dict[tuple[str, str, str], int] = defaultdict(int)
    for volume in fleet.of("volume"):
        if volume.get("backend_host"):
            volumes[(*_region(volume), str(volume["backend_host"]))] += 1
    rows = []
    for pool in sorted(fleet.of("storage_pool"), key=lambda p: (_region(p), str(p.get("name")))):
        name = str(pool.get("name") or pool.get("id"))
        pool_host = name.split("@", 1)[0]
        if host and pool_host != host:
            continue
        total = pool.get("total_capacity_gb")
        provisioned = pool.get("provisioned_capacity_gb")
        rows.append(
            {
                "cloud": pool.get("cloud"),
                "region": pool.get("region"),
                "pool": name,
                "host": pool_host,
                "backend": pool.get("volume_backend_name"),
                "total_gb": total,
                "free_gb": pool.get("free_capacity_gb"),
                "capacity_reported": pool.get("capacity_reported"),
                "free_percent": _pct(pool.get("free_capacity_gb"), total),
                "provisioned_gb": provisioned,
                "provisioned_ratio": (
                    round(provisioned / total, 2) if provisioned is not None and total else None
                ),
                "max_over_subscription_ratio": pool.get("max_over_subscription_ratio"),
                "volumes": volumes.get((*_region(pool), name), 0),
            }
        )
    return rows


# -- one host ----------------------------------------------------------------------------


def host_roles(store: Store, host: str) -> Record:
    """What a network or storage host carries: its Neutron agents with the routers and
    networks they host, and its Cinder pools. Empty when it has neither."""
    view: Record = {}
    agents, _ = store.list_resources("network_agent", filters={"host": host})
    if agents:
        fleet = Fleet({"network_agent": agents})
        for kind in ("router", "network"):
            fleet.records[kind] = [
                r
                for region in {_region(a) for a in agents}
                for r in store.list_resources(kind, cloud=region[0], region=region[1])[0]
            ]
        view["network_agents"] = [
            {
                "agent": f"{row['agent_type']} ({'alive' if row['alive'] else 'dead'}, "
                f"{'up' if row['admin_state_up'] else 'admin down'})",
                "routers": row["routers"],
                "networks": row["networks"],
            }
            for row in network_node_rows(fleet, host)
        ]
    pools, _ = store.list_resources("storage_pool")
    mine = [p for p in pools if str(p.get("name") or "").split("@", 1)[0] == host]
    if mine:
        volumes = [
            v
            for region in {_region(p) for p in mine}
            for v in store.list_resources("volume", cloud=region[0], region=region[1])[0]
        ]
        rows = storage_pool_rows(Fleet({"storage_pool": mine, "volume": volumes}), host)
        view["storage_pools"] = [
            {k: row[k] for k in ("pool", "total_gb", "free_gb", "provisioned_ratio", "volumes")}
            for row in rows
        ]
    return view
