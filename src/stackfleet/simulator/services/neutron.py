"""The simulated Neutron (Networking API v2.0) of one region.

Serves list/show of networks, subnets, ports, floating IPs, routers, agents, security
groups and security group rules with Neutron's query language (attribute filters with
OR-by-repetition, ``fields``, ``sort_key``/``sort_dir``, ``limit``/``marker``/
``page_reverse`` and ``<collection>_links``), plus the writes StackFleet's actions need:
deleting ports, floating IPs and security group rules, creating and (dis)associating
floating IPs, tags, and an agent's ``admin_state_up``. Errors carry Neutron's
``{"NeutronError": {"type", "message", "detail"}}`` body.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from stackfleet.simulator.http import (
    ApiError,
    empty_response,
    json_response,
    require_token,
    sort_objects,
)
from stackfleet.simulator.listcache import EncodedObjects, OrderCache
from stackfleet.simulator.notifications import notify_network
from stackfleet.simulator.state import Obj, RegionState

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator


@dataclass(frozen=True)
class Collection:
    """One Neutron collection: its URL name, JSON keys, where its objects live in the
    RegionState, and the error Neutron raises when one is missing."""

    url: str  # in the URL: "security-groups"
    plural: str  # list body key: "security_groups"
    singular: str  # show body key: "security_group"
    attr: str  # RegionState attribute
    not_found: str  # NeutronError type
    not_found_message: str  # with {id}
    taggable: bool
    # attributes Neutron accepts as filters besides those the stored objects carry
    filters: tuple[str, ...]


_COMMON = ("id", "name", "project_id", "tenant_id", "description", "revision_number")

COLLECTIONS: tuple[Collection, ...] = (
    Collection(
        "networks", "networks", "network", "networks", "NetworkNotFound",
        "Network {id} could not be found.", True,
        _COMMON + ("admin_state_up", "status", "shared", "router:external", "mtu",
                   "provider:network_type", "provider:physical_network",
                   "provider:segmentation_id", "availability_zone_hints", "is_default",
                   "port_security_enabled", "qos_policy_id", "dns_domain", "subnets"),
    ),
    Collection(
        "subnets", "subnets", "subnet", "subnets", "SubnetNotFound",
        "Subnet {id} could not be found.", True,
        _COMMON + ("network_id", "cidr", "ip_version", "gateway_ip", "enable_dhcp",
                   "ipv6_address_mode", "ipv6_ra_mode", "subnetpool_id", "segment_id",
                   "dns_publish_fixed_ip", "shared"),
    ),
    Collection(
        "ports", "ports", "port", "ports", "PortNotFound",
        "Port {id} could not be found.", True,
        _COMMON + ("admin_state_up", "status", "network_id", "device_id", "device_owner",
                   "mac_address", "fixed_ips", "security_groups", "binding:host_id",
                   "binding:vif_type", "binding:vnic_type", "binding:profile",
                   "binding:vif_details", "port_security_enabled", "ip_allocation",
                   "qos_policy_id", "dns_name", "trunk_details"),
    ),
    Collection(
        "floatingips", "floatingips", "floatingip", "floatingips", "FloatingIPNotFound",
        "Floating IP {id} could not be found", True,
        _COMMON + ("status", "router_id", "port_id", "fixed_ip_address",
                   "floating_ip_address", "floating_network_id", "qos_policy_id"),
    ),
    Collection(
        "routers", "routers", "router", "routers", "RouterNotFound",
        "Router {id} could not be found", True,
        _COMMON + ("admin_state_up", "status", "distributed", "ha", "flavor_id",
                   "enable_ndp_proxy", "availability_zone_hints"),
    ),
    Collection(
        "agents", "agents", "agent", "agents", "AgentNotFound",
        "Agent {id} could not be found.", False,
        ("id", "agent_type", "binary", "host", "topic", "admin_state_up", "alive",
         "availability_zone", "description", "heartbeat_timestamp", "created_at",
         "started_at"),
    ),
    Collection(
        "security-groups", "security_groups", "security_group", "security_groups",
        "SecurityGroupNotFound", "Security group {id} does not exist", True,
        _COMMON + ("stateful", "shared"),
    ),
    Collection(
        "security-group-rules", "security_group_rules", "security_group_rule",
        "security_group_rules", "SecurityGroupRuleNotFound",
        "Security group rule {id} does not exist", False,
        _COMMON + ("security_group_id", "direction", "ethertype", "protocol",
                   "port_range_min", "port_range_max", "remote_ip_prefix",
                   "remote_group_id", "remote_address_group_id", "normalized_cidr",
                   "belongs_to_default_sg"),
    ),
)  # fmt: skip

COLLECTIONS_BY_URL: dict[str, Collection] = {c.url: c for c in COLLECTIONS}

# Collections Neutron lists through its versioned objects: an unknown marker is looked up,
# not found, and dropped, so the page starts at the beginning (checked against Neutron
# 29); the others answer 404 for it.
_OVO_PAGED = frozenset(
    {"subnets", "floatingips", "agents", "security-groups", "security-group-rules"}
)

# Query parameters that steer the listing rather than filter it.
_CONTROL_PARAMS = frozenset(
    {"fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir", "tags", "tags-any",
     "not-tags", "not-tags-any"}
)  # fmt: skip

# Device owners whose ports belong to the L3 plugin: deleting them through the port API
# is refused while their router (or floating IP) exists.
ROUTER_DEVICE_OWNERS = frozenset(
    {
        "network:router_interface",
        "network:router_interface_distributed",
        "network:ha_router_replicated_interface",
        "network:router_centralized_snat",
        "network:router_gateway",
        "network:floatingip",
    }
)
_ROUTER_INTERFACE_OWNERS = frozenset(
    {
        "network:router_interface",
        "network:router_interface_distributed",
        "network:ha_router_replicated_interface",
    }
)

# (alias, name, description) of the extensions an ML2/OVN Neutron of 2024-2025 loads;
# clients (openstacksdk, openstackclient, Nova, Horizon) probe several of these aliases.
EXTENSIONS: tuple[tuple[str, str, str], ...] = (
    ("address-group", "Address group", "Named groups of IP addresses for security rules"),
    ("address-scope", "Address scope", "Address scopes for subnet pools"),
    ("agent", "agent", "The agent management extension"),
    ("agent-resources-synced", "Agent's Resource View Synced to Placement",
     "Whether agent resources reached Placement"),
    ("allowed-address-pairs", "Allowed Address Pairs", "Extra MAC/IP pairs a port may use"),
    ("auto-allocated-topology", "Auto Allocated Topology Services",
     "Get-me-a-network topology allocation"),
    ("availability_zone", "Availability Zone", "The availability zone extension"),
    ("availability_zone_filter", "Availability Zone Filter Extension",
     "Filter availability zones by attributes"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external apps"),
    ("binding-extended", "Port Bindings Extended", "Multiple bindings per port"),
    ("default-subnetpools", "Default Subnetpools", "Default subnet pools per IP version"),
    ("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among DHCP agents"),
    ("dns-integration", "DNS Integration", "Expose DNS attributes of ports and networks"),
    ("dns-domain-ports", "dns_domain for ports", "dns_domain attribute on ports"),
    ("empty-string-filtering", "Empty String Filtering Extension",
     "Filtering by empty string values"),
    ("expose-port-forwarding-in-fip", "Expose port forwardings in a floating IP",
     "Port forwardings shown on floating IPs"),
    ("external-net", "Neutron external network", "Adds external network attribute"),
    ("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra DHCP options on ports"),
    ("extraroute", "Neutron Extra Route", "Extra routes on routers"),
    ("extraroute-atomic", "Atomically add/remove extra routes", "Atomic extra route updates"),
    ("filter-validation", "Filter parameters validation",
     "Unknown list filters are rejected with 400"),
    ("fip-port-details", "Floating IP Port Details Extension",
     "port_details attribute on floating IPs"),
    ("flavors", "Neutron Service Flavors", "Flavor specification for Neutron advanced services"),
    ("floatingip-pools", "Floating IP Pools Extension", "List the floating IP pools"),
    ("ip-substring-filtering", "IP address substring filtering",
     "Filter ports by a substring of their IP address"),
    ("ip_allocation", "IP Allocation", "ip_allocation attribute on ports"),
    ("l3-flavors", "Router Flavor Extension", "Flavors for routers"),
    ("l3-ha", "HA Router extension", "High availability routers"),
    ("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among L3 agents"),
    ("multi-provider", "Multi Provider Network", "Multiple provider segments per network"),
    ("net-mtu", "Network MTU", "Network MTU attribute"),
    ("net-mtu-writable", "Network MTU (writable)", "Writable network MTU"),
    ("network-ip-availability", "Network IP Availability", "IP availability per network"),
    ("network-ip-availability-details", "Network IP Availability Details Extension",
     "Add ip_availability_details attribute to network IP availabilities"),
    ("network_availability_zone", "Network Availability Zone", "Availability zones of networks"),
    ("pagination", "Pagination support", "limit/marker pagination of list operations"),
    ("port-device-profile", "Port device profile", "device_profile attribute on ports"),
    ("port-mac-address-regenerate", "Neutron Port MAC address regenerate",
     "Regenerate the MAC address of a port"),
    ("port-numa-affinity-policy", "Port NUMA affinity policy",
     "numa_affinity_policy attribute on ports"),
    ("port-resource-request", "Port Resource Request", "Placement resources a port needs"),
    ("port-security", "Port Security", "Port security attribute"),
    ("project-id", "project_id field enabled", "project_id is returned beside tenant_id"),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical ones"),
    ("qos", "Quality of Service", "QoS policies and rules"),
    ("qos-fip", "Floating IP QoS", "QoS policies on floating IPs"),
    ("quota_details", "Quota details management support", "Used and reserved quota counts"),
    ("quotas", "Quota management support", "Per-project quotas"),
    ("rbac-policies", "RBAC Policies", "Share resources with other projects"),
    ("revision-if-match", "If-Match constraints based on revision_number",
     "Conditional updates on revision_number"),
    ("router", "Neutron L3 Router", "Routers and floating IPs"),
    ("router_availability_zone", "Router Availability Zone", "Availability zones of routers"),
    ("security-group", "security-group", "The security groups extension"),
    ("security-groups-remote-address-group", "Remote address group in security group rules",
     "remote_address_group_id on security group rules"),
    ("segment", "Segment", "Network segments"),
    ("service-type", "Neutron Service Type Management", "API for retrieving service providers"),
    ("sorting", "Sorting support", "sort_key/sort_dir ordering of list operations"),
    ("standard-attr-description", "standard-attr-description",
     "description attribute on resources with standard attributes"),
    ("standard-attr-revisions", "Resource revision numbers", "revision_number attribute"),
    ("standard-attr-tag", "Tag support for resources with standard attribute",
     "Tags on networks, subnets, ports, routers, floating IPs and security groups"),
    ("standard-attr-timestamp", "Resource timestamps", "created_at and updated_at attributes"),
    ("stateful-security-group", "Stateful security group", "stateful attribute"),
    ("subnet-service-types", "Subnet service types", "service_types attribute on subnets"),
    ("subnet_allocation", "Subnet Allocation", "Subnet pools"),
    ("subnetpool-prefix-ops", "Subnet Pool Prefix Operations", "Add/remove subnet pool prefixes"),
    ("tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation",
     "Tags in bulk port creation requests"),
    ("trunk", "Trunk Extension", "Trunk ports"),
    ("trunk-details", "Trunk port details", "trunk_details attribute on ports"),
)  # fmt: skip

# Defaults of a deployment without per-project overrides (neutron.conf [quotas]).
DEFAULT_QUOTAS: dict[str, int] = {
    "network": 100,
    "subnet": 100,
    "subnetpool": -1,
    "port": 500,
    "router_route": 30,
    "router": 10,
    "floatingip": 50,
    "security_group": 10,
    "security_group_rule": 100,
    "rbac_policy": 10,
}
_QUOTA_COLLECTIONS = {
    "network": "networks",
    "subnet": "subnets",
    "port": "ports",
    "router": "routers",
    "floatingip": "floatingips",
    "security_group": "security_groups",
    "security_group_rule": "security_group_rules",
}

_TRUE = ("true", "1", "yes", "on", "t", "y")
_FALSE = ("false", "0", "no", "off", "f", "n")
_MAX_TAG_LENGTH = 60


def neutron_error(status: int, error_type: str, message: str) -> ApiError:
    """An ApiError with Neutron's body and request id."""
    return ApiError(
        status,
        {"NeutronError": {"type": error_type, "message": message, "detail": ""}},
        _request_id_header(),
    )


