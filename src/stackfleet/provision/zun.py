"""The Zun backend: a container workload's members are Zun containers, created with
`run=true` and the workload's labels (Zun container `labels`), found again with one list
call (`GET /v1/containers`), never one GET per container.

The catalog's `container` service (Zun, API 1.40) through a keystoneauth adapter on the
workload's project-scoped session: openstacksdk has no proxy for Zun."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from stackfleet.actions.base import (
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Record,
    wait_for,
)
from stackfleet.core.times import parse_time
from stackfleet.model.workloads import (
    CONTAINER_STATUS,
    META_MEMBER,
    META_SPEC,
    META_WORKLOAD,
    container_status,
)
from stackfleet.provision.member_action import (
    CreatesMember,
    MemberAction,
    StateVerb,
    session,
    wait_member,
)
from stackfleet.provision.plan import Member
from stackfleet.provision.spec import Workload
from stackfleet.sources.openstack.container import adapter
from stackfleet.sources.openstack.listing import ListingError, RequestLog

STATUS = CONTAINER_STATUS


def zun_message(response: Any) -> str:
    """Zun's error text ({"errors": [{"detail": ...}]})."""
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:300]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return str(errors[0].get("detail") or errors[0].get("title"))
    return str(body)[:300]


def _call(
    conn: Any,
    method: str,
    path: str,
    log: RequestLog,
    label: str,
    body: Any = None,
    ok: tuple[int, ...] = (200, 202, 204),
) -> Any:
    log.add(label)
    try:
        response = adapter(conn).request(path, method, json=body, raise_exc=False)
    except Exception as exc:  # noqa: BLE001 - a transport error is this call's failure
        raise ActionError(f"{label} failed: {exc}") from exc
    if response.status_code not in ok:
        raise ActionError(f"{label} answered {response.status_code}: {zun_message(response)}")
    if response.status_code == 204 or not response.content:
        return {}
    return response.json()


def member_of(container: dict[str, Any]) -> Member:
    labels = container.get("labels") or {}
    try:
        index = int(labels.get(META_MEMBER) or 0)
    except ValueError:
        index = 0
    status, fault = container_status(container)
    return Member(
        id=str(container["uuid"]),
        name=str(container.get("name") or ""),
        index=index,
        status=status,
        spec_hash=str(labels.get(META_SPEC) or ""),
        created=parse_time(container.get("created_at")),
        host=container.get("host"),
        fault=fault,
        task_state=container.get("task_state"),
        raw=container,
    )


def list_all(conn: Any, project_id: str | None, log: RequestLog) -> dict[str, list[Member]]:
    """Every labelled container of the project, by workload."""
    try:
        body = _call(conn, "GET", "/containers", log, "container GET /containers")
    except ActionError as exc:
        raise ListingError(str(exc)) from exc
    found: dict[str, list[Member]] = {}
    for container in body.get("containers") or []:
        name = (container.get("labels") or {}).get(META_WORKLOAD)
        if not name or (project_id and container.get("project_id") not in (None, project_id)):
            continue
        found.setdefault(str(name), []).append(member_of(container))
    return found


def list_members(conn: Any, workload: str, project_id: str | None, log: RequestLog) -> list[Member]:
    return list_all(conn, project_id, log).get(workload, [])


# zun/conf/container_driver.py: what Zun gives a container that asks for nothing
DEFAULT_CPU, DEFAULT_MEMORY = 1.0, 512


def _demand(workload: Workload) -> dict[str, float]:
    """What one member takes of Zun's quota and a host: the spec's cpu and memory, or
    Zun's defaults (its quota counts stored containers, which carry the defaults)."""
    spec = workload.container
    cpu = spec.cpu if spec is not None and spec.cpu is not None else DEFAULT_CPU
    memory = spec.memory if spec is not None and spec.memory is not None else DEFAULT_MEMORY
    return {"containers": 1, "cpu": float(cpu), "memory": float(memory)}


def quota_short(
    conn: Any, workload: Workload, project_id: str, new: int, log: RequestLog
) -> tuple[list[str], str]:
    """What the project's Zun quota (`GET /v1/quotas/{project}?usages=true`) cannot hold
    of `new` more members, and a note when it could not be read."""
    if new <= 0:
        return [], ""
    try:
        quotas = _call(conn, "GET", f"/quotas/{project_id}?usages=true", log,
                       "container GET /quotas/{project_id}")  # fmt: skip
    except ActionError as exc:
        return [], f"workload {workload.name}: Zun quota not checked ({exc})"
    short = []
    for resource, each in _demand(workload).items():
        entry = quotas.get(resource) or {}
        limit, used = entry.get("limit"), entry.get("in_use") or 0
        if not isinstance(limit, int | float) or limit < 0:
            continue
        wanted, free = new * each, max(0.0, limit - used)
        if wanted > free:
            short.append(
                f"workload {workload.name}: Zun quota {resource} of project {project_id}: "
                f"needs {wanted:g}, {free:g} free ({used:g} of {limit:g} used)"
            )
    return short, ""


