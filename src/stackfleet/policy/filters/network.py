"""Network filters: which ports a security group rule opens."""

from __future__ import annotations

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
