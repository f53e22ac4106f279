"""Project purge: delete everything a project owns (what ospurge and `openstack project
cleanup` do), done safely — a plan first, every deletion an action through the safety
gate and the audit log, in dependency order, resumable.

Order: the teardown order of `provision/teardown.py`, which `provision destroy` follows
for its own members too: containers → servers → server groups → floating IPs → router
interfaces → routers → ports → networks (with their subnets) → security groups → volume
snapshots → volumes (optionally backed up first) → images → key pairs (of the users
who belong to this project only) → the project itself (only with `delete_project`).
Each phase lists what is left of the project just before acting (so a second run picks
up where the first stopped), and the purge stops after a phase where something failed:
the next phase would only meet its dependencies still there.

Each deletion re-reads the resource first: gone (nothing to do), moved to another
project, or tagged with the exclusion tag since the listing → left alone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from stackfleet.actions.base import (
    Action,
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Record,
    Skip,
    label,
    wait_for,
)
from stackfleet.actions.block_storage import DeleteVolume
from stackfleet.actions.compute import DeleteServer
from stackfleet.actions.network import ReleaseFloatingIP
from stackfleet.actions.notify import Notifier
from stackfleet.core.errors import StackFleetError
from stackfleet.engine.execute import Connections, Executor, RunContext
from stackfleet.engine.gate import Candidate, idempotency_key
from stackfleet.engine.settings import Settings
from stackfleet.policy.schema import Policy, PolicySpec
from stackfleet.policy.view import FleetView
from stackfleet.provision import teardown
from stackfleet.provision.apply import ProvisionGate
from stackfleet.sources.openstack import block_storage, compute
from stackfleet.sources.openstack.connection import CloudTarget
from stackfleet.sources.openstack.container import MICROVERSION as CONTAINER_MICROVERSION
from stackfleet.sources.openstack.container import adapter as container_adapter
from stackfleet.sources.openstack.context import ListContext, list_kind
from stackfleet.sources.openstack.listing import (
    ListingError,
    RequestLog,
    ServiceMissing,
    endpoint_of,
    request_json,
)
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

ROUTER_INTERFACE_OWNERS = frozenset(
    {
        "network:router_interface",
        "network:router_interface_distributed",
        "network:ha_router_replicated_interface",
    }
)

# the kinds a purge deletes, in the order teardown.TEARDOWN gives them (bare-metal nodes
# are hardware the project was lent: not purged)
PURGED_KINDS = (
    "container", "server", "server_group", "floating_ip", "router_interface", "router",
    "port", "network", "security_group", "volume_snapshot", "volume", "image", "keypair",
    "project",
)  # fmt: skip
PHASES = tuple(phase.name for phase in teardown.phases(PURGED_KINDS))


class PurgeError(StackFleetError):
    """Some deletions of a purge failed or were left for a later run."""

    exit_code = 5


# -- the generic deletion ------------------------------------------------------------------

# kind -> (proxy attribute, path of one resource (formatted with the record), body key
#          (None: the body itself), the object's project field)
_RESOURCES: dict[str, tuple[str, str, str | None, str]] = {
    "container": ("container", "/containers/{id}?all_projects=true", None, "project_id"),
    "server_group": ("compute", "/os-server-groups/{id}", "server_group", "project_id"),
    "router_interface": ("network", "/ports/{id}", "port", "project_id"),
    "router": ("network", "/routers/{id}", "router", "project_id"),
    "port": ("network", "/ports/{id}", "port", "project_id"),
    "network": ("network", "/networks/{id}", "network", "project_id"),
    "security_group": ("network", "/security-groups/{id}", "security_group", "project_id"),
    "volume_snapshot": (
        "block_storage",
        "/snapshots/{id}",
        "snapshot",
        "os-extended-snapshot-attributes:project_id",
    ),
    "image": ("image", "/images/{id}", None, "owner"),
    # a key pair is its user's: the lister chose users who belong to this project only
    "keypair": ("compute", "/os-keypairs/{name}?user_id={user_id}", "keypair", ""),
    "project": ("identity", "/projects/{id}", "project", "id"),
}


def _proxy(conn: Any, name: str) -> Any:
    return container_adapter(conn) if name == "container" else getattr(conn, name)


def _microversion(proxy_name: str) -> str | None:
    return {
        "block_storage": block_storage.MICROVERSION,
        "compute": compute.MICROVERSION,
        "container": CONTAINER_MICROVERSION,
    }.get(proxy_name)


def _read(ctx: ActionContext, record: Record, what: str) -> dict[str, Any] | None:
    """The resource's live object (None: 404)."""
    proxy_name, path, key, _project = _RESOURCES[what]
    conn = ctx.connection(record["cloud"], record["region"])
    proxy = _proxy(conn, proxy_name)
    response = proxy.get(
        endpoint_of(proxy) + path.format_map(record),
        raise_exc=False,
        microversion=_microversion(proxy_name),
    )
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise ActionError(f"reading {label(record)} answered {response.status_code}")
    body = response.json()
    obj: dict[str, Any] = body.get(key) if key else body
    return obj or {}


