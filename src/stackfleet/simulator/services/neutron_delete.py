"""Neutron's deletions a project purge makes, in the simulator: remove a router
interface, delete a router, a network (with its subnets and DHCP ports) and a security
group, with Neutron's refusals (networking API reference; neutron/db/l3_db.py,
db_base_plugin_v2.py, securitygroups_db.py): a router with interfaces is `RouterInUse`,
a network with ports other than its DHCP ports is `NetworkInUse`, a security group a
port uses is `SecurityGroupInUse`, a project's default group is refused to non-admins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackfleet.simulator.http import empty_response, json_response
from stackfleet.simulator.notifications import notify_network
from stackfleet.simulator.services.neutron import (
    _ROUTER_INTERFACE_OWNERS,
    COLLECTIONS_BY_URL,
    _bad_request,
    _request_id_header,
    neutron_error,
)

if TYPE_CHECKING:
    from stackfleet.simulator.services.neutron import Neutron

# ports that go with their network when it is deleted
_NETWORK_OWNED = frozenset({"network:dhcp"})


class NeutronDeletes:
    """Routes sharing the Neutron simulator's state and helpers."""

    def __init__(self, neutron: Neutron) -> None:
        self.neutron = neutron
        self.region = neutron.region
        self.sim = neutron.sim

    def routes(self) -> list[Route]:
        return [
            Route(
                "/v2.0/routers/{id}/remove_router_interface",
                self.remove_router_interface,
                methods=["PUT"],
            ),
            Route("/v2.0/routers/{id}", self.delete_router, methods=["DELETE"]),
            Route("/v2.0/networks/{id}", self.delete_network, methods=["DELETE"]),
            Route("/v2.0/security-groups/{id}", self.delete_security_group, methods=["DELETE"]),
        ]

    async def remove_router_interface(self, request: Request) -> Response:
        token = self.neutron._auth(request)
        router_id = request.path_params["id"]
        body: Any = await self.neutron._json(request)
        if not isinstance(body, dict) or not (body.get("port_id") or body.get("subnet_id")):
            raise _bad_request("Either subnet_id or port_id must be specified")
        with self.sim.state.lock:
            router = self.neutron._get(token, COLLECTIONS_BY_URL["routers"], router_id)
            interfaces = [
                p
                for p in self.region.ports.values()
                if p.get("device_id") == router_id
                and p.get("device_owner") in _ROUTER_INTERFACE_OWNERS
            ]
            port_id, subnet_id = body.get("port_id"), body.get("subnet_id")
            if port_id:
                port = next((p for p in interfaces if p["id"] == port_id), None)
                if port is None:
                    raise neutron_error(
                        404,
                        "RouterInterfaceNotFound",
                        f"Router {router_id} does not have an interface with id {port_id}",
                    )
            else:
                port = next(
                    (
                        p
                        for p in interfaces
                        if any(ip.get("subnet_id") == subnet_id for ip in p.get("fixed_ips") or [])
                    ),
                    None,
                )
                if port is None:
                    raise neutron_error(
                        404,
                        "RouterInterfaceNotFoundForSubnet",
                        f"Router {router_id} has no interface on subnet {subnet_id}",
                    )
            subnets = [str(ip.get("subnet_id")) for ip in port.get("fixed_ips") or []]
            for fip in self.region.floatingips.values():
                fixed = self.region.ports.get(str(fip.get("port_id") or "")) or {}
                if fip.get("router_id") == router_id and any(
                    ip.get("subnet_id") in subnets for ip in fixed.get("fixed_ips") or []
                ):
                    raise neutron_error(
                        409,
                        "RouterInterfaceInUseByFloatingIP",
                        f"Router interface for subnet {subnets[0]} on router {router_id} "
                        "cannot be deleted, as it is required by one or more floating IPs.",
                    )
            del self.region.ports[port["id"]]
        notify_network(self.sim, "router.interface", "delete", router)
        return json_response(
            {
                "id": router_id,
                "tenant_id": router.get("tenant_id", router.get("project_id")),
                "project_id": router.get("project_id"),
                "port_id": port["id"],
                "network_id": port.get("network_id"),
                "subnet_id": subnets[0] if subnets else None,
                "subnet_ids": subnets,
            },
            headers=_request_id_header(),
        )

    async def delete_router(self, request: Request) -> Response:
        token = self.neutron._auth(request)
        router_id = request.path_params["id"]
        with self.sim.state.lock:
            router = self.neutron._get(token, COLLECTIONS_BY_URL["routers"], router_id)
            if any(
                p.get("device_id") == router_id
                and p.get("device_owner") in _ROUTER_INTERFACE_OWNERS
                for p in self.region.ports.values()
            ):
                raise neutron_error(
                    409,
                    "RouterInUse",
                    f"Router {router_id} still has ports",
                )
            for fip in self.region.floatingips.values():
                if fip.get("router_id") == router_id and fip.get("port_id"):
                    network = (router.get("external_gateway_info") or {}).get("network_id")
                    raise neutron_error(
                        409,
                        "RouterExternalGatewayInUseByFloatingIp",
                        f"Gateway cannot be updated for router {router_id}, since a gateway "
                        f"to external network {network} is required by one or more "
                        "floating IPs.",
                    )
            for port_id, port in list(self.region.ports.items()):
                if port.get("device_id") == router_id:
                    del self.region.ports[port_id]  # its gateway port
            del self.region.routers[router_id]
        notify_network(self.sim, "router", "delete.end", router)
        return empty_response(204, _request_id_header())

    async def delete_network(self, request: Request) -> Response:
        token = self.neutron._auth(request)
        network_id = request.path_params["id"]
        with self.sim.state.lock:
            network = self.neutron._get(token, COLLECTIONS_BY_URL["networks"], network_id)
            in_use = [
                p
                for p in self.region.ports.values()
                if p.get("network_id") == network_id and p.get("device_owner") not in _NETWORK_OWNED
            ]
            if in_use:
                raise neutron_error(
                    409,
                    "NetworkInUse",
                    f"Unable to complete operation on network {network_id}. There are one or "
                    "more ports still in use on the network.",
                )
            for port_id, port in list(self.region.ports.items()):
                if port.get("network_id") == network_id:
                    del self.region.ports[port_id]
            for subnet_id, subnet in list(self.region.subnets.items()):
                if subnet.get("network_id") == network_id:
                    del self.region.subnets[subnet_id]
            del self.region.networks[network_id]
        notify_network(self.sim, "network", "delete.end", network)
        return empty_response(204, _request_id_header())

    async def delete_security_group(self, request: Request) -> Response:
        token = self.neutron._auth(request)
        group_id = request.path_params["id"]
        with self.sim.state.lock:
            group = self.neutron._get(token, COLLECTIONS_BY_URL["security-groups"], group_id)
            if group.get("name") == "default" and not self.neutron._is_admin(token):
                raise neutron_error(
                    409,
                    "SecurityGroupCannotRemoveDefault",
                    "Removing default security group not allowed.",
                )
            if any(
                group_id in (p.get("security_groups") or []) for p in self.region.ports.values()
            ):
                raise neutron_error(
                    409,
                    "SecurityGroupInUse",
                    f"Security Group {group_id} in use.",
                )
            for rule_id, rule in list(self.region.security_group_rules.items()):
                if rule.get("security_group_id") == group_id:
                    del self.region.security_group_rules[rule_id]
            del self.region.security_groups[group_id]
        notify_network(self.sim, "security_group", "delete.end", group)
        return empty_response(204, _request_id_header())
