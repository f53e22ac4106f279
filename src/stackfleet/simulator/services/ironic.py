"""The simulated Ironic (Bare Metal API v1) of one region.

Microversions come from ``X-OpenStack-Ironic-API-Version`` (or ``OpenStack-API-Version:
baremetal 1.x``); without one Ironic serves its minimum, 1.1. Every response names the
minimum, maximum and served version in headers. Node fields appear from the microversion
that added them, passwords in ``driver_info`` are masked, and node lists page with an
absolute ``next`` URL. Power, provision-state and maintenance changes complete at once
(Ironic's conductor works asynchronously; the simulated one is instantaneous). Errors
carry Ironic's ``{"error_message": "<JSON string>"}`` body.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from stackfleet.simulator.http import ApiError, json_response, require_token, sort_objects
from stackfleet.simulator.state import Obj, RegionState

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator

MIN_MINOR = 1
MAX_MINOR = 96
MAX_LIMIT = 1000  # [api] max_limit
_VERSION_HEADER = "X-OpenStack-Ironic-API-Version"
_MASK = "******"
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)

# Node fields and the microversion (minor) that exposed them
# (ironic/api/controllers/v1/utils.py VERSIONED_FIELDS and later additions).
NODE_FIELD_VERSIONS: dict[str, int] = {
    "driver_internal_info": 3,
    "name": 5,
    "inspection_finished_at": 6,
    "inspection_started_at": 6,
    "clean_step": 7,
    "raid_config": 12,
    "target_raid_config": 12,
    "network_interface": 20,
    "resource_class": 21,
    **dict.fromkeys(
        ("boot_interface", "console_interface", "deploy_interface", "inspect_interface",
         "management_interface", "power_interface", "raid_interface", "vendor_interface"),
        31,
    ),
    "storage_interface": 33,
    "traits": 37,
    "rescue_interface": 38,
    "bios_interface": 40,
    "fault": 42,
    "deploy_step": 44,
    "conductor_group": 46,
    "automated_clean": 47,
    "protected": 48,
    "protected_reason": 48,
    "conductor": 49,
    "owner": 50,
    "description": 51,
    "allocation_uuid": 52,
    "retired": 61,
    "retired_reason": 61,
    "lessee": 65,
    "network_data": 66,
    "boot_mode": 75,
    "secure_boot": 75,
    "shard": 82,
    "parent_node": 83,
    "firmware_interface": 86,
    "service_step": 89,
    "runbook": 92,
    "disable_power_off": 95,
    "instance_name": 104,
    "health": 109,
}  # fmt: skip
# Fields of a node that exist at every version (besides the versioned ones).
NODE_BASE_FIELDS = (
    "uuid", "instance_uuid", "power_state", "target_power_state", "provision_state",
    "target_provision_state", "maintenance", "maintenance_reason", "last_error",
    "console_enabled", "driver", "driver_info", "extra", "instance_info", "properties",
    "chassis_uuid", "provision_updated_at", "reservation", "created_at", "updated_at",
)  # fmt: skip
# What GET /v1/nodes (not detail) returns.
NODE_LIST_FIELDS = (
    "uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance",
)  # fmt: skip
# Filters and the minor version that introduced them.
FILTER_VERSIONS: dict[str, int] = {
    "provision_state": 9,
    "driver": 16,
    "resource_class": 21,
    "fault": 42,
    "conductor_group": 46,
    "conductor": 49,
    "owner": 50,
    "description_contains": 51,
    "retired": 61,
    "lessee": 65,
    "project": 65,
    "shard": 82,
    "parent_node": 83,
}
# Filters that compare one node field for equality.
_EXACT_FILTERS = (
    "provision_state", "driver", "resource_class", "fault", "conductor_group", "conductor",
    "owner", "lessee", "shard", "parent_node", "chassis_uuid",
)  # fmt: skip
INVALID_SORT_KEYS = frozenset(
    {"properties", "driver_info", "extra", "instance_info", "driver_internal_info",
     "clean_step", "deploy_step", "raid_config", "target_raid_config", "traits",
     "network_data", "service_step"}
)  # fmt: skip
PROVISION_STATES = frozenset(
    {"enroll", "verifying", "manageable", "inspecting", "inspect wait", "inspect failed",
     "cleaning", "clean wait", "clean failed", "clean hold", "available", "deploying",
     "wait call-back", "deploy failed", "deploy hold", "active", "deleting", "error",
     "adopting", "adopt failed", "rescuing", "rescue wait", "rescue failed", "rescue",
     "unrescuing", "unrescue failed", "rebuild", "servicing", "service wait",
     "service failed", "service hold"}
)  # fmt: skip
# Provision verb -> (states it may start from, state it ends in, minimum minor).
PROVISION_VERBS: dict[str, tuple[frozenset[str], str, int]] = {
    "manage": (frozenset({"enroll", "available", "inspect failed", "clean failed",
                          "adopt failed"}), "manageable", 4),
    "provide": (frozenset({"manageable"}), "available", 4),
    "inspect": (frozenset({"manageable", "inspect failed"}), "manageable", 6),
    "clean": (frozenset({"manageable"}), "manageable", 15),
    "adopt": (frozenset({"manageable", "adopt failed"}), "active", 17),
    "active": (frozenset({"available", "deploy failed"}), "active", 1),
    "deploy": (frozenset({"available", "deploy failed"}), "active", 73),
    "rebuild": (frozenset({"active", "deploy failed", "error"}), "active", 1),
    "deleted": (frozenset({"active", "deploy failed", "error", "wait call-back",
                           "rescue", "rescue failed", "unrescue failed"}), "available", 1),
    "undeploy": (frozenset({"active", "deploy failed", "error", "wait call-back",
                            "rescue", "rescue failed", "unrescue failed"}), "available", 73),
    "rescue": (frozenset({"active", "rescue failed"}), "rescue", 38),
    "unrescue": (frozenset({"rescue"}), "active", 38),
    "abort": (frozenset(), "", 13),
}  # fmt: skip
# Power target -> resulting power state and minimum minor.
POWER_TARGETS: dict[str, tuple[str, int]] = {
    "power on": ("power on", 1),
    "power off": ("power off", 1),
    "rebooting": ("power on", 1),
    "soft rebooting": ("power on", 27),
    "soft power off": ("power off", 27),
}
# Key fragments whose values Ironic masks (oslo strutils.mask_dict_password).
_SECRET_KEYS = ("password", "secret", "token", "passphrase", "private_key", "configdrive")


def ironic_error(status: int, message: str, minor: int | None = None) -> ApiError:
    """An ApiError with Ironic's body: the fault as a JSON string under error_message."""
    fault = {
        "faultstring": message,
        "faultcode": "Client" if status < 500 else "Server",
        "debuginfo": None,
    }
    return ApiError(status, {"error_message": json.dumps(fault)}, _headers(minor))


