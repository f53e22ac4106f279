"""One dependency order for taking resources down, shared by `provision destroy` (a
workload's members, then its server group) and `project purge` (everything a project
owns, the project itself last).

Each phase's resources go before those of every later phase, because the services
refuse (or orphan) the later ones while the earlier still exist: a router with
interfaces is `RouterInUse`, a network with ports `NetworkInUse`, a volume with
snapshots cannot be deleted, a floating IP holds its router's gateway. A caller takes
the phases of the kinds it deletes, in this order, and finishes one phase before it
starts the next."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    """One step of a teardown: the kind it deletes and why it comes where it does."""

    name: str  # as reports show it
    kind: str  # the inventory kind deleted in this phase
    reason: str


TEARDOWN: tuple[Phase, ...] = (
    Phase("containers", "container", "they hold Neutron ports and volumes"),
    Phase("servers", "server", "they hold ports, volumes, floating IPs and group membership"),
    Phase("bare-metal nodes", "baremetal_node", "undeployed; their allocations go with them"),
    Phase("server groups", "server_group", "once their members are gone"),
    Phase("floating IPs", "floating_ip", "they hold their router's external gateway"),
    Phase("router interfaces", "router_interface", "a router with interfaces is RouterInUse"),
    Phase("routers", "router", "once their interfaces and floating IPs are gone"),
    Phase("ports", "port", "a network with ports is NetworkInUse"),
    Phase("networks", "network", "their subnets go with them"),
    Phase("security groups", "security_group", "once no port uses them"),
    Phase("volume snapshots", "volume_snapshot", "a volume with snapshots cannot be deleted"),
    Phase("volumes", "volume", "once detached (their servers gone) and without snapshots"),
    Phase("images", "image", "once no server or volume is being made from them"),
    Phase("key pairs", "keypair", "once no server is being made with them"),
    Phase("project", "project", "last: once everything it owned is gone"),
)
ORDER = {phase.kind: number for number, phase in enumerate(TEARDOWN)}


def phases(kinds: Iterable[str]) -> list[Phase]:
    """The phases that delete `kinds`, in teardown order (ValueError for a kind the
    order does not place)."""
    wanted = set(kinds)
    unplaced = sorted(wanted - set(ORDER))
    if unplaced:
        raise ValueError(f"no teardown phase for {', '.join(unplaced)}")
    return [phase for phase in TEARDOWN if phase.kind in wanted]