class PurgeDelete(Action):
    """Delete one resource of a purged project (container, server group, router
    interface, router, port, network, security group, volume snapshot, image, key pair,
    or the project itself). Re-reads it first: it must still belong to the project
    (and, for a router interface, to its router)."""

    kinds = ("container", "server_group", "router_interface", "router", "port", "network",
             "security_group", "volume_snapshot", "image", "keypair", "project")  # fmt: skip
    destructive = True
    type: Literal["purge-delete"] = "purge-delete"
    what: str
    project_id: str
    router_id: str | None = None

    def plan(self, record: Record) -> Plan | Skip | None:
        if self.what == "image" and record.get("protected"):
            return Skip(self.type, "the image is protected; unprotect it to delete it")
        verb = "remove router interface" if self.what == "router_interface" else "delete"
        summary = f"{verb} {label(record)} of project {self.project_id}"
        expects: dict[str, Any] = {"project_id": self.project_id}
        if self.what == "router_interface":
            expects["device_id"] = self.router_id
            summary += f" from router {self.router_id}"
        return self.make_plan(
            record,
            summary,
            Change(record["kind"], record.get("name") or record["id"], None),
            expects=expects,
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        obj = _read(ctx, record, self.what)
        if obj is None:
            return None
        project_field = _RESOURCES[self.what][3]
        project = obj.get(project_field) if project_field else self.project_id
        return {
            "project_id": project or obj.get("tenant_id"),
            "device_id": obj.get("device_id"),
            "tags": obj.get("tags") or [],
            "metadata": obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {},
            "status": obj.get("status"),
        }

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        proxy_name, path, _key, _project = _RESOURCES[self.what]
        conn = ctx.connection(record["cloud"], record["region"])
        proxy = _proxy(conn, proxy_name)
        base = endpoint_of(proxy)
        if self.what == "router_interface":
            response = proxy.put(
                f"{base}/routers/{self.router_id}/remove_router_interface",
                json={"port_id": record["id"]},
                raise_exc=False,
            )
        else:
            url = base + path.format_map(record)
            if self.what == "container":
                # stopped first; one still being created can only be forced
                state = (_read(ctx, record, "container") or {}).get("status")
                url += "&force=true" if state == "Creating" else "&stop=true"
            response = proxy.delete(url, raise_exc=False, microversion=_microversion(proxy_name))
        if response.status_code >= 400 and response.status_code != 404:
            raise ActionError(
                f"{'remove' if self.what == 'router_interface' else 'delete'} {label(record)} "
                f"answered {response.status_code}: {_message(response)}"
            )
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        def check() -> tuple[bool, dict[str, Any]]:
            obj = _read(ctx, record, self.what)
            if obj is not None and obj.get("status") in ("error_deleting", "error", "Error"):
                raise ActionError(f"{label(record)} went to {obj.get('status')}")
            return obj is None, {"gone": obj is None}

        outcome = wait_for(ctx, check, f"delete {label(record)}")
        outcome.result = result
        return outcome


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:300]
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
        if "NeutronError" in body:
            return str(body["NeutronError"])
    return str(body)[:300]


# -- the purge -------------------------------------------------------------------------------


@dataclass
class PurgeItem:
    """One deletion of a purge plan, and how it ended."""

    phase: str
    kind: str
    id: str
    name: str
    status: str = "planned"
    message: str = ""


@dataclass
class PurgeReport:
    project_id: str
    project_exists: bool
    executed: bool
    items: list[PurgeItem] = field(default_factory=list)
    stopped_at: str | None = None

    @property
    def failed(self) -> list[PurgeItem]:
        return [i for i in self.items if i.status in ("failed", "unverified", "deferred")]


Lister = Callable[[ListContext, str], list[Record]]