def _headers(minor: int | None) -> dict[str, str]:
    headers = {
        "X-OpenStack-Ironic-API-Minimum-Version": f"1.{MIN_MINOR}",
        "X-OpenStack-Ironic-API-Maximum-Version": f"1.{MAX_MINOR}",
        "X-Openstack-Request-Id": f"req-{uuid.uuid4()}",
    }
    if minor is not None:
        headers[_VERSION_HEADER] = f"1.{minor}"
    return headers


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def parse_minor(request: Request) -> int:
    """The requested minor version of API 1 (1.1 when none is named)."""
    raw = request.headers.get(_VERSION_HEADER)
    if raw is None:
        for part in request.headers.get("openstack-api-version", "").split(","):
            words = part.split()
            if len(words) == 2 and words[0].lower() == "baremetal":
                raw = words[1]
    if raw is None:
        return MIN_MINOR
    raw = raw.strip()
    if raw.lower() == "latest":
        return MAX_MINOR
    match = re.fullmatch(r"(\d+)\.(\d+)", raw)
    if match is None:
        raise ironic_error(400, f"Invalid value for {_VERSION_HEADER} header: {raw}")
    major, minor = int(match.group(1)), int(match.group(2))
    if major != 1 or not MIN_MINOR <= minor <= MAX_MINOR:
        raise ironic_error(
            406,
            f"Version {raw} was requested but the minor version is not supported by this "
            f"service. The supported version range is: [1.{MIN_MINOR}, 1.{MAX_MINOR}].",
        )
    return minor


def _mask(values: Any) -> Any:
    if not isinstance(values, dict):
        return values
    return {
        key: (_MASK if any(s in key.lower() for s in _SECRET_KEYS) and value else value)
        for key, value in values.items()
    }


def _bool(value: str, name: str, minor: int) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on", "t", "y"):
        return True
    if lowered in ("false", "0", "no", "off", "f", "n"):
        return False
    raise ironic_error(400, f"Invalid value for {name}: '{value}' is not a boolean.", minor)