def capacity_short(
    conn: Any, workload: Workload, new: int, where: str, log: RequestLog
) -> tuple[list[str], str]:
    """Whether Zun's compute hosts (`GET /v1/hosts`, admin only) have room for `new`
    more members (CPU and RAM, as Zun's scheduler filters); a note when not readable."""
    if new <= 0:
        return [], ""
    try:
        hosts = _call(conn, "GET", "/hosts", log, "container GET /hosts").get("hosts") or []
    except ActionError as exc:
        return [], f"workload {workload.name}: Zun host capacity not checked ({exc})"
    demand = _demand(workload)
    fit = 0
    for host in hosts:
        free_cpu = float(host.get("cpus") or 0) - float(host.get("cpu_used") or 0)
        free_mem = float(host.get("mem_total") or 0) - float(host.get("mem_used") or 0)
        fit += max(0, int(min(free_cpu // demand["cpu"], free_mem // demand["memory"])))
    if fit < new:
        return [
            f"workload {workload.name}: Zun capacity: needs {new} x ({demand['cpu']:g} cpu, "
            f"{demand['memory']:g} MiB), {fit} fit on the {len(hosts)} zun-compute hosts "
            f"of {where}"
        ], ""
    return [], ""


def container_body(
    workload: Workload, index: int, name: str, digest: str, networks: list[dict[str, str]],
    security_groups: list[str],
) -> dict[str, Any]:  # fmt: skip
    """The POST /v1/containers body of one member, labelled so it is found again."""
    spec = workload.container
    assert spec is not None
    labels = dict(workload.metadata)
    if workload.owner:
        labels["owner"] = workload.owner
    labels.update({META_WORKLOAD: workload.name, META_MEMBER: str(index), META_SPEC: digest})
    body: dict[str, Any] = {
        "name": name,
        "image": spec.image,
        "labels": labels,
        "environment": dict(spec.env),
    }
    if spec.command is not None:
        body["command"] = spec.command if isinstance(spec.command, list) else spec.command.split()
    if spec.cpu is not None:
        body["cpu"] = spec.cpu
    if spec.memory is not None:
        body["memory"] = spec.memory
    if spec.ports:
        body["exposed_ports"] = {f"{port}/tcp": {} for port in spec.ports}
    if networks:
        body["nets"] = [
            {"network": n["uuid"]} if "uuid" in n else {"port": n["port"]} for n in networks
        ]
    if security_groups:
        body["security_groups"] = list(security_groups)
    if workload.placement.availability_zone:
        body["availability_zone"] = workload.placement.availability_zone
    return body


# -- actions ----------------------------------------------------------------------------------


def read_member(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    conn, log = session(ctx, record)
    found = _call(conn, "GET", f"/containers/{record['id']}", log,
                  "container GET /containers/{id}", ok=(200, 404))  # fmt: skip
    if "uuid" not in found:
        return None
    labels = found.get("labels") or {}
    return {
        "workload": labels.get(META_WORKLOAD),
        "metadata": labels,
        "tags": [],
        "status": STATUS.get(str(found.get("status")), "BUILD"),
        "container_status": found.get("status"),
        "task_state": found.get("task_state"),
    }


class _ContainerAction(MemberAction):
    kinds = ("container",)
    read = staticmethod(read_member)

    def _post(self, ctx: ActionContext, record: Record, action: str, query: str = "") -> None:
        conn, log = session(ctx, record)
        _call(conn, "POST", f"/containers/{record['id']}/{action}{query}", log,
              f"container POST /containers/{{id}}/{action}")  # fmt: skip

    def _wait(self, ctx: ActionContext, record: Record, wanted: str, what: str) -> Outcome:
        def failed(state: dict[str, Any]) -> str | None:
            status = state.get("container_status")
            return f"container {record['id']} is {status}" if status in ("Error", "Dead") else None

        def done(state: dict[str, Any]) -> bool:
            return state.get("container_status") == wanted and not state.get("task_state")

        return wait_member(ctx, record, read_member, done, failed, what)


class CreateContainerMember(CreatesMember, _ContainerAction):
    """Create and run one container member (Zun `POST /v1/containers?run=true`)."""

    type: Literal["provision-create-container"] = "provision-create-container"
    index: int
    body: dict[str, Any]

    def plan(self, record: Record) -> Plan:
        return self.make_plan(
            record,
            f"run container {self.body['name']} from {self.body['image']} "
            f"(workload {self.workload})",
            Change("container", None, self.body["name"]),
            Change("image", None, self.body["image"]),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn, log = session(ctx, record)
        made = _call(conn, "POST", "/containers?run=true", log,
                     "container POST /containers?run=true", self.body)  # fmt: skip
        self._server_id = str(made["uuid"])
        return {"container_uuid": self._server_id}


class DeleteContainerMember(_ContainerAction):
    """Delete one container member (stopped first: `?stop=true`; one still being
    created: `?force=true`)."""

    destructive = True
    type: Literal["provision-delete-container"] = "provision-delete-container"
    reason: str = ""

    def plan(self, record: Record) -> Plan:
        return self._plan(
            record,
            f"delete container {record.get('name')} ({record['id']}): {self.reason}",
            Change("container", record.get("name"), None),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn, log = session(ctx, record)
        state = read_member(ctx, record) or {}
        query = "?force=true" if state.get("container_status") == "Creating" else "?stop=true"
        _call(conn, "DELETE", f"/containers/{record['id']}{query}", log,
              "container DELETE /containers/{id}", ok=(204, 404))  # fmt: skip
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        def check() -> tuple[bool, dict[str, Any]]:
            state = read_member(ctx, record)
            return state is None, state or {"gone": True}

        return wait_for(ctx, check, f"delete container {record.get('name')}")


class _ContainerVerb(StateVerb, _ContainerAction):
    """A Zun action on a member (`POST …/{id}/<action>`), done once the container
    shows `settles` with no task under way."""

    action: ClassVar[str] = ""
    settles: ClassVar[str] = ""

    def act(self, ctx: ActionContext, record: Record) -> None:
        self._post(ctx, record, self.action)

    def reached(self, ctx: ActionContext, record: Record) -> Outcome:
        return self._wait(ctx, record, self.settles, f"{self.action} {record.get('name')}")


class StartContainerMember(_ContainerVerb):
    """Start a stopped container."""

    type: Literal["provision-start-container"] = "provision-start-container"
    done_status = "ACTIVE"
    words = "start container {name}"
    change = ("status", None, "Running")
    action, settles = "start", "Running"


class StopContainerMember(_ContainerVerb):
    """Stop a running container."""

    destructive = True
    type: Literal["provision-stop-container"] = "provision-stop-container"
    done_status = "SHUTOFF"
    words = "stop container {name}"
    change = ("status", None, "Stopped")
    action, settles = "stop", "Stopped"


class RebootContainerMember(_ContainerVerb):
    """Restart a container."""

    destructive = True
    type: Literal["provision-reboot-container"] = "provision-reboot-container"
    hard: bool = False
    words = "restart container {name}"
    change = ("reboot", None, "restart")
    action, settles = "reboot", "Running"


class RebuildContainerMember(_ContainerAction):
    """Rebuild a container from an image (Zun `rebuild?image=`)."""

    destructive = True
    type: Literal["provision-rebuild-container"] = "provision-rebuild-container"
    image_id: str
    image_name: str = ""

    def plan(self, record: Record) -> Plan:
        image = self.image_name or self.image_id
        return self._plan(
            record,
            f"rebuild container {record.get('name')} from {image}",
            Change("image", record.get("image_id"), image),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        from urllib.parse import quote

        self._post(ctx, record, "rebuild", f"?image={quote(self.image_name or self.image_id)}")
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "Running", f"rebuild {record.get('name')}")


VERBS: dict[str, type[MemberAction]] = {
    "start": StartContainerMember,
    "stop": StopContainerMember,
    "reboot": RebootContainerMember,
    "rebuild": RebuildContainerMember,
    "delete": DeleteContainerMember,
}


def container_logs(conn: Any, container_id: str, log: RequestLog, lines: int | None = None) -> str:
    """A container's logs (Zun `GET /v1/containers/{id}/logs`, the last `lines`)."""
    tail = str(lines) if lines else "all"
    path = f"/containers/{container_id}/logs?tail={tail}&stdout=true&stderr=true"
    body = _call(conn, "GET", path, log, "container GET /containers/{id}/logs")
    return body if isinstance(body, str) else str(body)
