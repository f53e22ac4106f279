"""Ironic's provisioning calls in the simulator: allocations (API 1.52+), node PATCH
(JSON patch of instance_info, extra, ...), and the deploy / undeploy state machine.

From the Bare Metal API reference (Allocations; Nodes - Update Node; Node State
Change) and ironic/conductor/allocations.py, manager.py: an allocation is created
`allocating` and becomes `active` with a node (provision_state available, powered, not in
maintenance, not associated, the resource class and every trait asked for, the
allocation's owner owning the node), or `error` with `Failed to process allocation
<uuid>: no available nodes match the resource class <rc>.`; the node's instance_uuid
becomes the allocation's uuid. A deploy needs `instance_info.image_source` and goes
deploying → active; an undeploy goes deleting → cleaning (automated cleaning) →
available, and the teardown destroys the node's allocation. With
`Simulator.action_delay` each step lasts that many seconds; without it a step completes
at once.

Contract notes (checked on the testbed's Ironic 39, fake-hardware nodes, by
tests/integration/test_testbed_baremetal_provision.py): the allocation's candidates are
only nodes with a power state (`with_power_state`: a fake-hardware node has none until
one is set), as here. The simulator's deploy ends powered on and its teardown powered
off, as a real driver's (the agent boots the instance, teardown powers the node off);
the `fake` deploy interface leaves the power as it was, so StackFleet counts a node
`active` as built whatever its power."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackfleet.simulator.http import json_response
from stackfleet.simulator.services.ironic import _UUID_RE, _headers, _now, ironic_error
from stackfleet.simulator.state import Obj
from stackfleet.simulator.stepping import later

if TYPE_CHECKING:
    from stackfleet.simulator.services.ironic import Ironic

ALLOCATION_MINOR = 52
ALLOCATION_FIELDS = (
    "uuid", "name", "node_uuid", "state", "last_error", "resource_class",
    "candidate_nodes", "traits", "extra", "owner", "created_at", "updated_at",
)  # fmt: skip
# node fields a PATCH may not change
_READ_ONLY = frozenset(
    {"uuid", "provision_state", "target_provision_state", "power_state",
     "target_power_state", "created_at", "updated_at", "provision_updated_at",
     "allocation_uuid", "reservation", "conductor", "last_error", "fault"}
)  # fmt: skip
DEPLOY_TARGETS = frozenset({"active", "deploy", "rebuild"})
UNDEPLOY_TARGETS = frozenset({"deleted", "undeploy"})


class IronicProvisioning:
    """Allocations, node PATCH and the deploy/undeploy steps of one region's Ironic."""

    def __init__(self, ironic: Ironic) -> None:
        self.ironic = ironic
        self.region = ironic.region
        self.sim = ironic.sim

    def routes(self) -> list[Route]:
        return [
            Route("/v1/allocations", self.list_allocations, methods=["GET"]),
            Route("/v1/allocations", self.create_allocation, methods=["POST"]),
            Route("/v1/allocations/{ident}", self.show_allocation, methods=["GET"]),
            Route("/v1/allocations/{ident}", self.delete_allocation, methods=["DELETE"]),
            Route("/v1/nodes/{ident}", self.patch_node, methods=["PATCH"]),
        ]

    # -- steps ------------------------------------------------------------------------

    def _later(self, step: Callable[[], None]) -> None:
        later(self.sim, step)

    @staticmethod
    def _set(node: Obj, state: str, target: str | None) -> None:
        now = _now()
        node["provision_state"] = state
        node["target_provision_state"] = target
        node["provision_updated_at"] = now
        node["updated_at"] = now

    def check_deploy(self, node: Obj, minor: int) -> None:
        """Ironic's deploy-interface validation at request time: an image to deploy."""
        if not (node.get("instance_info") or {}).get("image_source"):
            raise ironic_error(
                400,
                f"Cannot validate image information for node {node['uuid']} because one or "
                "more parameters are missing from its instance_info and insufficient "
                "information is present to boot from a remote volume. Missing are: "
                "['image_source']",
                minor,
            )

    def deploy(self, node: Obj) -> None:
        """deploying (target active) → active, powered on."""
        self._set(node, "deploying", "active")
        node["last_error"] = None
        node_id = node["uuid"]

        def done() -> None:
            current = self.region.nodes.get(node_id)
            if current is None or current.get("provision_state") != "deploying":
                return
            self._set(current, "active", None)
            current["power_state"] = "power on"

        self._later(done)

    def undeploy(self, node: Obj) -> None:
        """deleting (target available) → cleaning → available, powered off; the
        teardown destroys the node's allocation and clears its instance."""
        self._set(node, "deleting", "available")
        node_id = node["uuid"]

        def torn_down() -> None:
            current = self.region.nodes.get(node_id)
            if current is None or current.get("provision_state") != "deleting":
                return
            allocation_id = current.get("allocation_uuid")
            if allocation_id:
                self.region.allocations.pop(str(allocation_id), None)
            current["allocation_uuid"] = None
            current["instance_uuid"] = None
            current["instance_info"] = {}
            current["power_state"] = "power off"
            if current.get("automated_clean") is False:
                self._set(current, "available", None)
                return
            self._set(current, "cleaning", "available")

            def cleaned() -> None:
                again = self.region.nodes.get(node_id)
                if again is not None and again.get("provision_state") == "cleaning":
                    self._set(again, "available", None)

            self._later(cleaned)

        self._later(torn_down)

    # -- allocations --------------------------------------------------------------------

    def _view(self, request: Request, allocation: Obj, minor: int) -> Obj:
        view = {k: allocation.get(k) for k in ALLOCATION_FIELDS if k != "owner" or minor >= 60}
        root = self.ironic._root(request)
        view["links"] = [
            {"href": f"{root}/v1/allocations/{allocation['uuid']}", "rel": "self"},
            {"href": f"{root}/allocations/{allocation['uuid']}", "rel": "bookmark"},
        ]
        return view

    def _call(self, request: Request) -> tuple[Obj, int]:
        token, minor = self.ironic._call(request)
        if minor < ALLOCATION_MINOR:
            raise ironic_error(404, "The resource could not be found.", minor)
        return token, minor

    @staticmethod
    def _project(token: Obj) -> str | None:
        if token.get("system"):
            return None
        project = token.get("project")
        return str(project["id"]) if isinstance(project, dict) else None

    def _sees(self, token: Obj, allocation: Obj) -> bool:
        project = self._project(token)
        return project is None or allocation.get("owner") == project

    def _allocation(self, token: Obj, minor: int, ident: str) -> Obj:
        found: Obj | None
        if _UUID_RE.match(ident):
            found = self.region.allocations.get(ident)
        else:
            found = next(
                (a for a in self.region.allocations.values() if a.get("name") == ident), None
            )
        if found is None or not self._sees(token, found):
            raise ironic_error(404, f"Allocation {ident} could not be found.", minor)
        return found

    async def list_allocations(self, request: Request) -> Response:
        token, minor = self._call(request)
        params = request.query_params
        items = [a for a in self.region.allocations.values() if self._sees(token, a)]
        for key in ("resource_class", "state", "owner"):
            if params.get(key):
                items = [a for a in items if a.get(key) == params[key]]
        if params.get("node"):
            node = self.ironic._node(token, minor, params["node"])
            items = [a for a in items if a.get("node_uuid") == node["uuid"]]
        items.sort(key=lambda a: str(a.get("created_at")) + str(a["uuid"]))
        limit = self.ironic._limit(request, minor)
        start = 0
        if params.get("marker"):
            index = next((i for i, a in enumerate(items) if a["uuid"] == params["marker"]), None)
            if index is None:
                raise ironic_error(404, f"Allocation {params['marker']} could not be found.", minor)
            start = index + 1
        page = items[start : start + limit]
        body: Obj = {"allocations": [self._view(request, a, minor) for a in page]}
        if page and len(page) == limit:
            root = self.ironic._root(request)
            body["next"] = (
                f"{root}/v1/allocations?sort_key=id&sort_dir=asc&limit={limit}"
                f"&marker={page[-1]['uuid']}"
            )
        return json_response(body, 200, _headers(minor))

    async def show_allocation(self, request: Request) -> Response:
        token, minor = self._call(request)
        allocation = self._allocation(token, minor, request.path_params["ident"])
        return json_response(self._view(request, allocation, minor), 200, _headers(minor))

    async def create_allocation(self, request: Request) -> Response:
        token, minor = self._call(request)
        body = await self.ironic._body(request, minor)
        resource_class = body.get("resource_class")
        if not isinstance(resource_class, str) or not resource_class:
            raise ironic_error(400, "Either 'resource_class' or 'node' must be specified.", minor)
        traits = body.get("traits") or []
        if not isinstance(traits, list) or not all(isinstance(t, str) for t in traits):
            raise ironic_error(400, "Invalid traits: a list of strings is expected.", minor)
        extra = body.get("extra") or {}
        if not isinstance(extra, dict):
            raise ironic_error(400, "Invalid extra: a dictionary is expected.", minor)
        name = body.get("name")
        project = self._project(token)
        owner = body.get("owner") or project
        if project is not None and owner != project:
            raise ironic_error(
                403, "Policy doesn't allow baremetal:allocation:create_restricted", minor
            )
        allocation_id = str(body.get("uuid") or uuid.uuid4())
        now = _now()
        with self.sim.state.lock:
            if name and any(a.get("name") == name for a in self.region.allocations.values()):
                raise ironic_error(409, f"An allocation with name {name} already exists.", minor)
            allocation: Obj = {
                "uuid": allocation_id, "name": name, "node_uuid": None,
                "state": "allocating", "last_error": None, "resource_class": resource_class,
                "candidate_nodes": list(body.get("candidate_nodes") or []),
                "traits": traits, "extra": extra, "owner": owner,
                "created_at": now, "updated_at": None,
            }  # fmt: skip
            self.region.allocations[allocation_id] = allocation
            self._later(lambda: self._allocate(allocation_id))
        view = self._view(request, allocation, minor)
        return json_response(view, 201, _headers(minor))

    def _allocate(self, allocation_id: str) -> None:
        allocation = self.region.allocations.get(allocation_id)
        if allocation is None or allocation.get("state") != "allocating":
            return
        wanted_traits = set(allocation.get("traits") or [])
        candidates = [
            n
            for n in sorted(self.region.nodes.values(), key=lambda n: str(n.get("name")))
            if n.get("provision_state") == "available"
            and n.get("power_state") is not None
            and not n.get("maintenance")
            and not n.get("instance_uuid")
            and n.get("resource_class") == allocation["resource_class"]
            and (not allocation.get("owner") or allocation["owner"] in
                 (n.get("owner"), n.get("lessee")))
            and (not allocation.get("candidate_nodes")
                 or n["uuid"] in allocation["candidate_nodes"]
                 or n.get("name") in allocation["candidate_nodes"])
        ]  # fmt: skip
        error = None
        if not candidates:
            error = "no available nodes match the resource class " + allocation["resource_class"]
        else:
            matching = [n for n in candidates if wanted_traits <= set(n.get("traits") or [])]
            if not matching:
                error = "no suitable nodes have the requested traits " + ", ".join(
                    sorted(wanted_traits)
                )
            candidates = matching
        allocation["updated_at"] = _now()
        if error is not None:
            allocation["state"] = "error"
            allocation["last_error"] = f"Failed to process allocation {allocation_id}: {error}."
            return
        node = candidates[0]
        node["allocation_uuid"] = allocation_id
        node["instance_uuid"] = allocation_id
        node["updated_at"] = _now()
        allocation["node_uuid"] = node["uuid"]
        allocation["state"] = "active"

    async def delete_allocation(self, request: Request) -> Response:
        token, minor = self._call(request)
        with self.sim.state.lock:
            allocation = self._allocation(token, minor, request.path_params["ident"])
            node = self.region.nodes.get(str(allocation.get("node_uuid") or ""))
            if node is not None and not node.get("maintenance"):
                if node.get("target_provision_state"):
                    raise ironic_error(
                        409,
                        f"Cannot remove allocation {allocation['uuid']} for node "
                        f"{node['uuid']}, because the node is in state "
                        f"{node.get('provision_state')} where updates are not allowed (and "
                        "maintenance mode is off)",
                        minor,
                    )
                if node.get("provision_state") == "active":
                    raise ironic_error(
                        409,
                        f"Cannot remove allocation {allocation['uuid']} for node "
                        f"{node['uuid']}, because the node is active (and maintenance mode "
                        "is off)",
                        minor,
                    )
            if node is not None:
                node["allocation_uuid"] = None
                node["instance_uuid"] = None
            del self.region.allocations[allocation["uuid"]]
        return Response(status_code=204, headers=_headers(minor))

    # -- node PATCH ---------------------------------------------------------------------

    async def patch_node(self, request: Request) -> Response:
        token, minor = self.ironic._call(request)
        try:
            import json

            patch: Any = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise ironic_error(400, "Malformed request body.", minor) from exc
        if not isinstance(patch, list):
            raise ironic_error(400, "Invalid patch: a JSON patch list is expected.", minor)
        with self.sim.state.lock:
            node = self.ironic._node(token, minor, request.path_params["ident"])
            changed = _apply_patch(node, patch, minor)
            changed["updated_at"] = _now()
            node.clear()
            node.update(changed)
            view = self.ironic._node_view(request, node, minor, None, detail=True)
        return json_response(view, 200, _headers(minor))


def _apply_patch(node: Obj, patch: list[Any], minor: int) -> Obj:
    """RFC 6902 add / replace / remove on a copy of the node (paths one or two deep, as
    Ironic's PATCH of instance_info, extra, properties, driver_info takes them)."""
    import copy

    result = copy.deepcopy(node)
    for op in patch:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
            raise ironic_error(400, f"Invalid patch operation: {op}", minor)
        parts = [p for p in str(op.get("path") or "").split("/") if p]
        if not parts or parts[0] in _READ_ONLY:
            raise ironic_error(
                400, f"'{op.get('path')}' is an internal attribute and can not be updated", minor
            )
        target: Any = result
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                if op["op"] == "remove":
                    raise ironic_error(400, f"can't remove non-existent object '{part}'", minor)
                target[part] = {}
            target = target[part]
        leaf = parts[-1]
        if op["op"] == "remove":
            if leaf not in target:
                raise ironic_error(400, f"can't remove non-existent object '{leaf}'", minor)
            if len(parts) == 1:
                target[leaf] = None
            else:
                del target[leaf]
        else:
            if "value" not in op:
                raise ironic_error(400, "'value' is a required property", minor)
            target[leaf] = op["value"]
    return result