def _of(records: list[Record], project_id: str) -> list[Record]:
    """Only the project's (a service that ignores a filter lists more, never less)."""
    return [r for r in records if r.get("project_id") == project_id]


def _servers(ctx: ListContext, project_id: str) -> list[Record]:
    return _of(
        list_kind(ctx, "server", ctx.target.conn.compute, "/servers/detail", "servers",
                  {"all_tenants": "1", "project_id": project_id}, compute.MICROVERSION),
        project_id,
    )  # fmt: skip


def _network_kind(kind_name: str, path: str, key: str) -> Lister:
    def lister(ctx: ListContext, project_id: str) -> list[Record]:
        return _of(
            list_kind(ctx, kind_name, ctx.target.conn.network, path, key,
                      {"project_id": project_id}),
            project_id,
        )  # fmt: skip

    return lister


def _router_interfaces(ctx: ListContext, project_id: str) -> list[Record]:
    ports = _network_kind("port", "/ports", "ports")(ctx, project_id)
    return [p for p in ports if p.get("device_owner") in ROUTER_INTERFACE_OWNERS]


def _plain_ports(ctx: ListContext, project_id: str) -> list[Record]:
    """Ports not owned by a router, floating IP or DHCP agent (those go with their
    owner)."""
    ports = _network_kind("port", "/ports", "ports")(ctx, project_id)
    return [p for p in ports if not str(p.get("device_owner") or "").startswith("network:")]


def _block_storage(kind_name: str, path: str, key: str) -> Lister:
    def lister(ctx: ListContext, project_id: str) -> list[Record]:
        return _of(
            list_kind(ctx, kind_name, ctx.target.conn.block_storage, path, key,
                      {"all_tenants": "1", "project_id": project_id},
                      block_storage.MICROVERSION),
            project_id,
        )  # fmt: skip

    return lister


def _images(ctx: ListContext, project_id: str) -> list[Record]:
    return _of(
        list_kind(ctx, "image", ctx.target.conn.image, "/images", "images",
                  {"owner": project_id, "visibility": "all"}),
        project_id,
    )  # fmt: skip


def _containers(ctx: ListContext, project_id: str) -> list[Record]:
    """The project's Zun containers (none where the catalog has no Container service)."""
    try:
        found = list_kind(ctx, "container", container_adapter(ctx.target.conn), "/containers",
                          "containers", {"all_projects": "true", "project_id": project_id},
                          CONTAINER_MICROVERSION, marker_key="uuid")  # fmt: skip
    except ServiceMissing:
        return []
    return _of(found, project_id)


def _server_groups(ctx: ListContext, project_id: str) -> list[Record]:
    return _of(
        list_kind(ctx, "server_group", ctx.target.conn.compute, "/os-server-groups",
                  "server_groups", {"all_projects": "true"}, compute.MICROVERSION),
        project_id,
    )  # fmt: skip


def _keypairs(ctx: ListContext, project_id: str) -> list[Record]:
    """The key pairs of the users whose only role assignments are on this project (Nova
    keeps key pairs per user: a user who works in other projects too keeps theirs). A
    deleted project has no assignments left: its users' key pairs are not found."""
    identity = ctx.target.conn.identity
    assignments = (
        request_json(identity, "/role_assignments", ctx.log, "identity GET /role_assignments").get(
            "role_assignments"
        )
        or []
    )
    scopes: dict[str, set[str]] = {}
    for assignment in assignments:
        user = (assignment.get("user") or {}).get("id")
        if not user:
            continue  # a group's assignment: its members keep their key pairs
        scope = assignment.get("scope") or {}
        where = (scope.get("project") or {}).get("id") or (
            "system" if "system" in scope else f"domain:{(scope.get('domain') or {}).get('id')}"
        )
        scopes.setdefault(str(user), set()).add(str(where))
    records: list[Record] = []
    for user in sorted(u for u, where in scopes.items() if where == {project_id}):
        body = request_json(ctx.target.conn.compute, "/os-keypairs", ctx.log,
                            "compute GET /os-keypairs?user_id=", {"user_id": user},
                            compute.MICROVERSION)  # fmt: skip
        for item in body.get("keypairs") or []:
            name = str((item.get("keypair") or item).get("name"))
            records.append({"id": f"{user}/{name}", "name": name, "user_id": user,
                            "project_id": project_id, "tags": [], "metadata": {}})  # fmt: skip
    return records


