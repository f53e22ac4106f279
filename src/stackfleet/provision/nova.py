"""The Nova backend: a workload's members are Nova servers (VMs, or bare metal through a
bare-metal flavor). Creating and deleting a member are actions (plan, observe, execute),
run by the engine's executor behind the safety gate and the audit log. Members are read
with one list call filtered by the workload's tag, never one GET per server."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from stackfleet.actions.base import ActionContext, ActionError, Change, Outcome, Plan, Record
from stackfleet.provision.member_action import (
    CreatesMember,
    MemberAction,
    session,
    wait_member,
)
from stackfleet.provision.plan import (
    META_LEASE,
    META_MEMBER,
    META_SPEC,
    META_WORKLOAD,
    Member,
    member_of,
    workload_tag,
)
from stackfleet.provision.resolve import Resolved
from stackfleet.sources.openstack.listing import RequestLog, endpoint_of, iter_pages, request_json

# 2.52: tags at create; 2.64: server group `policy`; 2.67: volume_type in bdm v2
MICROVERSION = "2.67"


def list_members(conn: Any, workload: str, project_id: str | None, log: RequestLog) -> list[Member]:
    """Every member of `workload`: one paginated list call filtered by its tag (the
    project's servers only, as the token sees them)."""
    members: list[Member] = []
    for page in iter_pages(
        conn.compute,
        "/servers/detail",
        "servers",
        log,
        "compute GET /servers/detail?tags=",
        {"tags": workload_tag(workload)},
        MICROVERSION,
    ):
        for server in page:
            member = member_of(server, workload, project_id)
            if member is not None:
                members.append(member)
    return members


def find_group(conn: Any, name: str, log: RequestLog) -> str | None:
    """The id of the project's server group called `name`, if there is one."""
    body = request_json(
        conn.compute, "/os-server-groups", log, "compute GET /os-server-groups",
        microversion=MICROVERSION,
    )  # fmt: skip
    for group in body.get("server_groups") or []:
        if group.get("name") == name:
            return str(group["id"])
    return None


def server_body(
    resolved: Resolved,
    index: int,
    name: str,
    digest: str,
    group_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The POST /servers body of one member, labelled so it is found again."""
    w = resolved.workload
    metadata = dict(w.metadata)
    if w.owner:
        metadata["owner"] = w.owner
    metadata.update({META_WORKLOAD: w.name, META_MEMBER: str(index), META_SPEC: digest})
    if w.lease is not None:
        metadata[META_LEASE] = (now + w.lease).strftime("%Y-%m-%dT%H:%M:%SZ")
    server: dict[str, Any] = {
        "name": name,
        "flavorRef": str((resolved.flavor or {}).get("id")),
        "networks": resolved.networks or "auto",
        "metadata": metadata,
        "tags": sorted({*w.tags, workload_tag(w.name)}),
    }
    if resolved.security_groups:
        server["security_groups"] = [{"name": g} for g in resolved.security_groups]
    if w.key_pair:
        server["key_name"] = w.key_pair
    if w.placement.availability_zone:
        server["availability_zone"] = w.placement.availability_zone
    bdms: list[dict[str, Any]] = []
    volumes = w.volumes
    if volumes is not None and volumes.boot is not None:
        boot = {
            "boot_index": 0,
            "uuid": resolved.image_id,
            "source_type": "image",
            "destination_type": "volume",
            "volume_size": volumes.boot.size,
            "delete_on_termination": volumes.boot.delete_on_termination,
        }
        if volumes.boot.type:
            boot["volume_type"] = volumes.boot.type
        bdms.append(boot)
        server["imageRef"] = ""
    else:
        server["imageRef"] = resolved.image_id
    for extra in volumes.extra if volumes else []:
        item: dict[str, Any] = {
            "boot_index": -1,
            "source_type": "blank",
            "destination_type": "volume",
            "volume_size": extra.size,
            "delete_on_termination": extra.delete_on_termination,
        }
        if extra.type:
            item["volume_type"] = extra.type
        bdms.append(item)
    if bdms:
        if not server["imageRef"]:
            del server["imageRef"]
        server["block_device_mapping_v2"] = bdms
    body: dict[str, Any] = {"server": server}
    if group_id:
        body["os:scheduler_hints"] = {"group": group_id}
    return body


def _post(conn: Any, path: str, body: dict[str, Any], log: RequestLog, label: str) -> Any:
    log.add(label)
    try:
        response = conn.compute.post(
            endpoint_of(conn.compute) + path, json=body, microversion=MICROVERSION, raise_exc=False
        )
    except Exception as exc:  # noqa: BLE001 - a transport error is this action's failure
        raise ActionError(f"{label} failed: {exc}") from exc
    if response.status_code >= 400:
        raise ActionError(f"{label} answered {response.status_code}: {_nova_message(response)}")
    return response.json() if response.content else {}


def _nova_message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
    return str(body)[:300]


def create_group(conn: Any, name: str, policy: str, log: RequestLog) -> str:
    body = _post(
        conn,
        "/os-server-groups",
        {"server_group": {"name": name, "policy": policy}},
        log,
        "compute POST /os-server-groups",
    )
    return str(body["server_group"]["id"])


def delete_group(conn: Any, group_id: str, log: RequestLog) -> None:
    log.add("compute DELETE /os-server-groups/{id}")
    response = conn.compute.delete(
        f"{endpoint_of(conn.compute)}/os-server-groups/{group_id}", raise_exc=False
    )
    if response.status_code not in (204, 404):
        raise ActionError(f"deleting server group {group_id} answered {response.status_code}")


def read_member(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    """The member re-read from Nova just before acting (None: gone): its workload
    label, metadata, tags, status and task state."""
    conn, log = session(ctx, record)
    log.add("compute GET /servers/{id}")
    response = conn.compute.get(
        f"{endpoint_of(conn.compute)}/servers/{record['id']}",
        microversion=MICROVERSION,
        raise_exc=False,
    )
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise ActionError(f"reading server {record['id']} answered {response.status_code}")
    server = response.json().get("server") or {}
    metadata = server.get("metadata") or {}
    tags = server.get("tags") or []
    labelled = metadata.get(META_WORKLOAD) if workload_tag(
        str(metadata.get(META_WORKLOAD))
    ) in tags else None  # fmt: skip
    return {
        "workload": labelled,
        "metadata": metadata,
        "tags": tags,
        "status": server.get("status"),
        "task_state": server.get("OS-EXT-STS:task_state"),
        "flavor": (server.get("flavor") or {}).get("original_name"),
        "image_id": (server.get("image") or {}).get("id") if server.get("image") else None,
    }


class CreateMember(CreatesMember):
    """Create one member of a workload (a Nova server with the workload's labels).
    Verified when Nova accepted it; the apply then waits for every new member together
    with list calls."""

    type: Literal["provision-create"] = "provision-create"
    index: int
    body: dict[str, Any]

    def plan(self, record: Record) -> Plan:
        server = self.body["server"]
        return self.make_plan(
            record,
            f"create server {server['name']} (workload {self.workload})",
            Change("server", None, server["name"]),
            Change("flavor", None, server.get("flavorRef")),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn, log = session(ctx, record)
        body = _post(conn, "/servers", self.body, log, "compute POST /servers")
        self._server_id = str((body.get("server") or {}).get("id"))
        return {"server_id": self._server_id}


class _ServerAction(MemberAction):
    read = staticmethod(read_member)


class DeleteMember(_ServerAction):
    """Delete one member of a workload. Re-reads it first: a server that no longer
    carries the workload's label (or carries the exclusion tag) is left alone."""

    destructive = True
    type: Literal["provision-delete"] = "provision-delete"
    reason: str = ""

    def plan(self, record: Record) -> Plan:
        return self.make_plan(
            record,
            f"delete server {record.get('name')} ({record['id']}) of workload {self.workload}: "
            f"{self.reason}",
            Change("server", record.get("name"), None),
            expects={"workload": self.workload},
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn, log = session(ctx, record)
        log.add("compute DELETE /servers/{id}")
        response = conn.compute.delete(
            f"{endpoint_of(conn.compute)}/servers/{record['id']}", raise_exc=False
        )
        if response.status_code not in (204, 404):
            raise ActionError(
                f"delete server {record['id']} answered {response.status_code}: "
                f"{_nova_message(response)}"
            )
        return {}


# -- the management verbs ---------------------------------------------------------------


def _server_action(ctx: ActionContext, record: Record, body: dict[str, Any]) -> None:
    conn, log = session(ctx, record)
    _post(
        conn,
        f"/servers/{record['id']}/action",
        body,
        log,
        f"compute POST action {next(iter(body))}",
    )


def _wait_status(ctx: ActionContext, record: Record, wanted: tuple[str, ...], what: str) -> Outcome:
    return wait_member(
        ctx,
        record,
        read_member,
        lambda s: s.get("status") in wanted and not s.get("task_state"),
        lambda s: f"server {record['id']} went to ERROR" if s.get("status") == "ERROR" else None,
        what,
    )


class _VerbAction(_ServerAction):
    """A verb on one member: re-reads the member first (it must still carry the
    workload's label and no task may be under way)."""

    idle_expected = True


class StartMember(_VerbAction):
    """Start a stopped member (Nova os-start)."""

    type: Literal["provision-start"] = "provision-start"

    def plan(self, record: Record) -> Plan | None:
        if record.get("status") == "ACTIVE":
            return None
        return self._plan(
            record,
            f"start server {record.get('name')}",
            Change("status", record.get("status"), "ACTIVE"),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        _server_action(ctx, record, {"os-start": None})
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return _wait_status(ctx, record, ("ACTIVE",), f"start {record.get('name')}")


class StopMember(_VerbAction):
    """Stop (shut off) a member (Nova os-stop)."""

    destructive = True
    type: Literal["provision-stop"] = "provision-stop"

    def plan(self, record: Record) -> Plan | None:
        if record.get("status") == "SHUTOFF":
            return None
        return self._plan(
            record,
            f"stop server {record.get('name')}",
            Change("status", record.get("status"), "SHUTOFF"),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        _server_action(ctx, record, {"os-stop": None})
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return _wait_status(ctx, record, ("SHUTOFF",), f"stop {record.get('name')}")


class RebootMember(_VerbAction):
    """Reboot a member (soft, or hard: also a stopped or hung one)."""

    destructive = True
    type: Literal["provision-reboot"] = "provision-reboot"
    hard: bool = False

    def plan(self, record: Record) -> Plan:
        how = "HARD" if self.hard else "SOFT"
        return self._plan(
            record,
            f"reboot ({how.lower()}) server {record.get('name')}",
            Change("reboot", None, how),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        _server_action(ctx, record, {"reboot": {"type": "HARD" if self.hard else "SOFT"}})
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return _wait_status(ctx, record, ("ACTIVE",), f"reboot {record.get('name')}")


class RebuildMember(_VerbAction):
    """Rebuild a member from an image (its disk is replaced; addresses stay)."""

    destructive = True
    type: Literal["provision-rebuild"] = "provision-rebuild"
    image_id: str
    image_name: str = ""

    def plan(self, record: Record) -> Plan:
        return self._plan(
            record,
            f"rebuild server {record.get('name')} from image {self.image_name or self.image_id}",
            Change("image", record.get("image_id"), self.image_name or self.image_id),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        _server_action(ctx, record, {"rebuild": {"imageRef": self.image_id}})
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return _wait_status(ctx, record, ("ACTIVE", "SHUTOFF"), f"rebuild {record.get('name')}")


class ResizeMember(_VerbAction):
    """Resize a member to another flavor, then confirm the resize (Nova leaves it in
    VERIFY_RESIZE until confirmed)."""

    destructive = True
    type: Literal["provision-resize"] = "provision-resize"
    flavor_id: str
    flavor_name: str = ""

    def plan(self, record: Record) -> Plan | None:
        if record.get("flavor_name") == self.flavor_name:
            return None
        return self._plan(
            record,
            f"resize server {record.get('name')} to {self.flavor_name or self.flavor_id}",
            Change("flavor", record.get("flavor_name"), self.flavor_name or self.flavor_id),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        _server_action(ctx, record, {"resize": {"flavorRef": self.flavor_id}})
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        resized = _wait_status(ctx, record, ("VERIFY_RESIZE",), f"resize {record.get('name')}")
        if not resized.verified:
            return resized
        _server_action(ctx, record, {"confirmResize": None})
        return _wait_status(
            ctx, record, ("ACTIVE", "SHUTOFF"), f"confirm resize {record.get('name')}"
        )


# verb -> the action class that carries it out on a Nova member
VERBS: dict[str, type[MemberAction]] = {
    "start": StartMember,
    "stop": StopMember,
    "reboot": RebootMember,
    "rebuild": RebuildMember,
    "resize": ResizeMember,
    "delete": DeleteMember,
}
READS = ("console-url", "logs")


def console_url(conn: Any, server_id: str, log: RequestLog, protocol: str = "vnc") -> str:
    """A remote console URL of a member (Nova remote-consoles, 2.6+)."""
    kind = {"vnc": "novnc", "spice": "spice-html5", "serial": "serial"}[protocol]
    body = _post(
        conn,
        f"/servers/{server_id}/remote-consoles",
        {"remote_console": {"protocol": protocol, "type": kind}},
        log,
        "compute POST /servers/{id}/remote-consoles",
    )
    return str((body.get("remote_console") or {}).get("url"))


def console_log(conn: Any, server_id: str, log: RequestLog, lines: int | None = None) -> str:
    """A member's console output (Nova os-getConsoleOutput; the last `lines`)."""
    body = _post(
        conn,
        f"/servers/{server_id}/action",
        {"os-getConsoleOutput": {"length": lines} if lines else {}},
        log,
        "compute POST action os-getConsoleOutput",
    )
    return str(body.get("output") or "")
