"""In-memory state of the simulated cloud.

Every resource is kept as the JSON object the real service's API returns for it in its
*detail* representation (latest microversion the simulator serves), keyed by id in
insertion order. Routes serialise these dicts directly; older microversions are derived
by the route that serves them. The generator fills this state; actions change it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass
class RegionState:
    """Resources of one region. Keys are the API's ids (uuid strings, or ints where the
    API uses ints)."""

    name: str
    # Nova
    servers: dict[str, Obj] = field(default_factory=dict)
    flavors: dict[str, Obj] = field(default_factory=dict)
    hypervisors: dict[str, Obj] = field(default_factory=dict)
    compute_services: dict[str, Obj] = field(default_factory=dict)
    server_groups: dict[str, Obj] = field(default_factory=dict)
    # key pairs by "user_id:name" (Nova keeps them per user)
    keypairs: dict[str, Obj] = field(default_factory=dict)
    # Nova migrations (os-migrations objects) by migration uuid; Placement holds a cold
    # migration's source allocation under this uuid until the resize is confirmed.
    migrations: dict[str, Obj] = field(default_factory=dict)
    # Placement: provider uuid -> provider object; inventories and usages by provider uuid
    resource_providers: dict[str, Obj] = field(default_factory=dict)
    inventories: dict[str, dict[str, Obj]] = field(default_factory=dict)
    usages: dict[str, dict[str, int]] = field(default_factory=dict)
    # provider uuid -> aggregate uuids / trait names
    provider_aggregates: dict[str, list[str]] = field(default_factory=dict)
    provider_traits: dict[str, list[str]] = field(default_factory=dict)
    # Neutron
    networks: dict[str, Obj] = field(default_factory=dict)
    subnets: dict[str, Obj] = field(default_factory=dict)
    ports: dict[str, Obj] = field(default_factory=dict)
    floatingips: dict[str, Obj] = field(default_factory=dict)
    routers: dict[str, Obj] = field(default_factory=dict)
    agents: dict[str, Obj] = field(default_factory=dict)
    security_groups: dict[str, Obj] = field(default_factory=dict)
    security_group_rules: dict[str, Obj] = field(default_factory=dict)
    # Cinder
    volumes: dict[str, Obj] = field(default_factory=dict)
    volume_services: list[Obj] = field(default_factory=list)
    pools: list[Obj] = field(default_factory=list)
    # volume type id -> type; snapshot id -> snapshot (detail shape, latest microversion)
    volume_types: dict[str, Obj] = field(default_factory=dict)
    snapshots: dict[str, Obj] = field(default_factory=dict)
    # backup id -> backup (detail shape at the latest microversion, plus `_`-prefixed
    # internal keys: the parent backup, the volume's status before the backup)
    backups: dict[str, Obj] = field(default_factory=dict)
    # Glance
    images: dict[str, Obj] = field(default_factory=dict)
    # Ironic
    nodes: dict[str, Obj] = field(default_factory=dict)
    allocations: dict[str, Obj] = field(default_factory=dict)
    # Zun (served only when the simulator is started with Zun enabled)
    containers: dict[str, Obj] = field(default_factory=dict)
    # Quota overrides: catalog type (compute, block-storage, network) -> project id ->
    # {quota key as the service names it: limit}; everything else has the defaults
    quotas: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


@dataclass
class CloudState:
    """The whole simulated cloud: Keystone's data plus one RegionState per region."""

    domains: dict[str, Obj] = field(default_factory=dict)
    projects: dict[str, Obj] = field(default_factory=dict)
    users: dict[str, Obj] = field(default_factory=dict)
    # user id -> password (the simulator's only credential store)
    passwords: dict[str, str] = field(default_factory=dict)
    roles: dict[str, Obj] = field(default_factory=dict)
    # (user id, project id or "system") -> role names
    assignments: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # token id -> token body (the "token" object Keystone returns)
    tokens: dict[str, Obj] = field(default_factory=dict)
    regions: dict[str, RegionState] = field(default_factory=dict)
    # Services and endpoints an operator registered (POST /v3/services, /v3/endpoints),
    # beside the built-in catalog: they appear in the catalog of later tokens.
    added_services: list[Obj] = field(default_factory=list)
    added_endpoints: list[Obj] = field(default_factory=list)
    # What the generator made on purpose, for tests and demos to check findings against:
    # region -> scenario name -> sorted ids (see stackfleet.simulator.generator.SCENARIOS).
    # Not served by any API.
    ground_truth: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # One lock for every mutation made by an action route; reads need none (dict reads
    # are atomic enough for a simulator and listing must stay fast).
    lock: threading.RLock = field(default_factory=threading.RLock)

    def region(self, name: str) -> RegionState:
        return self.regions[name]