def _the_project(ctx: ListContext, project_id: str) -> list[Record]:
    """The project itself, while Keystone has it."""
    identity = ctx.target.conn.identity
    response = identity.get(f"{endpoint_of(identity)}/projects/{project_id}", raise_exc=False)
    if response.status_code == 404:
        return []
    if response.status_code >= 400:
        raise ListingError(f"identity GET /projects/{{id}}: HTTP {response.status_code}")
    project = response.json()["project"]
    return [{"id": project_id, "name": project.get("name"), "project_id": project_id,
             "tags": list(project.get("tags") or []), "metadata": {}}]  # fmt: skip


# kind -> the function listing what is left of the project of that kind
LISTERS: dict[str, Lister] = {
    "container": _containers,
    "server": _servers,
    "server_group": _server_groups,
    "floating_ip": _network_kind("floating_ip", "/floatingips", "floatingips"),
    "router_interface": _router_interfaces,
    "router": _network_kind("router", "/routers", "routers"),
    "port": _plain_ports,
    "network": _network_kind("network", "/networks", "networks"),
    "security_group": _network_kind("security_group", "/security-groups", "security_groups"),
    "volume_snapshot": _block_storage("volume_snapshot", "/snapshots/detail", "snapshots"),
    "volume": _block_storage("volume", "/volumes/detail", "volumes"),
    "image": _images,
    "keypair": _keypairs,
    "project": _the_project,
}


def purge_phases(delete_project: bool) -> list[teardown.Phase]:
    """The purge's phases in teardown order; the project's own only when asked for."""
    kinds = [k for k in PURGED_KINDS if delete_project or k != "project"]
    return teardown.phases(kinds)


