"""The standalone Ironic backend: a bare-metal workload's members are Ironic nodes
reserved by allocations (API 1.52+) and deployed with the workload's image.

Create: POST /v1/allocations (resource class, traits, the workload's labels in `extra`,
owner the workload's project) → the allocation goes `active` with a node (or `error`:
Ironic's message, the allocation removed) → PATCH the node's `instance_info/image_source`
→ provision target `active` (deploying → active). Delete: provision target `deleted`
(deleting → cleaning → available; Ironic's teardown destroys the allocation), or, for an
allocation that never got a node, DELETE the allocation. Members are read with two list
calls (allocations, nodes), never one GET per node."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

from stackfleet.actions.base import (
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Record,
)
from stackfleet.core.times import parse_time
from stackfleet.model.workloads import (
    FAILED_NODE_STATES,
    META_MEMBER,
    META_SPEC,
    META_WORKLOAD,
    allocation_status,
)
from stackfleet.provision.member_action import (
    CreatesMember,
    MemberAction,
    StateVerb,
    session,
    wait_member,
)
from stackfleet.provision.plan import Member
from stackfleet.sources.openstack.listing import ListingError, RequestLog, endpoint_of

# 1.52 allocations, 1.60 allocation owner, 1.65 lessee; 1.78 is Ironic 2023.2's
MICROVERSION = "1.78"
FAILED_STATES = FAILED_NODE_STATES


def _call(
    conn: Any,
    method: str,
    path: str,
    log: RequestLog,
    label: str,
    body: Any = None,
    ok: tuple[int, ...] = (200, 201, 202, 204),
) -> Any:
    """One Ironic call; ActionError with Ironic's message unless its status is `ok`."""
    log.add(label)
    proxy = conn.baremetal
    try:
        response = proxy.request(
            endpoint_of(proxy) + path, method, json=body, microversion=MICROVERSION,
            raise_exc=False,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a transport error is this call's failure
        raise ActionError(f"{label} failed: {exc}") from exc
    if response.status_code not in ok:
        raise ActionError(f"{label} answered {response.status_code}: {ironic_message(response)}")
    if response.status_code == 204 or not response.content:
        return {}
    return response.json()


def ironic_message(response: Any) -> str:
    """Ironic's error text: {"error_message": "<JSON with faultstring>"}."""
    import json

    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:300]
    raw = body.get("error_message") if isinstance(body, dict) else None
    if isinstance(raw, str):
        try:
            inner = json.loads(raw)
            return str(inner.get("faultstring") or raw)
        except ValueError:
            return raw
    return str(body)[:300]


def _labels(extra: dict[str, Any], workload: str) -> bool:
    return str(extra.get(META_WORKLOAD) or "") == workload


def list_members(conn: Any, workload: str, project_id: str | None, log: RequestLog) -> list[Member]:
    """Every member of `workload`: the allocations carrying its labels, with their
    nodes (two list calls)."""
    return [m for m in list_all(conn, project_id, log).get(workload, [])]


def list_all(conn: Any, project_id: str | None, log: RequestLog) -> dict[str, list[Member]]:
    """Every labelled allocation of the project, by workload, as members."""
    try:
        body = _call(conn, "GET", "/allocations", log, "baremetal GET /allocations")
    except ActionError as exc:
        raise ListingError(str(exc)) from exc
    allocations = [
        a
        for a in body.get("allocations") or []
        if (a.get("extra") or {}).get(META_WORKLOAD)
        and (project_id is None or a.get("owner") in (None, project_id))
    ]
    if not allocations:
        return {}
    try:
        nodes_body = _call(conn, "GET", "/nodes/detail", log, "baremetal GET /nodes/detail")
    except ActionError as exc:
        raise ListingError(str(exc)) from exc
    nodes = {str(n.get("uuid")): n for n in nodes_body.get("nodes") or []}
    found: dict[str, list[Member]] = {}
    for allocation in allocations:
        extra = allocation.get("extra") or {}
        node = nodes.get(str(allocation.get("node_uuid") or ""))
        found.setdefault(str(extra[META_WORKLOAD]), []).append(member_of(allocation, node))
    return found


def member_status(
    allocation: dict[str, Any], node: dict[str, Any] | None
) -> tuple[str, str | None]:
    """A member's status in the words members use (ACTIVE, BUILD, ERROR, SHUTOFF,
    DELETING) and its fault, from the allocation and its node."""
    return allocation_status(allocation.get("state"), allocation.get("last_error"), node)


