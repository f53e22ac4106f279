"""OpenStack sources, one module per service, all through openstacksdk.

`LISTERS` maps every resource kind to the function that lists it for one cloud region.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stackfleet.sources.openstack import (
    baremetal,
    block_storage,
    capacity,
    compute,
    container,
    identity,
    image,
    network,
)
from stackfleet.sources.openstack.context import ListContext

Lister = Callable[[ListContext], list[dict[str, Any]]]

LISTERS: dict[str, Lister] = {
    "hypervisor": compute.hypervisors,
    "server": compute.servers,
    "flavor": compute.flavors,
    "compute_service": compute.compute_services,
    "server_group": compute.server_groups,
    **network.LISTERS,
    **capacity.LISTERS,  # networks and agents with IP availability / hosted routers
    "volume": block_storage.volumes,
    "volume_snapshot": block_storage.snapshots,
    "block_storage_service": block_storage.services,
    "storage_pool": block_storage.pools,
    "image": image.images,
    "baremetal_node": baremetal.nodes,
    "baremetal_allocation": baremetal.allocations,
    "container": container.containers,
    "project": identity.projects,
    "user": identity.users,
    "role_assignment": identity.role_assignments,
}

__all__ = ["LISTERS", "ListContext"]