class Purger:
    """Plans and carries out the purge of one project in one cloud region."""

    def __init__(
        self,
        store: Store,
        cloud: str,
        region: str | None = None,
        settings: Settings | None = None,
        config_files: list[str] | None = None,
        actor: str = "stackfleet-purge",
        poll_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.cloud = cloud
        self.actor = actor
        self.poll_interval = poll_interval
        self.log = RequestLog()
        self.audit = AuditLog(store)
        self._connections = Connections(config_files)
        self.conn = self._connections.connection(cloud, region or "")
        self.region = region or str(self.conn.config.region_name or "")

    def close(self) -> None:
        self._connections.close()

    def project(self, wanted: str) -> tuple[str, bool]:
        """(project id, whether Keystone still has it): by id, else by name; an id
        Keystone does not know is taken as a deleted project's (its orphans)."""
        identity = self.conn.identity
        base = endpoint_of(identity)
        response = identity.get(f"{base}/projects/{wanted}", raise_exc=False)
        if response.status_code == 200:
            return str(response.json()["project"]["id"]), True
        if response.status_code not in (403, 404):
            raise StackFleetError(f"reading project {wanted} answered {response.status_code}")
        named = request_json(identity, "/projects", self.log, "identity GET /projects",
                             {"name": wanted})  # fmt: skip
        found = named.get("projects") or []
        if len(found) == 1:
            return str(found[0]["id"]), True
        if len(found) > 1:
            raise StackFleetError(f"{len(found)} projects are called {wanted!r}: give its id")
        return wanted, False

    def _ctx(self) -> ListContext:
        target = CloudTarget(cloud=self.cloud, region=self.region, conn=self.conn)
        return ListContext(target=target, log=self.log)

    def list_phase(self, phase: teardown.Phase, project_id: str) -> list[Record]:
        try:
            records = LISTERS[phase.kind](self._ctx(), project_id)
        except ListingError as exc:
            raise StackFleetError(f"listing the project's {phase.name} failed: {exc}") from exc
        for record in records:
            record.update(cloud=self.cloud, region=self.region, kind=phase.kind)
        return records

    def plan(self, project_id: str, delete_project: bool = False) -> list[PurgeItem]:
        """Everything the purge would delete, as the project has it now."""
        items: list[PurgeItem] = []
        servers: set[str] = set()
        for phase in purge_phases(delete_project):
            for record in self.list_phase(phase, project_id):
                if phase.kind == "server":
                    servers.add(str(record["id"]))
                if phase.kind == "port" and record.get("device_id") in servers:
                    continue  # goes with its server
                items.append(
                    PurgeItem(
                        phase.name, phase.kind, str(record["id"]), str(record.get("name") or "")
                    )
                )
        return items

    def _action(self, record: Record, project_id: str, backup: bool) -> Action:
        kind_name = record["kind"]
        if kind_name == "server":
            return DeleteServer()
        if kind_name == "floating_ip":
            return ReleaseFloatingIP()
        if kind_name == "volume":
            return DeleteVolume(backup=backup)
        return PurgeDelete(
            what=kind_name,
            project_id=project_id,
            router_id=record.get("device_id") if kind_name == "router_interface" else None,
        )

    def run(
        self,
        project_id: str,
        project_exists: bool,
        execute: bool,
        backup: bool = False,
        timeout: float = 300.0,
        progress: Callable[[str, int, int], None] | None = None,
        delete_project: bool = False,
    ) -> PurgeReport:
        """The purge: without `execute` the plan (nothing changes); with it, phase by
        phase, stopping after a phase where anything failed or was deferred. The project
        itself goes last, only with `delete_project`."""
        report = PurgeReport(project_id, project_exists, execute)
        if not execute:
            report.items = self.plan(project_id, delete_project)
            return report
        now = datetime.now(UTC)
        policy = purge_policy(project_id)
        gate = ProvisionGate(
            self.store, self.settings.safety, FleetView(self.store, now), now, True
        )
        ctx = RunContext(
            now=now,
            connections=_Fixed(self.conn, self.cloud, self.region),
            notifier=Notifier(self.settings.notify, {}),
            verify_timeout=timeout,
            poll_interval=self.poll_interval,
        )
        executor = Executor(
            self.store, self.audit, ctx, self.actor, self.settings.safety.exclude_tag
        )
        self.audit.append(
            "purge.started",
            {
                "project_id": project_id,
                "project_exists": project_exists,
                "backup": backup,
                "delete_project": delete_project,
            },  # fmt: skip
            actor=self.actor,
            policy=policy.name,
            target=f"{self.cloud}/{self.region}/project/{project_id}",
        )
        for phase in purge_phases(delete_project):
            records = self.list_phase(phase, project_id)
            candidates: list[Candidate] = []
            for record in records:
                action = self._action(record, project_id, backup)
                plan = action.plan(record)
                item = PurgeItem(phase.name, record["kind"], str(record["id"]),
                                 str(record.get("name") or ""))  # fmt: skip
                report.items.append(item)
                if plan is None or isinstance(plan, Skip):
                    item.status = "skipped"
                    item.message = plan.reason if isinstance(plan, Skip) else "nothing to do"
                    continue
                candidates.append(
                    Candidate(
                        policy=policy,
                        action=action,
                        record=record,
                        plan=plan,
                        key=idempotency_key(
                            policy.name, action, record, None, step=f"purge:{project_id}"
                        ),
                        finding_id=None,
                        trusted=True,
                    )  # fmt: skip
                )
            gate.decide(policy, candidates)
            by_id = {i.id: i for i in report.items if i.phase == phase.name}
            for number, candidate in enumerate(candidates, start=1):
                if candidate.verdict == "execute":
                    executor.run(candidate)
                item = by_id[str(candidate.record["id"])]
                item.status = candidate.verdict
                item.message = candidate.reason
                if progress:
                    progress(phase.name, number, len(candidates))
            if any(i.status in ("failed", "unverified", "deferred") for i in by_id.values()):
                report.stopped_at = phase.name
                break
        self.audit.append(
            "purge.finished",
            {
                "project_id": project_id,
                "deleted": sum(1 for i in report.items if i.status == "succeeded"),
                "failed": len(report.failed),
                "stopped_at": report.stopped_at,
                "project_deleted": any(
                    i.kind == "project" and i.status == "succeeded" for i in report.items
                ),
            },
            actor=self.actor,
            policy=policy.name,
            target=f"{self.cloud}/{self.region}/project/{project_id}",
        )
        return report


class _Fixed(Connections):
    """The executor's connection: the purging (admin) one."""

    def __init__(self, conn: Any, cloud: str, region: str) -> None:
        super().__init__()
        self.conn, self.cloud, self.region = conn, cloud, region

    def connection(self, cloud: str, region: str) -> Any:
        return self.conn

    def close(self) -> None:
        return None


def purge_policy(project_id: str) -> Policy:
    """The policy a purge's deletions are gated and audited under: `purge/<project>`."""
    spec = PolicySpec.model_validate(
        {
            "name": f"purge/{project_id}",
            "resource": "project",
            "description": f"purge of project {project_id}",
            "mode": {"type": "manual"},
            "alert": False,
            "safety": {"max_actions": 100_000},
        }
    )
    return Policy(spec=spec, filters=[], actions=[], source="", line=None)