def member_of(allocation: dict[str, Any], node: dict[str, Any] | None) -> Member:
    extra = allocation.get("extra") or {}
    try:
        index = int(extra.get(META_MEMBER) or 0)
    except ValueError:
        index = 0
    status, fault = member_status(allocation, node)
    raw = dict(node or {})
    raw["allocation"] = allocation
    return Member(
        id=str(node["uuid"]) if node else str(allocation["uuid"]),
        name=str(allocation.get("name") or ""),
        index=index,
        status=status,
        spec_hash=str(extra.get(META_SPEC) or ""),
        created=parse_time(allocation.get("created_at")),
        host=str(node.get("name") or node["uuid"]) if node else None,
        fault=fault,
        raw=raw,
    )


def allocation_body(
    workload: str,
    index: int,
    name: str,
    digest: str,
    resource_class: str,
    traits: list[str],
    project_id: str,
    metadata: dict[str, str],
) -> dict[str, Any]:
    extra = dict(metadata)
    extra.update({META_WORKLOAD: workload, META_MEMBER: str(index), META_SPEC: digest})
    return {
        "name": name,
        "resource_class": resource_class,
        "traits": list(traits),
        "extra": extra,
        "owner": project_id,
    }


# -- actions ----------------------------------------------------------------------------------


def read_member(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    """The member re-read just before acting: its allocation's labels and its node's
    state (None: both gone)."""
    conn, log = session(ctx, record)
    allocation_id = record.get("allocation_id")
    allocation: dict[str, Any] = {}
    if allocation_id:
        allocation = _call(conn, "GET", f"/allocations/{allocation_id}", log,
                           "baremetal GET /allocations/{id}", ok=(200, 404)) or {}  # fmt: skip
        if "uuid" not in allocation:
            allocation = {}
    node: dict[str, Any] = {}
    node_id = record.get("node_id")
    if node_id:
        node = _call(conn, "GET", f"/nodes/{node_id}", log, "baremetal GET /nodes/{id}",
                     ok=(200, 404)) or {}  # fmt: skip
        if "uuid" not in node:
            node = {}
    if not allocation and not node:
        return None
    extra = allocation.get("extra") or {}
    labelled = extra.get(META_WORKLOAD)
    if node and node.get("allocation_uuid") != allocation.get("uuid"):
        labelled = None  # the node went to another allocation since
    return {
        "workload": labelled,
        "metadata": extra,
        "tags": [],
        "status": member_status(allocation, node or None)[0] if allocation else None,
        "provision_state": node.get("provision_state"),
        "power_state": node.get("power_state"),
        "task_state": node.get("target_provision_state"),
    }


class _NodeAction(MemberAction):
    kinds = ("baremetal_node",)
    read = staticmethod(read_member)


class CreateNodeMember(CreatesMember, _NodeAction):
    """Create one bare-metal member: an allocation (resource class, traits, the
    workload's labels), then deploy the allocated node with the image. An allocation
    Ironic cannot satisfy is reported with Ironic's message and removed."""

    type: Literal["provision-create-baremetal"] = "provision-create-baremetal"
    index: int
    allocation: dict[str, Any]
    image_id: str

    def plan(self, record: Record) -> Plan:
        return self.make_plan(
            record,
            f"allocate a {self.allocation['resource_class']} node for {self.allocation['name']} "
            f"and deploy image {self.image_id} (workload {self.workload})",
            Change("baremetal_node", None, self.allocation["name"]),
            Change("image", None, self.image_id),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn, log = session(ctx, record)
        made = _call(conn, "POST", "/allocations", log, "baremetal POST /allocations",
                     self.allocation)  # fmt: skip
        allocation_id = str(made["uuid"])
        deadline = time.monotonic() + ctx.verify_timeout
        while made.get("state") == "allocating":
            if time.monotonic() >= deadline:
                break
            time.sleep(ctx.poll_interval)
            made = _call(conn, "GET", f"/allocations/{allocation_id}", log,
                         "baremetal GET /allocations/{id}")  # fmt: skip
        if made.get("state") != "active" or not made.get("node_uuid"):
            reason = made.get("last_error") or f"allocation {allocation_id} {made.get('state')}"
            # nothing half-made is left behind: the allocation goes
            _call(conn, "DELETE", f"/allocations/{allocation_id}", log,
                  "baremetal DELETE /allocations/{id}", ok=(204, 404))  # fmt: skip
            raise ActionError(str(reason))
        node_id = str(made["node_uuid"])
        _call(
            conn, "PATCH", f"/nodes/{node_id}", log, "baremetal PATCH /nodes/{id}",
            [{"op": "add", "path": "/instance_info/image_source", "value": self.image_id}],
        )  # fmt: skip
        _call(conn, "PUT", f"/nodes/{node_id}/states/provision", log,
              "baremetal PUT /nodes/{id}/states/provision", {"target": "active"})  # fmt: skip
        self._server_id = node_id
        return {"node_uuid": node_id, "allocation_uuid": allocation_id}


class DeleteNodeMember(_NodeAction):
    """Give a bare-metal member back: undeploy its node (deleting → cleaning →
    available; Ironic removes the allocation), or delete an allocation that never got
    a node. Re-reads it first: still the workload's allocation, not excluded."""

    destructive = True
    type: Literal["provision-delete-baremetal"] = "provision-delete-baremetal"
    reason: str = ""

    def plan(self, record: Record) -> Plan:
        return self._plan(
            record,
            f"undeploy bare-metal member {record.get('name')} (node {record.get('node_id')}): "
            f"{self.reason}",
            Change("baremetal_node", record.get("name"), None),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn, log = session(ctx, record)
        if record.get("node_id"):
            _call(conn, "PUT", f"/nodes/{record['node_id']}/states/provision", log,
                  "baremetal PUT /nodes/{id}/states/provision", {"target": "deleted"})  # fmt: skip
        else:
            _call(conn, "DELETE", f"/allocations/{record['allocation_id']}", log,
                  "baremetal DELETE /allocations/{id}", ok=(204, 404))  # fmt: skip
        return {}


def _power(ctx: ActionContext, record: Record, target: str) -> None:
    conn, log = session(ctx, record)
    _call(conn, "PUT", f"/nodes/{record['node_id']}/states/power", log,
          "baremetal PUT /nodes/{id}/states/power", {"target": target})  # fmt: skip


def _wait_node(ctx: ActionContext, record: Record, check: Any, what: str) -> Outcome:
    def failed(state: dict[str, Any]) -> str | None:
        if state.get("provision_state") in FAILED_STATES:
            return f"node {record.get('node_id')} went to {state.get('provision_state')}"
        return None

    return wait_member(ctx, record, read_member, lambda s: bool(check(s)), failed, what)


class _PowerVerb(StateVerb, _NodeAction):
    """A change of a member's node's power, done once the node shows `settles`."""

    target: ClassVar[str] = ""  # Ironic's power target
    settles: ClassVar[str] = ""  # the power state that ends it

    def act(self, ctx: ActionContext, record: Record) -> None:
        _power(ctx, record, self.target)

    def reached(self, ctx: ActionContext, record: Record) -> Outcome:
        wanted = self.settles
        return _wait_node(ctx, record, lambda s: s.get("power_state") == wanted, self.target)


class StartNodeMember(_PowerVerb):
    """Power a member's node on."""

    type: Literal["provision-start-baremetal"] = "provision-start-baremetal"
    done_status = "ACTIVE"
    words = "power on node of {name}"
    change = ("power_state", "power off", "power on")
    target = settles = "power on"


class StopNodeMember(_PowerVerb):
    """Power a member's node off."""

    destructive = True
    type: Literal["provision-stop-baremetal"] = "provision-stop-baremetal"
    done_status = "SHUTOFF"
    words = "power off node of {name}"
    change = ("power_state", "power on", "power off")
    target = settles = "power off"


class RebootNodeMember(_PowerVerb):
    """Reboot a member's node (Ironic power target `soft rebooting`; hard: `rebooting`)."""

    destructive = True
    type: Literal["provision-reboot-baremetal"] = "provision-reboot-baremetal"
    hard: bool = False
    words = "reboot node of {name}"
    change = ("reboot", None, "rebooting")
    settles = "power on"

    def act(self, ctx: ActionContext, record: Record) -> None:
        _power(ctx, record, "rebooting" if self.hard else "soft rebooting")


class RebuildNodeMember(_NodeAction):
    """Redeploy a member's node from an image (instance_info image_source, then
    provision target `rebuild`)."""

    destructive = True
    type: Literal["provision-rebuild-baremetal"] = "provision-rebuild-baremetal"
    image_id: str
    image_name: str = ""

    def plan(self, record: Record) -> Plan:
        return self._plan(
            record,
            f"rebuild node of {record.get('name')} from image {self.image_name or self.image_id}",
            Change("image", record.get("image_id"), self.image_name or self.image_id),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn, log = session(ctx, record)
        _call(
            conn, "PATCH", f"/nodes/{record['node_id']}", log, "baremetal PATCH /nodes/{id}",
            [{"op": "add", "path": "/instance_info/image_source", "value": self.image_id}],
        )  # fmt: skip
        _call(conn, "PUT", f"/nodes/{record['node_id']}/states/provision", log,
              "baremetal PUT /nodes/{id}/states/provision", {"target": "rebuild"})  # fmt: skip
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return _wait_node(ctx, record, lambda s: s.get("provision_state") == "active", "rebuild")


VERBS: dict[str, type[MemberAction]] = {
    "start": StartNodeMember,
    "stop": StopNodeMember,
    "reboot": RebootNodeMember,
    "rebuild": RebuildNodeMember,
    "delete": DeleteNodeMember,
}