def check_revision(request: Request, obj: Obj) -> None:
    """Neutron's `revision-if-match`: a PUT or DELETE carrying `If-Match:
    revision_number=N` is refused with 412 unless the resource is at revision N."""
    header = request.headers.get("if-match") or ""
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip() != "revision_number":
            continue
        try:
            expected = int(value)
        except ValueError:
            raise neutron_error(
                400, "InvalidInput", f"Invalid input for operation: If-Match {header!r}."
            ) from None
        current = int(obj.get("revision_number", 0))
        if expected != current:
            raise neutron_error(
                412,
                "RevisionNumberConstraintFailed",
                f"Constrained to {expected}, but current revision is {current}",
            )


def _request_id_header() -> dict[str, str]:
    return {"X-Openstack-Request-Id": f"req-{uuid.uuid4()}"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bad_request(message: str) -> ApiError:
    return neutron_error(400, "HTTPBadRequest", message)


def _to_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise neutron_error(
        400,
        "InvalidInput",
        f"Invalid input for operation: '{value}' cannot be converted to boolean.",
    )


def _matches(obj: Obj, key: str, wanted: list[str]) -> bool:
    """Whether `obj[key]` equals one of the wanted query values (Neutron's OR-filter),
    converting each value to the attribute's type."""
    value = obj.get(key)
    if key == "fixed_ips":
        return _fixed_ips_match(value or [], wanted)
    if isinstance(value, bool):
        return any(_to_bool(w) == value for w in wanted)
    if isinstance(value, int):
        return any(w.lstrip("-").isdigit() and int(w) == value for w in wanted)
    if isinstance(value, list):
        return any(str(item) in wanted for item in value)
    if value is None:
        return False
    return str(value) in wanted


def _fixed_ips_match(fixed_ips: list[Obj], wanted: list[str]) -> bool:
    """``fixed_ips=ip_address=10.0.0.5`` / ``subnet_id=`` / ``ip_address_substr=``."""
    for condition in wanted:
        key, _, expected = condition.partition("=")
        for fixed_ip in fixed_ips:
            if key == "ip_address_substr":
                if expected in str(fixed_ip.get("ip_address", "")):
                    return True
            elif str(fixed_ip.get(key)) == expected:
                return True
    return False


class Neutron:
    """The routes of one region's simulated Neutron over `region`."""

    def __init__(self, sim: Simulator, region: RegionState) -> None:
        self.sim = sim
        self.region = region
        # List orders and encoded objects per collection (see stackfleet.simulator.listcache)
        self._orders = OrderCache()
        self._encoded = {c.url: EncodedObjects() for c in COLLECTIONS}

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _root(request: Request) -> str:
        """The service's public URL as the caller reached it (Neutron uses the request's
        host URL in links)."""
        return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"

    def _auth(self, request: Request) -> Obj:
        token = require_token(self.sim, request)
        return token

    @staticmethod
    def _is_admin(token: Obj) -> bool:
        return any(role.get("name") == "admin" for role in token.get("roles", []))

    @staticmethod
    def _project(token: Obj) -> str | None:
        project = token.get("project")
        return str(project["id"]) if isinstance(project, dict) else None

    def _store(self, collection: Collection) -> dict[str, Obj]:
        store: dict[str, Obj] = getattr(self.region, collection.attr)
        return store

    def _visible(self, token: Obj, collection: Collection, obj: Obj) -> bool:
        """Neutron's default policy: admins see everything, others their own project's
        objects plus shared and external networks (and their subnets)."""
        if self._is_admin(token):
            return True
        if collection.url == "agents":
            return False
        project = self._project(token)
        if project is not None and obj.get("project_id", obj.get("tenant_id")) == project:
            return True
        if collection.url == "networks":
            return bool(obj.get("shared") or obj.get("router:external"))
        if collection.url == "subnets":
            network = self.region.networks.get(str(obj.get("network_id")))
            return network is not None and bool(
                network.get("shared") or network.get("router:external")
            )
        return False

    def _get(self, token: Obj, collection: Collection, obj_id: str) -> Obj:
        obj = self._store(collection).get(obj_id)
        if obj is None or not self._visible(token, collection, obj):
            raise neutron_error(
                404, collection.not_found, collection.not_found_message.format(id=obj_id)
            )
        return obj

    @staticmethod
    def _fields(request: Request) -> list[str]:
        return [f for f in request.query_params.getlist("fields") if f]

    @staticmethod
    def _select(obj: Obj, fields: list[str]) -> Obj:
        if not fields:
            return obj
        return {key: obj[key] for key in fields if key in obj}

    def _respond(self, body: Any, status: int = 200) -> Response:
        return json_response(body, status, _request_id_header())

    # -- version discovery ---------------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        root = self._root(request)
        body = {
            "versions": [
                {
                    "id": "v2.0",
                    "status": "CURRENT",
                    "links": [{"href": f"{root}/v2.0/", "rel": "self"}],
                }
            ]
        }
        return self._respond(body)

    async def version_v2(self, request: Request) -> Response:
        self._auth(request)
        root = self._root(request)
        resources = [
            {
                "name": name,
                "collection": plural,
                "links": [{"href": f"{root}/v2.0/{plural}", "rel": "self"}],
            }
            for name, plural in (
                ("subnet", "subnets"),
                ("subnetpool", "subnetpools"),
                ("network", "networks"),
                ("port", "ports"),
            )
        ]
        return self._respond({"resources": resources})

    @staticmethod
    def _extension(alias: str, name: str, description: str) -> Obj:
        return {
            "alias": alias,
            "name": name,
            "description": description,
            "updated": "2013-01-20T10:00:00-00:00",
            "links": [],
        }

    async def list_extensions(self, request: Request) -> Response:
        self._auth(request)
        fields = self._fields(request)
        extensions = [self._select(self._extension(*e), fields) for e in EXTENSIONS]
        return self._respond({"extensions": extensions})

    async def show_extension(self, request: Request) -> Response:
        self._auth(request)
        alias = request.path_params["alias"]
        for entry in EXTENSIONS:
            if entry[0] == alias:
                return self._respond({"extension": self._extension(*entry)})
        raise neutron_error(404, "HTTPNotFound", f"Extension with alias {alias} does not exist")

    # -- lists ---------------------------------------------------------------------------

    def _check_filters(
        self, collection: Collection, objects: Iterable[Obj], keys: set[str]
    ) -> None:
        """filter-validation: a filter naming no attribute of the resource is a 400."""
        known = set(collection.filters)
        unknown = keys - known
        if unknown:
            for obj in objects:
                unknown -= obj.keys()
                if not unknown:
                    return
        if unknown:
            raise _bad_request(f"[{', '.join(sorted(unknown))}] is invalid attribute for filtering")

    @staticmethod
    def _tag_filter(request: Request) -> Callable[[Obj], bool] | None:
        def tag_set(name: str) -> set[str]:
            return {
                tag for raw in request.query_params.getlist(name) for tag in raw.split(",") if tag
            }

        all_of, any_of = tag_set("tags"), tag_set("tags-any")
        none_of_all, none_of_any = tag_set("not-tags"), tag_set("not-tags-any")
        if not (all_of or any_of or none_of_all or none_of_any):
            return None

        def keep(obj: Obj) -> bool:
            tags = set(obj.get("tags") or [])
            if all_of and not all_of <= tags:
                return False
            if any_of and not any_of & tags:
                return False
            if none_of_all and none_of_all <= tags:
                return False
            return not (none_of_any and none_of_any & tags)

        return keep

    def _sort_spec(
        self, request: Request, collection: Collection, sample: Obj | None
    ) -> list[tuple[str, bool]]:
        keys = [k for k in request.query_params.getlist("sort_key") if k]
        dirs = [d for d in request.query_params.getlist("sort_dir") if d]
        if len(keys) != len(dirs):
            raise _bad_request("The number of sort_keys and sort_dirs must be same")
        known = set(collection.filters) | (set(sample) if sample else set())
        absent = [k for k in keys if k not in known]
        if absent:
            raise _bad_request(f"{absent} is invalid attribute for sort_keys")
        invalid = [d for d in dirs if d not in ("asc", "desc")]
        if invalid:
            raise _bad_request(
                f"{invalid} is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
            )
        return [(k, d == "asc") for k, d in zip(keys, dirs, strict=True)]

    @staticmethod
    def _limit(request: Request) -> int:
        raw = request.query_params.get("limit", "0") or "0"
        try:
            limit = int(raw)
        except ValueError:
            limit = -1
        if limit < 0:
            raise _bad_request(f"Limit must be an integer 0 or greater and not '{raw}'")
        return limit

    @staticmethod
    def _link(request: Request, marker: str | None, reverse: bool) -> str:
        # Neutron copies the request's query, drops marker and page_reverse, then appends
        # the new marker (and page_reverse=True for the previous page).
        params = [
            (k, v)
            for k, v in request.query_params.multi_items()
            if k not in ("marker", "page_reverse")
        ]
        if marker is not None:
            params.append(("marker", marker))
        if reverse:
            params.append(("page_reverse", "True"))
        return f"{request.url.scheme}://{request.url.netloc}{request.url.path}?{urlencode(params)}"

    def _lister(self, collection: Collection) -> Callable[[Request], Awaitable[Response]]:
        async def list_route(request: Request) -> Response:
            return await self.list_collection(request, collection)

        return list_route

    async def list_collection(self, request: Request, collection: Collection) -> Response:
        """GET /v2.0/<collection> with Neutron's filters, sorting and paging."""
        token = self._auth(request)
        if self._is_admin(token):
            objects = list(self._store(collection).values())
        else:
            objects = [
                obj
                for obj in self._store(collection).values()
                if self._visible(token, collection, obj)
            ]
        filters: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            if key in _CONTROL_PARAMS:
                continue
            filters.setdefault(key, [])
            if value:
                filters[key].append(value)
        self._check_filters(collection, objects, set(filters))
        for key, wanted in filters.items():
            if wanted:
                objects = [obj for obj in objects if _matches(obj, key, wanted)]
        tag_filter = self._tag_filter(request)
        if tag_filter is not None:
            objects = [obj for obj in objects if tag_filter(obj)]

        sorts = self._sort_spec(request, collection, objects[0] if objects else None)
        limit = self._limit(request)
        if limit and "id" not in dict(sorts):
            # Native pagination always adds the primary key as the last sort key.
            sorts.append(("id", True))

        def sort(items: list[Obj]) -> list[Obj]:
            ordered = list(items)
            sort_objects(ordered, sorts)
            return ordered

        # What made `objects` (the caller's scope and the query's filters) is part of the
        # key, so that alternating queries do not evict each other's order.
        scope = None if self._is_admin(token) else self._project(token)
        query = sorted(
            (k, v)
            for k, v in request.query_params.multi_items()
            if k not in ("marker", "limit", "page_reverse", "fields")
        )
        order_key = (collection.url, tuple(sorts), scope, tuple(query))
        order = self._orders.order(order_key, objects, (key for key, _ in sorts), sort)
        objects = order.items

        body: Obj = {}
        marker = request.query_params.get("marker") or None
        reverse = request.query_params.get("page_reverse", "False").lower() == "true"
        if limit:
            start = 0
            end = len(objects)
            index = order.position(marker) if marker is not None else None
            if marker is not None and index is None and collection.url not in _OVO_PAGED:
                raise neutron_error(
                    404, collection.not_found, collection.not_found_message.format(id=marker)
                )
            if index is not None:
                start, end = (index + 1, len(objects)) if not reverse else (0, index)
            page = objects[max(0, end - limit) : end] if reverse else objects[start : start + limit]
            links: list[Obj] = []
            if not (len(page) < limit and not reverse):
                last = str(page[-1]["id"]) if page else None
                links.append({"rel": "next", "href": self._link(request, last, False)})
            if not (len(page) < limit and reverse):
                first = str(page[0]["id"]) if page else None
                links.append({"rel": "previous", "href": self._link(request, first, True)})
            objects = page
            body[f"{collection.plural}_links"] = links
        fields = self._fields(request)
        body[collection.plural] = self._encoded[collection.url].encode(
            tuple(fields),
            objects,
            lambda obj: self._select(obj, fields),
            population=len(self._store(collection)),
        )
        return self._respond(body)

    async def show(self, request: Request) -> Response:
        token = self._auth(request)
        collection = COLLECTIONS_BY_URL[request.path_params["collection"]]
        obj = self._get(token, collection, request.path_params["id"])
        return self._respond({collection.singular: self._select(obj, self._fields(request))})

    # -- ports ---------------------------------------------------------------------------

    def _l3_owner_exists(self, port: Obj) -> bool:
        owner = port.get("device_owner") or ""
        device_id = str(port.get("device_id") or "")
        if owner == "network:floatingip":
            return device_id in self.region.floatingips
        return device_id in self.region.routers

    def _disassociate_port(self, port_id: str) -> None:
        now = _now()
        for fip in self.region.floatingips.values():
            if fip.get("port_id") == port_id:
                fip.update(
                    port_id=None,
                    fixed_ip_address=None,
                    router_id=None,
                    status="DOWN",
                    port_details=None,
                    updated_at=now,
                    revision_number=int(fip.get("revision_number", 0)) + 1,
                )

    async def delete_port(self, request: Request) -> Response:
        token = self._auth(request)
        port_id = request.path_params["id"]
        with self.sim.state.lock:
            port = self._get(token, COLLECTIONS_BY_URL["ports"], port_id)
            check_revision(request, port)
            if (
                port.get("device_owner") in ROUTER_DEVICE_OWNERS
                and port.get("fixed_ips")
                and self._l3_owner_exists(port)
            ):
                raise neutron_error(
                    409,
                    "ServicePortInUse",
                    f"Port {port_id} cannot be deleted directly via the port API: "
                    f"has device owner {port['device_owner']}.",
                )
            self._disassociate_port(port_id)
            del self.region.ports[port_id]
        notify_network(self.sim, "port", "delete.end", port)
        return empty_response(204, _request_id_header())

    # -- floating IPs --------------------------------------------------------------------

    def _router_for(self, port: Obj, external_network_id: str) -> str | None:
        """The router that connects the port's network to the external network: one
        with its gateway there and an interface on the port's network; Neutron refuses
        the association when there is none."""
        gateways = [
            router_id
            for router_id, router in self.region.routers.items()
            if (router.get("external_gateway_info") or {}).get("network_id") == external_network_id
        ]
        for candidate in self.region.ports.values():
            if (
                candidate.get("device_owner") in _ROUTER_INTERFACE_OWNERS
                and candidate.get("network_id") == port.get("network_id")
                and candidate.get("device_id") in gateways
            ):
                return str(candidate["device_id"])
        return None

    def _port_details(self, port: Obj) -> Obj:
        return {
            key: port.get(key)
            for key in (
                "name",
                "network_id",
                "mac_address",
                "admin_state_up",
                "status",
                "device_id",
                "device_owner",
            )
        }

    def _associate(self, fip: Obj, port_id: str | None, fixed_ip: str | None) -> None:
        """Point `fip` at `port_id` (or nowhere), with Neutron's checks."""
        if port_id is None:
            fip.update(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
            fip["port_details"] = None
            return
        port = self.region.ports.get(port_id)
        if port is None:
            raise neutron_error(404, "PortNotFound", f"Port {port_id} could not be found.")
        addresses = [
            str(ip["ip_address"])
            for ip in port.get("fixed_ips") or []
            if ipaddress.ip_address(str(ip["ip_address"])).version == 4
        ]
        if not addresses:
            raise _bad_request(
                f"Bad floatingip request: Port {port_id} does not have any IPv4 address."
            )
        if fixed_ip is None:
            fixed_ip = addresses[0]
        elif fixed_ip not in addresses:
            raise _bad_request(
                f"Bad floatingip request: Port {port_id} does not have fixed ip {fixed_ip}."
            )
        network_id = str(fip["floating_network_id"])
        for other in self.region.floatingips.values():
            if (
                other is not fip
                and other.get("port_id") == port_id
                and other.get("fixed_ip_address") == fixed_ip
                and other.get("floating_network_id") == network_id
            ):
                raise neutron_error(
                    409,
                    "FloatingIPPortAlreadyAssociated",
                    f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) "
                    f"with port {port_id} using fixed IP {fixed_ip}, as that fixed IP already "
                    f"has a floating IP on external network {network_id}.",
                )
        router_id = self._router_for(port, network_id)
        if router_id is None:
            subnet_id = (port.get("fixed_ips") or [{}])[0].get("subnet_id")
            raise neutron_error(
                404,
                "ExternalGatewayForFloatingIPNotFound",
                f"External network {network_id} is not reachable from subnet {subnet_id}. "
                f"Therefore, cannot associate Port {port_id} with a Floating IP.",
            )
        fip.update(port_id=port_id, fixed_ip_address=fixed_ip, router_id=router_id)
        # The L3 agent (or OVN) would report ACTIVE moments later; the simulator at once.
        fip["status"] = "ACTIVE"
        fip["port_details"] = self._port_details(port)

    async def update_floatingip(self, request: Request) -> Response:
        token = self._auth(request)
        fip_id = request.path_params["id"]
        body = await self._body(request, "floatingip")
        with self.sim.state.lock:
            fip = self._get(token, COLLECTIONS_BY_URL["floatingips"], fip_id)
            check_revision(request, fip)
            updated = dict(fip)
            if "port_id" in body or "fixed_ip_address" in body:
                port_id = body.get("port_id")
                fixed_ip = body.get("fixed_ip_address")
                self._associate(updated, str(port_id) if port_id else None, fixed_ip)
            if "description" in body:
                updated["description"] = body["description"]
            updated["updated_at"] = _now()
            updated["revision_number"] = int(updated.get("revision_number", 0)) + 1
            fip.clear()
            fip.update(updated)
        notify_network(self.sim, "floatingip", "update.end", fip)
        return self._respond({"floatingip": fip})

    def _allocate_address(
        self, network_id: str, subnet_id: str | None, wanted: str | None
    ) -> tuple[str, str]:
        """An unused address (and its subnet) on the external network."""
        used = {
            str(ip.get("ip_address"))
            for port in self.region.ports.values()
            if port.get("network_id") == network_id
            for ip in port.get("fixed_ips") or []
        } | {
            str(f.get("floating_ip_address"))
            for f in self.region.floatingips.values()
            if f.get("floating_network_id") == network_id
        }
        subnets = [
            s
            for s in self.region.subnets.values()
            if s.get("network_id") == network_id
            and s.get("ip_version", 4) == 4
            and (subnet_id is None or s.get("id") == subnet_id)
        ]
        for subnet in subnets:
            cidr = ipaddress.ip_network(str(subnet["cidr"]), strict=False)
            if wanted is not None:
                if ipaddress.ip_address(wanted) in cidr:
                    if wanted in used:
                        raise neutron_error(
                            409,
                            "IpAddressAlreadyAllocated",
                            f"IP address {wanted} already allocated in subnet {subnet['id']}",
                        )
                    return wanted, str(subnet["id"])
                continue
            pools = subnet.get("allocation_pools") or [
                {"start": str(cidr.network_address + 2), "end": str(cidr.broadcast_address - 1)}
            ]
            for pool in pools:
                address = ipaddress.IPv4Address(str(pool["start"]))
                end = ipaddress.IPv4Address(str(pool["end"]))
                while address <= end:
                    if str(address) not in used and str(address) != subnet.get("gateway_ip"):
                        return str(address), str(subnet["id"])
                    address += 1
        if wanted is not None:
            raise _bad_request(
                f"Invalid input for operation: IP address {wanted} is not a valid IP for the "
                f"specified network {network_id}."
            )
        raise neutron_error(
            409,
            "IpAddressGenerationFailure",
            f"No more IP addresses available on network {network_id}.",
        )

    def _mac_address(self) -> str:
        seed = uuid.uuid4().bytes
        return "fa:16:3e:" + ":".join(f"{b:02x}" for b in seed[:3])

    async def create_floatingip(self, request: Request) -> Response:
        token = self._auth(request)
        body = await self._body(request, "floatingip")
        network_id = body.get("floating_network_id")
        if not network_id:
            raise _bad_request(
                "Failed to parse request. Required attribute 'floating_network_id' not specified"
            )
        project_id = body.get("project_id") or body.get("tenant_id") or self._project(token)
        if project_id != self._project(token) and not self._is_admin(token):
            raise neutron_error(
                403, "HTTPForbidden", "Only admins can create floating IPs in other projects."
            )
        with self.sim.state.lock:
            network = self._get(token, COLLECTIONS_BY_URL["networks"], str(network_id))
            if not network.get("router:external"):
                raise _bad_request(
                    f"Bad floatingip request: Network {network_id} is not a valid external network."
                )
            address, subnet_id = self._allocate_address(
                str(network_id), body.get("subnet_id"), body.get("floating_ip_address")
            )
            now = _now()
            fip_id = str(uuid.uuid4())
            fip: Obj = {
                "id": fip_id,
                "floating_ip_address": address,
                "floating_network_id": str(network_id),
                "router_id": None,
                "port_id": None,
                "fixed_ip_address": None,
                "status": "DOWN",
                "project_id": project_id,
                "tenant_id": project_id,
                "description": body.get("description", ""),
                "qos_policy_id": body.get("qos_policy_id"),
                "port_details": None,
                "port_forwardings": [],
                "dns_domain": body.get("dns_domain", ""),
                "dns_name": body.get("dns_name", ""),
                "tags": [],
                "created_at": now,
                "updated_at": now,
                "revision_number": 0,
            }
            if body.get("port_id"):
                self._associate(fip, str(body["port_id"]), body.get("fixed_ip_address"))
            # Neutron backs every floating IP with a port on the external network.
            port_id = str(uuid.uuid4())
            self.region.ports[port_id] = {
                "id": port_id,
                "name": "",
                "network_id": str(network_id),
                "tenant_id": "",
                "project_id": "",
                "mac_address": self._mac_address(),
                "admin_state_up": True,
                "status": "N/A",
                "device_id": fip_id,
                "device_owner": "network:floatingip",
                "fixed_ips": [{"subnet_id": subnet_id, "ip_address": address}],
                "allowed_address_pairs": [],
                "extra_dhcp_opts": [],
                "security_groups": [],
                "description": "",
                "binding:vnic_type": "normal",
                "binding:profile": {},
                "binding:host_id": "",
                "binding:vif_type": "unbound",
                "binding:vif_details": {},
                "port_security_enabled": False,
                "tags": [],
                "created_at": now,
                "updated_at": now,
                "revision_number": 1,
            }
            self.region.floatingips[fip_id] = fip
        notify_network(self.sim, "floatingip", "create.end", fip)
        return self._respond({"floatingip": fip}, 201)

    async def delete_floatingip(self, request: Request) -> Response:
        token = self._auth(request)
        fip_id = request.path_params["id"]
        with self.sim.state.lock:
            fip = self._get(token, COLLECTIONS_BY_URL["floatingips"], fip_id)
            check_revision(request, fip)
            del self.region.floatingips[fip_id]
            for port_id, port in list(self.region.ports.items()):
                if (
                    port.get("device_owner") == "network:floatingip"
                    and port.get("device_id") == fip_id
                ):
                    del self.region.ports[port_id]
        notify_network(self.sim, "floatingip", "delete.end", fip)
        return empty_response(204, _request_id_header())

    # -- security group rules ------------------------------------------------------------

    async def delete_security_group_rule(self, request: Request) -> Response:
        token = self._auth(request)
        rule_id = request.path_params["id"]
        with self.sim.state.lock:
            rule = self._get(token, COLLECTIONS_BY_URL["security-group-rules"], rule_id)
            check_revision(request, rule)
            del self.region.security_group_rules[rule_id]
            group = self.region.security_groups.get(str(rule.get("security_group_id")))
            if group is not None and isinstance(group.get("security_group_rules"), list):
                group["security_group_rules"] = [
                    r for r in group["security_group_rules"] if r.get("id") != rule_id
                ]
                group["revision_number"] = int(group.get("revision_number", 0)) + 1
        return empty_response(204, _request_id_header())

    # -- agents --------------------------------------------------------------------------

    async def update_agent(self, request: Request) -> Response:
        token = self._auth(request)
        agent_id = request.path_params["id"]
        body = await self._body(request, "agent")
        allowed = {"admin_state_up", "description"}
        extra = sorted(set(body) - allowed)
        if extra:
            raise _bad_request(f"Attribute '{extra[0]}' not allowed in PUT")
        with self.sim.state.lock:
            agent = self._get(token, COLLECTIONS_BY_URL["agents"], agent_id)
            if "admin_state_up" in body:
                value = body["admin_state_up"]
                if isinstance(value, str):
                    value = _to_bool(value)
                if not isinstance(value, bool):
                    raise neutron_error(
                        400,
                        "InvalidInput",
                        f"Invalid input for admin_state_up. Reason: '{value}' is not a valid "
                        "boolean value.",
                    )
                agent["admin_state_up"] = value
            if "description" in body:
                agent["description"] = body["description"]
        return self._respond({"agent": agent})

    # -- tags ----------------------------------------------------------------------------

    def _tag_target(self, request: Request, token: Obj) -> Obj:
        collection = COLLECTIONS_BY_URL.get(request.path_params["collection"])
        resource_id = request.path_params["id"]
        if collection is None or not collection.taggable:
            raise neutron_error(404, "HTTPNotFound", "The resource could not be found.")
        obj = self._store(collection).get(resource_id)
        if obj is None or not self._visible(token, collection, obj):
            raise neutron_error(
                404,
                "TagResourceNotFound",
                f"Resource {collection.singular} {resource_id} could not be found.",
            )
        return obj

    @staticmethod
    def _check_tag(tag: str) -> None:
        if len(tag) > _MAX_TAG_LENGTH or "," in tag or "/" in tag:
            raise neutron_error(
                400,
                "InvalidInput",
                f"Invalid input for operation: '{tag}' is not a valid tag (at most "
                f"{_MAX_TAG_LENGTH} characters, no ',' or '/').",
            )

    @staticmethod
    def _touch(obj: Obj) -> None:
        obj["updated_at"] = _now()
        obj["revision_number"] = int(obj.get("revision_number", 0)) + 1

    async def list_tags(self, request: Request) -> Response:
        token = self._auth(request)
        obj = self._tag_target(request, token)
        return self._respond({"tags": list(obj.get("tags") or [])})

    async def check_tag(self, request: Request) -> Response:
        token = self._auth(request)
        obj = self._tag_target(request, token)
        tag = request.path_params["tag"]
        if tag not in (obj.get("tags") or []):
            raise self._tag_not_found(request, tag)
        return empty_response(204, _request_id_header())

    @staticmethod
    def _tag_not_found(request: Request, tag: str) -> ApiError:
        collection = COLLECTIONS_BY_URL[request.path_params["collection"]]
        return neutron_error(
            404,
            "TagNotFound",
            f"Tag {tag} could not be found for {collection.singular} {request.path_params['id']}.",
        )

    async def add_tag(self, request: Request) -> Response:
        token = self._auth(request)
        tag = request.path_params["tag"]
        self._check_tag(tag)
        with self.sim.state.lock:
            obj = self._tag_target(request, token)
            tags = list(obj.get("tags") or [])
            if tag not in tags:
                tags.append(tag)
                obj["tags"] = tags
                self._touch(obj)
        return empty_response(201, _request_id_header())

    async def replace_tags(self, request: Request) -> Response:
        token = self._auth(request)
        raw = await self._json(request)
        tags = raw.get("tags") if isinstance(raw, dict) else None
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _bad_request("Invalid input for tags: a list of strings is required.")
        for tag in tags:
            self._check_tag(tag)
        with self.sim.state.lock:
            obj = self._tag_target(request, token)
            obj["tags"] = list(dict.fromkeys(tags))
            self._touch(obj)
        return self._respond({"tags": obj["tags"]})

    async def delete_tag(self, request: Request) -> Response:
        token = self._auth(request)
        tag = request.path_params["tag"]
        with self.sim.state.lock:
            obj = self._tag_target(request, token)
            tags = list(obj.get("tags") or [])
            if tag not in tags:
                raise self._tag_not_found(request, tag)
            tags.remove(tag)
            obj["tags"] = tags
            self._touch(obj)
        return empty_response(204, _request_id_header())

    async def delete_tags(self, request: Request) -> Response:
        token = self._auth(request)
        with self.sim.state.lock:
            obj = self._tag_target(request, token)
            obj["tags"] = []
            self._touch(obj)
        return empty_response(204, _request_id_header())

    # -- capacity: IP availability, what agents host -------------------------------------

    def _ip_availability(self, network: Obj, used_by_subnet: dict[str, list[str]]) -> Obj:
        """One network's IP availability, as Neutron's network-ip-availability and
        network-ip-availability-details extensions compute it: total_ips counts the
        allocation pools, used_ips every address allocated on the subnet."""
        subnets = []
        for subnet_id in network.get("subnets") or []:
            subnet = self.region.subnets.get(str(subnet_id))
            if subnet is None:
                continue
            cidr = ipaddress.ip_network(str(subnet["cidr"]), strict=False)
            pools = [
                (
                    int(ipaddress.ip_address(str(p["start"]))),
                    int(ipaddress.ip_address(str(p["end"]))),
                )
                for p in subnet.get("allocation_pools") or []
            ]
            in_pool = sum(end - start + 1 for start, end in pools)
            used = used_by_subnet.get(str(subnet_id), [])
            used_in_pool = 0
            for address in used:
                value = int(ipaddress.ip_address(address))
                if any(start <= value <= end for start, end in pools):
                    used_in_pool += 1
            total = in_pool if pools else cidr.num_addresses
            in_subnet = cidr.num_addresses - (2 if cidr.version == 4 else 0)
            subnets.append(
                {
                    "subnet_id": subnet["id"],
                    "ip_version": subnet.get("ip_version", 4),
                    "cidr": subnet["cidr"],
                    "subnet_name": subnet.get("name", ""),
                    "used_ips": len(used),
                    "total_ips": total,
                    "ip_availability_details": {
                        "total_ips_in_subnet": in_subnet,
                        "total_ips_in_allocation_pool": in_pool,
                        "used_ips_in_subnet": len(used),
                        "used_ips_in_allocation_pool": used_in_pool,
                    },
                }
            )
        details = {
            key: sum(s["ip_availability_details"][key] for s in subnets)
            for key in (
                "total_ips_in_subnet",
                "total_ips_in_allocation_pool",
                "used_ips_in_subnet",
                "used_ips_in_allocation_pool",
            )
        }
        return {
            "network_id": network["id"],
            "network_name": network.get("name", ""),
            "project_id": network.get("project_id"),
            "subnet_ip_availability": subnets,
            "used_ips": sum(s["used_ips"] for s in subnets),
            "total_ips": sum(s["total_ips"] for s in subnets),
            "ip_availability_details": details,
            "tenant_id": network.get("project_id"),
        }

    async def list_ip_availabilities(self, request: Request) -> Response:
        """GET /v2.0/network-ip-availabilities: admin only (others get an empty list, as
        Neutron's policy filters every item out), sorted by network id, emulated paging."""
        token = self._auth(request)
        body: Obj = {}
        if not self._is_admin(token):
            return self._respond({"network_ip_availabilities": []})
        used_by_subnet: dict[str, list[str]] = {}
        for port in self.region.ports.values():
            for ip in port.get("fixed_ips") or []:
                used_by_subnet.setdefault(str(ip.get("subnet_id")), []).append(
                    str(ip.get("ip_address"))
                )
        networks = sorted(self.region.networks.values(), key=lambda n: str(n["id"]))
        wanted = request.query_params.getlist("network_id")
        if wanted:
            networks = [n for n in networks if n["id"] in wanted]
        limit = self._limit(request)
        if limit:
            marker = request.query_params.get("marker") or None
            ids = [str(n["id"]) for n in networks]
            start = 0
            if marker is not None:
                start = ids.index(marker) + 1 if marker in ids else len(ids)
            page = networks[start : start + limit]
            links: list[Obj] = []
            if len(page) >= limit:
                links.append({"rel": "next", "href": self._link(request, page[-1]["id"], False)})
            first = str(page[0]["id"]) if page else None
            links.append({"rel": "previous", "href": self._link(request, first, True)})
            networks = page
            body["network_ip_availabilities_links"] = links
        body["network_ip_availabilities"] = [
            self._ip_availability(n, used_by_subnet) for n in networks
        ]
        return self._respond(dict(reversed(list(body.items()))))

    async def show_ip_availability(self, request: Request) -> Response:
        """GET /v2.0/network-ip-availabilities/{id}: one network's IP availability."""
        token = self._auth(request)
        network_id = request.path_params["uuid"]
        network = self.region.networks.get(network_id)
        if network is None or not self._is_admin(token):
            raise neutron_error(404, "NetworkNotFound", f"Network {network_id} could not be found.")
        used_by_subnet: dict[str, list[str]] = {}
        for port in self.region.ports.values():
            if port.get("network_id") != network_id:
                continue
            for ip in port.get("fixed_ips") or []:
                used_by_subnet.setdefault(str(ip.get("subnet_id")), []).append(
                    str(ip.get("ip_address"))
                )
        return self._respond(
            {"network_ip_availability": self._ip_availability(network, used_by_subnet)}
        )

    def _hosting_agent(self, request: Request, rule: str) -> Obj:
        token = self._auth(request)
        if not self._is_admin(token):
            raise neutron_error(403, "PolicyNotAuthorized", f"rule:{rule} is disallowed by policy")
        # {uuid} in the route, so request counts label it as the contract tests do
        agent_id = request.path_params["uuid"]
        agent = self.region.agents.get(agent_id)
        if agent is None:
            raise neutron_error(404, "AgentNotFound", f"Agent {agent_id} could not be found.")
        return agent

    def _devices_on(self, host: str, owners: tuple[str, ...]) -> set[str]:
        return {
            str(p.get("device_id"))
            for p in self.region.ports.values()
            if p.get("binding:host_id") == host and p.get("device_owner") in owners
        }

    async def list_l3_agent_routers(self, request: Request) -> Response:
        """GET /v2.0/agents/{id}/l3-routers: the routers scheduled to an L3 agent (here:
        those whose gateway or interface ports are bound to the agent's host)."""
        agent = self._hosting_agent(request, "get_l3-routers")
        routers: list[Obj] = []
        if agent.get("agent_type") == "L3 agent":
            hosted = self._devices_on(
                str(agent.get("host")), ("network:router_gateway", "network:router_interface")
            )
            routers = [r for r in self.region.routers.values() if r["id"] in hosted]
        return self._respond({"routers": routers})

    async def list_dhcp_agent_networks(self, request: Request) -> Response:
        """GET /v2.0/agents/{id}/dhcp-networks: the networks a DHCP agent serves (those
        with a DHCP port bound to the agent's host)."""
        agent = self._hosting_agent(request, "get_dhcp-networks")
        networks: list[Obj] = []
        if agent.get("agent_type") == "DHCP agent":
            host = str(agent.get("host"))
            served = {
                str(p.get("network_id"))
                for p in self.region.ports.values()
                if p.get("binding:host_id") == host and p.get("device_owner") == "network:dhcp"
            }
            networks = [n for n in self.region.networks.values() if n["id"] in served]
        return self._respond({"networks": networks})

    # -- quotas --------------------------------------------------------------------------

    def _quota_project(self, request: Request, token: Obj) -> str:
        project_id = request.path_params["project_id"]
        if not self._is_admin(token) and project_id != self._project(token):
            raise neutron_error(
                403,
                "HTTPForbidden",
                "Non-admin is not authorized to access quotas for another project",
            )
        return project_id

    async def show_quota(self, request: Request) -> Response:
        token = self._auth(request)
        project_id = self._quota_project(request, token)
        overrides = self.region.quotas.get("network", {}).get(project_id, {})
        return self._respond({"quota": {**DEFAULT_QUOTAS, **overrides}})

    async def show_quota_details(self, request: Request) -> Response:
        token = self._auth(request)
        project_id = self._quota_project(request, token)
        details = {}
        overrides = self.region.quotas.get("network", {}).get(project_id, {})
        for resource, limit in {**DEFAULT_QUOTAS, **overrides}.items():
            attr = _QUOTA_COLLECTIONS.get(resource)
            used = 0
            if attr is not None:
                store: dict[str, Obj] = getattr(self.region, attr)
                used = sum(1 for o in store.values() if o.get("project_id") == project_id)
            details[resource] = {"limit": limit, "used": used, "reserved": 0}
        return self._respond({"quota": details})

    # -- bodies --------------------------------------------------------------------------

    @staticmethod
    async def _json(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise _bad_request(f"Malformed request body: {exc}") from exc

    async def _body(self, request: Request, key: str) -> Obj:
        raw = await self._json(request)
        if not isinstance(raw, dict) or not isinstance(raw.get(key), dict):
            raise _bad_request(f"Resource body required; expected '{key}' in the request body")
        body: Obj = raw[key]
        return body

    # -- routing -------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """Every route, the more specific first."""
        from stackfleet.simulator.services.neutron_delete import NeutronDeletes

        collection_pattern = "{collection}"
        routes = [
            *NeutronDeletes(self).routes(),
            Route("/", self.versions, methods=["GET"]),
            Route("/v2.0", self.version_v2, methods=["GET"]),
            Route("/v2.0/", self.version_v2, methods=["GET"]),
            Route("/v2.0/extensions", self.list_extensions, methods=["GET"]),
            Route("/v2.0/extensions/{alias}", self.show_extension, methods=["GET"]),
            Route("/v2.0/quotas/{project_id}", self.show_quota, methods=["GET"]),
            Route("/v2.0/quotas/{project_id}/details", self.show_quota_details, methods=["GET"]),
            Route("/v2.0/ports/{id}", self.delete_port, methods=["DELETE"]),
            Route("/v2.0/floatingips", self.create_floatingip, methods=["POST"]),
            Route("/v2.0/floatingips/{id}", self.update_floatingip, methods=["PUT"]),
            Route("/v2.0/floatingips/{id}", self.delete_floatingip, methods=["DELETE"]),
            Route(
                "/v2.0/security-group-rules/{id}",
                self.delete_security_group_rule,
                methods=["DELETE"],
            ),
            Route("/v2.0/agents/{id}", self.update_agent, methods=["PUT"]),
            Route("/v2.0/agents/{uuid}/l3-routers", self.list_l3_agent_routers, methods=["GET"]),
            Route(
                "/v2.0/agents/{uuid}/dhcp-networks", self.list_dhcp_agent_networks, methods=["GET"]
            ),
            Route("/v2.0/network-ip-availabilities", self.list_ip_availabilities, methods=["GET"]),
            Route(
                "/v2.0/network-ip-availabilities/{uuid}",
                self.show_ip_availability,
                methods=["GET"],
            ),
            Route(f"/v2.0/{collection_pattern}/{{id}}/tags", self.list_tags, methods=["GET"]),
            Route(f"/v2.0/{collection_pattern}/{{id}}/tags", self.replace_tags, methods=["PUT"]),
            Route(f"/v2.0/{collection_pattern}/{{id}}/tags", self.delete_tags, methods=["DELETE"]),
            Route(
                f"/v2.0/{collection_pattern}/{{id}}/tags/{{tag}}", self.check_tag, methods=["GET"]
            ),
            Route(f"/v2.0/{collection_pattern}/{{id}}/tags/{{tag}}", self.add_tag, methods=["PUT"]),
            Route(
                f"/v2.0/{collection_pattern}/{{id}}/tags/{{tag}}",
                self.delete_tag,
                methods=["DELETE"],
            ),
        ]
        for collection in COLLECTIONS:
            routes.append(
                Route(f"/v2.0/{collection.url}", self._lister(collection), methods=["GET"])
            )
        routes.append(
            Route(f"/v2.0/{collection_pattern}/{{id}}", self._show_known, methods=["GET"])
        )
        return routes

    async def _show_known(self, request: Request) -> Response:
        if request.path_params["collection"] not in COLLECTIONS_BY_URL:
            self._auth(request)
            raise neutron_error(404, "HTTPNotFound", "The resource could not be found.")
        return await self.show(request)


def build(sim: Simulator, region: RegionState) -> Router:
    """The Neutron API of `region`, to be mounted at ``/{region}/networking``."""
    return Router(routes=Neutron(sim, region).routes())
