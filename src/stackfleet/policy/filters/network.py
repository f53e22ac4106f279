"""Network filters: which ports a security group rule opens; how many Neutron agents
host a router or serve a network."""

from __future__ import annotations

import operator
from typing import Literal

from pydantic import Field

from stackfleet.policy.filters.base import FILTERS, Filter, Predicate
from stackfleet.policy.view import FleetView, Record

Protocol = Literal["tcp", "udp", "sctp", "any"]
# Neutron accepts protocol numbers as well as names.
PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp"}


@FILTERS.register("port-range")
class PortRangeFilter(Filter):
    """Security group rules that open any of `ports`. A rule without a port range opens
    every port; `protocols` lists which protocols count (`any` is a rule for every
    protocol). With no `ports`, only rules open on every port match. Combine with
    `{remote_ip_prefix: {in: ...}}`-style value filters for "open to the world"."""

    kinds = ("security_group_rule",)
    type: Literal["port-range"] = "port-range"
    ports: list[int] = Field(default_factory=list, description="Ports to look for.")
    protocols: list[Protocol] = Field(
        default_factory=lambda: list[Protocol](["tcp", "any"]),
        description="Protocols that count.",
    )

    def compile(self, view: FleetView) -> Predicate:
        ports = sorted(set(self.ports))
        protocols = set(self.protocols)

        def matches(record: Record) -> bool:
            protocol = record.get("protocol")
            name = (
                "any"
                if protocol in (None, "", "any")
                else PROTOCOL_NAMES.get(str(protocol), str(protocol).lower())
            )
            if name not in protocols:
                return False
            low, high = record.get("port_range_min"), record.get("port_range_max")
            if low is None and high is None:
                return True
            if not ports:
                return False
            low = 1 if low is None else low
            high = 65535 if high is None else high
            return any(low <= port <= high for port in ports)

        return matches


# kind -> (the reverse relation to the agents hosting it, agent_type, agents' field)
HOSTING = {
    "router": ("l3_agents", "L3 agent", "hosted_router_ids"),
    "network": ("dhcp_agents", "DHCP agent", "hosted_network_ids"),
}
COMPARE = {
    "lt": operator.lt,
    "le": operator.le,
    "eq": operator.eq,
    "ge": operator.ge,
    "gt": operator.gt,
}


@FILTERS.register("hosting-agents")
class HostingAgentsFilter(Filter):
    """Routers by the L3 agents that host them, networks by the DHCP agents that serve
    them (the agents' `hosted_router_ids` / `hosted_network_ids`): the number of such
    agents — only alive ones with `alive: true`, only dead ones with `alive: false` —
    compared with `count`. A router on one alive L3 agent is `{alive: true, op: lt,
    count: 2}`; a network on a dead DHCP agent `{alive: false, op: ge, count: 1}`.

    Answers only where the hosting is known: in a region where any agent of the type
    has unknown hosting (never read, or the read failed) or where there is no agent of
    the type at all (OVN, which has no L3/DHCP agents), nothing matches."""

    kinds = ("router", "network")
    type: Literal["hosting-agents"] = "hosting-agents"
    alive: bool | None = Field(
        default=None, description="Count only alive (true) or only dead (false) agents."
    )
    op: Literal["lt", "le", "eq", "ge", "gt"] = Field(default="lt", description="Comparison.")
    count: int = Field(ge=0, description="Number of agents to compare with.")

    def reads(self) -> set[str]:
        return {self._kind, "network_agent"}

    def compile(self, view: FleetView) -> Predicate:
        relation, agent_type, field = HOSTING[self._kind]
        known: dict[tuple[str, str], bool] = {}
        for agent in view.records("network_agent"):
            if agent.get("agent_type") == agent_type:
                where = (agent["cloud"], agent["region"])
                known[where] = known.get(where, True) and agent.get(field) is not None
        agents_of = view.related(self._kind, relation)
        compare = COMPARE[self.op]
        alive, count = self.alive, self.count

        def matches(record: Record) -> bool:
            if not known.get((record["cloud"], record["region"])):
                return False
            found = [
                a
                for a in agents_of(record)
                if a.get("agent_type") == agent_type
                and (alive is None or bool(a.get("alive")) is alive)
            ]
            return bool(compare(len(found), count))

        return matches