class Ironic:
    """The routes of one region's simulated Ironic over `region`."""

    def __init__(self, sim: Simulator, region: RegionState) -> None:
        self.sim = sim
        self.region = region
        from stackfleet.simulator.services.ironic_provision import IronicProvisioning

        # allocations, node PATCH, the deploy / undeploy steps (a module of their own)
        self.provisioning = IronicProvisioning(self)

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _root(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"

    def _call(self, request: Request) -> tuple[Obj, int]:
        token = require_token(self.sim, request)
        minor = parse_minor(request)
        return token, minor

    @staticmethod
    def _sees(token: Obj, node: Obj) -> bool:
        """System-scoped tokens see every node; project-scoped ones the nodes their
        project owns or leases (Ironic's default policy)."""
        if token.get("system"):
            return True
        project = token.get("project")
        project_id = project.get("id") if isinstance(project, dict) else None
        return project_id is not None and project_id in (node.get("owner"), node.get("lessee"))

    def _node(self, token: Obj, minor: int, ident: str) -> Obj:
        node: Obj | None
        if _UUID_RE.match(ident):
            node = self.region.nodes.get(ident) or next(
                (n for n in self.region.nodes.values() if str(n.get("uuid")) == ident), None
            )
        elif minor >= 5:
            node = next((n for n in self.region.nodes.values() if n.get("name") == ident), None)
        else:
            node = None
        if node is None or not self._sees(token, node):
            raise ironic_error(404, f"Node {ident} could not be found.", minor)
        return node

    def _links(self, request: Request, *path: str) -> list[Obj]:
        root = self._root(request)
        tail = "/".join(path)
        return [
            {"href": f"{root}/v1/{tail}", "rel": "self"},
            {"href": f"{root}/{tail}", "rel": "bookmark"},
        ]

    @staticmethod
    def _allowed(field: str, minor: int) -> bool:
        return minor >= NODE_FIELD_VERSIONS.get(field, 0)

    def _node_view(
        self, request: Request, node: Obj, minor: int, fields: list[str] | None, detail: bool
    ) -> Obj:
        if fields is not None:
            wanted = fields
        elif detail:
            wanted = [
                k for k in node if k not in ("links", "ports", "portgroups", "states", "volume")
            ]
        else:
            wanted = list(NODE_LIST_FIELDS)
        view: Obj = {}
        for key in wanted:
            if not self._allowed(key, minor) or (key not in node and key not in NODE_BASE_FIELDS):
                continue
            value = node.get(key)
            if key in ("driver_info", "instance_info"):
                value = _mask(value)
            if key == "provision_state" and value == "available" and minor < 2:
                value = None  # before 1.2 "available" was NOSTATE
            view[key] = value
        node_id = str(node["uuid"])
        view["links"] = self._links(request, "nodes", node_id)
        if detail and fields is None:
            view["ports"] = self._links(request, "nodes", node_id, "ports")
            if minor >= 14:
                view["states"] = self._links(request, "nodes", node_id, "states")
            if minor >= 24:
                view["portgroups"] = self._links(request, "nodes", node_id, "portgroups")
            if minor >= 32:
                view["volume"] = self._links(request, "nodes", node_id, "volume")
        return view

    def _fields(self, request: Request, minor: int) -> list[str] | None:
        raw = request.query_params.get("fields")
        if raw is None:
            return None
        if minor < 8:
            raise ironic_error(406, "Request not acceptable.", minor)
        fields = [f.strip() for f in raw.split(",") if f.strip()]
        known = set(NODE_BASE_FIELDS) | set(NODE_FIELD_VERSIONS)
        invalid = [f for f in fields if f not in known]
        if invalid:
            raise ironic_error(400, f'Field(s) "{", ".join(invalid)}" are not valid', minor)
        if any(not self._allowed(f, minor) for f in fields):
            raise ironic_error(406, "Request not acceptable.", minor)
        return fields

    # -- version discovery ---------------------------------------------------------------

    def _version(self, request: Request) -> Obj:
        return {
            "id": "v1",
            "links": [{"href": f"{self._root(request)}/v1/", "rel": "self"}],
            "status": "CURRENT",
            "min_version": f"1.{MIN_MINOR}",
            "version": f"1.{MAX_MINOR}",
        }

    async def root(self, request: Request) -> Response:
        version = self._version(request)
        body = {
            "name": "OpenStack Ironic API",
            "description": "Ironic is an OpenStack project which enables the provision and "
            "management of baremetal machines.",
            "default_version": version,
            "versions": [version],
        }
        return json_response(body, 200, _headers(None))

    async def v1(self, request: Request) -> Response:
        minor = parse_minor(request)
        root = self._root(request)
        body: Obj = {
            "id": "v1",
            "links": [
                {"href": f"{root}/v1/", "rel": "self"},
                {
                    "href": "https://docs.openstack.org/ironic/latest/contributor/webapi.html",
                    "rel": "describedby",
                    "type": "text/html",
                },
            ],
            "media_types": [
                {"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}
            ],
            "version": self._version(request),
        }
        for resource, since in (
            ("chassis", 1),
            ("nodes", 1),
            ("ports", 1),
            ("drivers", 1),
            ("portgroups", 23),
            ("volume", 32),
            ("conductors", 49),
            ("allocations", 52),
            ("deploy_templates", 55),
        ):
            if minor >= since:
                body[resource] = self._links(request, resource, "")
        return json_response(body, 200, _headers(minor))

    # -- nodes ---------------------------------------------------------------------------

    def _filtered_nodes(self, request: Request, token: Obj, minor: int) -> list[Obj]:
        params = request.query_params
        for name, since in FILTER_VERSIONS.items():
            if name in params and minor < since:
                raise ironic_error(406, "Request not acceptable.", minor)
        entries = [
            (position, node)
            for position, node in enumerate(self.region.nodes.values())
            if self._sees(token, node)
        ]
        state = params.get("provision_state")
        if state is not None and state not in PROVISION_STATES:
            raise ironic_error(400, f'Provision state "{state}" is not valid', minor)
        instance_uuid = params.get("instance_uuid")
        if instance_uuid is not None:
            return [n for _, n in entries if n.get("instance_uuid") == instance_uuid]
        for name in ("maintenance", "associated", "retired"):
            if name in params:
                flag = _bool(params[name], name, minor)
                if name == "associated":
                    entries = [e for e in entries if bool(e[1].get("instance_uuid")) == flag]
                else:
                    entries = [e for e in entries if bool(e[1].get(name)) == flag]
        for name in _EXACT_FILTERS:
            if name in params:
                entries = [e for e in entries if e[1].get(name) == params[name]]
        if "project" in params:
            project = params["project"]
            entries = [e for e in entries if project in (e[1].get("owner"), e[1].get("lessee"))]
        if "description_contains" in params:
            text = params["description_contains"]
            entries = [e for e in entries if text in str(e[1].get("description") or "")]

        sort_key = params.get("sort_key", "id")
        sort_dir = params.get("sort_dir", "asc")
        if sort_dir not in ("asc", "desc"):
            raise ironic_error(
                400,
                f"Invalid sort direction: {sort_dir}. Acceptable values are 'asc' or 'desc'",
                minor,
            )
        known = set(NODE_BASE_FIELDS) | set(NODE_FIELD_VERSIONS) | {"id"}
        if sort_key in INVALID_SORT_KEYS or sort_key not in known:
            raise ironic_error(
                400, f"The sort_key value {sort_key} is an invalid field for sorting", minor
            )
        if not self._allowed(sort_key, minor):
            raise ironic_error(406, "Request not acceptable.", minor)
        nodes = [node for _, node in entries]
        if sort_key == "id":
            # Ironic's default key is its database id, i.e. enrolment order.
            return nodes[::-1] if sort_dir == "desc" else nodes
        sort_objects(nodes, [(sort_key, sort_dir == "asc")])
        return nodes

    def _limit(self, request: Request, minor: int) -> int:
        raw = request.query_params.get("limit")
        if raw is None:
            return MAX_LIMIT
        try:
            limit = int(raw)
        except ValueError as exc:
            raise ironic_error(
                400, f"Invalid input for field/attribute limit. Value: '{raw}'.", minor
            ) from exc
        if limit <= 0:
            raise ironic_error(400, "Limit must be positive", minor)
        return min(limit, MAX_LIMIT)

    async def _list_nodes(self, request: Request, detail: bool) -> Response:
        token, minor = self._call(request)
        params = request.query_params
        fields = None
        if "detail" in params:
            if minor < 43:
                raise ironic_error(406, "Request not acceptable.", minor)
            detail = detail or _bool(params["detail"], "detail", minor)
        if not request.url.path.endswith("/detail"):
            fields = self._fields(request, minor)
            if fields is not None and detail:
                raise ironic_error(
                    400, "Can not specify ?detail=True and fields in the same request.", minor
                )
        nodes = self._filtered_nodes(request, token, minor)
        limit = self._limit(request, minor)
        marker = params.get("marker")
        start = 0
        if marker:
            index = next((i for i, n in enumerate(nodes) if str(n.get("uuid")) == marker), None)
            if index is None:
                raise ironic_error(404, f"Node {marker} could not be found.", minor)
            start = index + 1
        if "instance_uuid" in params:
            # One node at most: Ironic returns no next link for this lookup.
            page, limit = nodes, 0
        else:
            page = nodes[start : start + limit]
        body: Obj = {"nodes": [self._node_view(request, n, minor, fields, detail) for n in page]}
        if limit and page and len(page) == limit:
            body["next"] = self._next_link(request, page, limit, detail, fields)
        return json_response(body, 200, _headers(minor))

    def _next_link(
        self, request: Request, page: list[Obj], limit: int, detail: bool, fields: list[str] | None
    ) -> str:
        """Ironic's next URL: sort parameters, the truthy boolean filters, detail and
        fields are carried over (other filters are not), then limit and marker."""
        params = request.query_params
        args: list[tuple[str, str]] = [
            ("sort_key", params.get("sort_key", "id")),
            ("sort_dir", params.get("sort_dir", "asc")),
        ]
        for name in ("associated", "maintenance", "retired"):
            if name in params and params[name].strip().lower() in ("true", "1", "yes", "on"):
                args.append((name, "True"))
        if "detail" in params:
            args.append(("detail", "True" if detail else "False"))
        if fields is not None:
            args.append(("fields", ",".join(fields)))
        query = "".join(f"{k}={v}&" for k, v in args)
        resource = "nodes/detail" if request.url.path.endswith("/detail") else "nodes"
        marker = page[-1]["uuid"]
        return f"{self._root(request)}/v1/{resource}?{query}limit={limit}&marker={marker}"

    async def list_nodes(self, request: Request) -> Response:
        return await self._list_nodes(request, detail=False)

    async def list_nodes_detail(self, request: Request) -> Response:
        return await self._list_nodes(request, detail=True)

    async def show_node(self, request: Request) -> Response:
        token, minor = self._call(request)
        node = self._node(token, minor, request.path_params["ident"])
        fields = self._fields(request, minor)
        return json_response(
            self._node_view(request, node, minor, fields, detail=True), 200, _headers(minor)
        )

    async def node_states(self, request: Request) -> Response:
        token, minor = self._call(request)
        node = self._node(token, minor, request.path_params["ident"])
        keys = [
            "console_enabled",
            "last_error",
            "power_state",
            "provision_state",
            "provision_updated_at",
            "target_power_state",
            "target_provision_state",
        ]
        if minor >= 12:
            keys += ["raid_config", "target_raid_config"]
        if minor >= 75:
            keys += ["boot_mode", "secure_boot"]
        return json_response({k: node.get(k) for k in keys}, 200, _headers(minor))

    def _accepted(self, request: Request, node: Obj, minor: int) -> Response:
        headers = _headers(minor)
        headers["Location"] = f"{self._root(request)}/v1/nodes/{node['uuid']}/states"
        return Response(status_code=202, headers=headers)

    async def _body(self, request: Request, minor: int) -> Obj:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise ironic_error(400, "Malformed request body.", minor) from exc
        if not isinstance(body, dict):
            raise ironic_error(400, "Malformed request body.", minor)
        return body

    async def set_power_state(self, request: Request) -> Response:
        token, minor = self._call(request)
        body = await self._body(request, minor)
        target = body.get("target")
        timeout = body.get("timeout")
        with self.sim.state.lock:
            node = self._node(token, minor, request.path_params["ident"])
            spec = POWER_TARGETS.get(str(target))
            if timeout is not None and minor < 27:
                raise ironic_error(406, "Request not acceptable.", minor)
            if spec is None or minor < spec[1]:
                if spec is not None:
                    raise ironic_error(406, "Request not acceptable.", minor)
                raise ironic_error(
                    400,
                    f'The requested action "{target}" can not be performed on node '
                    f'"{node["uuid"]}" while it is in state "{node.get("power_state")}".',
                    minor,
                )
            if node.get("provision_state") in ("deploying", "cleaning", "deleting", "inspecting"):
                raise ironic_error(
                    409,
                    f"Node {node['uuid']} is locked by host {node.get('conductor')}, please "
                    "retry after the current operation is completed.",
                    minor,
                )
            node["power_state"] = spec[0]
            node["target_power_state"] = None
            node["updated_at"] = _now()
        return self._accepted(request, node, minor)

    async def set_provision_state(self, request: Request) -> Response:
        token, minor = self._call(request)
        body = await self._body(request, minor)
        target = str(body.get("target"))
        with self.sim.state.lock:
            node = self._node(token, minor, request.path_params["ident"])
            current = node.get("provision_state")
            spec = PROVISION_VERBS.get(target)
            if spec is not None and minor < spec[2]:
                raise ironic_error(406, "Request not acceptable.", minor)
            if target in ("active", "deploy", "rebuild") and node.get("maintenance"):
                raise ironic_error(
                    400,
                    f"The provisioning operation can't be performed on node {node['uuid']} "
                    "because it's in maintenance mode.",
                    minor,
                )
            if target in ("deleted", "undeploy", "rebuild") and node.get("protected"):
                raise ironic_error(
                    403,
                    f"Node {node['uuid']} is protected and cannot be undeployed, rebuilt or "
                    "deleted",
                    minor,
                )
            if target == "clean" and not body.get("clean_steps"):
                raise ironic_error(
                    400,
                    "clean_steps is required when setting target provision state to clean",
                    minor,
                )
            if target == "rescue" and not body.get("rescue_password"):
                raise ironic_error(
                    400,
                    "A non-empty 'rescue_password' is required when setting target provision "
                    "state to rescue",
                    minor,
                )
            if spec is None or current not in spec[0]:
                raise ironic_error(
                    400,
                    f'The requested action "{target}" can not be performed on node '
                    f'"{node["uuid"]}" while it is in state "{current}".',
                    minor,
                )
            if target in ("active", "deploy", "rebuild"):
                self.provisioning.check_deploy(node, minor)
                self.provisioning.deploy(node)
                return self._accepted(request, node, minor)
            if target in ("deleted", "undeploy"):
                self.provisioning.undeploy(node)
                return self._accepted(request, node, minor)
            now = _now()
            node["provision_state"] = spec[1]
            node["target_provision_state"] = None
            node["provision_updated_at"] = now
            node["updated_at"] = now
            node["last_error"] = None
            if spec[1] == "available":
                # Undeploying ends with the instance gone and the node powered off.
                node["instance_uuid"] = None
                node["instance_info"] = {}
                node["power_state"] = "power off"
            elif spec[1] == "active":
                node["power_state"] = "power on"
            elif target == "manage" and node.get("power_state") is None:
                node["power_state"] = "power off"  # verification read the power state
        return self._accepted(request, node, minor)

    async def set_maintenance(self, request: Request) -> Response:
        token, minor = self._call(request)
        body = await self._body(request, minor)
        reason = body.get("reason")
        with self.sim.state.lock:
            node = self._node(token, minor, request.path_params["ident"])
            node["maintenance"] = True
            node["maintenance_reason"] = reason
            node["updated_at"] = _now()
        return self._accepted(request, node, minor)

    async def unset_maintenance(self, request: Request) -> Response:
        token, minor = self._call(request)
        with self.sim.state.lock:
            node = self._node(token, minor, request.path_params["ident"])
            node["maintenance"] = False
            node["maintenance_reason"] = None
            if "fault" in node:
                node["fault"] = None
            node["updated_at"] = _now()
        return self._accepted(request, node, minor)

    # -- routing -------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """Every route of the simulated Ironic."""
        return [
            *self.provisioning.routes(),
            Route("/", self.root, methods=["GET"]),
            Route("/v1", self.v1, methods=["GET"]),
            Route("/v1/", self.v1, methods=["GET"]),
            Route("/v1/nodes", self.list_nodes, methods=["GET"]),
            Route("/v1/nodes/detail", self.list_nodes_detail, methods=["GET"]),
            Route("/v1/nodes/{ident}", self.show_node, methods=["GET"]),
            Route("/v1/nodes/{ident}/states", self.node_states, methods=["GET"]),
            Route("/v1/nodes/{ident}/states/power", self.set_power_state, methods=["PUT"]),
            Route("/v1/nodes/{ident}/states/provision", self.set_provision_state, methods=["PUT"]),
            Route("/v1/nodes/{ident}/maintenance", self.set_maintenance, methods=["PUT"]),
            Route("/v1/nodes/{ident}/maintenance", self.unset_maintenance, methods=["DELETE"]),
        ]


def build(sim: Simulator, region: RegionState) -> Router:
    """The Ironic API of `region`, to be mounted at ``/{region}/baremetal``."""
    return Router(routes=Ironic(sim, region).routes())
