"""Plan, apply, status and destroy of workload specs.

`Provisioner.prepare` reads what the cloud has (once per cloud region) and resolves
every workload, raising SpecError with every problem; `plan` lists each workload's
members (one list call) and compares; `check_capacity` refuses a plan the project's
quota or the hosts' free capacity cannot hold, naming what is short; `apply` runs the
plan's deletes, then its creates, each as an action through the safety gate, the
executor and the audit log, and waits for new members with list calls."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stackfleet.actions.base import Action, Plan
from stackfleet.actions.notify import Notifier
from stackfleet.core.errors import StackFleetError
from stackfleet.engine.capacity import fits, host_capacities
from stackfleet.engine.execute import Connections, Executor, RunContext, queue_for_approval
from stackfleet.engine.gate import Candidate, SafetyGate, idempotency_key
from stackfleet.engine.settings import Settings
from stackfleet.policy.errors import Problem
from stackfleet.policy.schema import Policy, PolicySpec
from stackfleet.policy.view import FleetView
from stackfleet.provision import ironic, nova, teardown, zun
from stackfleet.provision.plan import Member, Step, WorkloadPlan, group_name, plan_workload
from stackfleet.provision.resolve import CloudFacts, Resolved, demand_of, read_facts, resolve
from stackfleet.provision.spec import SpecError, Workload
from stackfleet.sources.openstack import compute
from stackfleet.sources.openstack.context import ListContext
from stackfleet.sources.openstack.listing import ListingError, RequestLog, request_json
from stackfleet.sources.openstack.quotas import QUOTA_SOURCES, read_quota
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


# backend -> the inventory kind of its members, and the action that deletes one
MEMBER_KINDS = {"nova": "server", "ironic": "baremetal_node", "zun": "container"}
DELETE_ACTIONS: dict[
    str, type[nova.DeleteMember | ironic.DeleteNodeMember | zun.DeleteContainerMember]
] = {
    "nova": nova.DeleteMember,
    "ironic": ironic.DeleteNodeMember,
    "zun": zun.DeleteContainerMember,
}


class CapacityError(StackFleetError):
    """The project's quota or the cloud's free capacity cannot hold what the plan
    creates; nothing was created."""

    exit_code = 2


class ProjectError(StackFleetError):
    """The cloud's credentials cannot act as the project asked for."""

    exit_code = 2


class ProvisionError(StackFleetError):
    """Some members failed to build or to go away (each named with Nova's fault)."""

    exit_code = 5


@dataclass
class Scope:
    """One cloud region as one project: the connection members are made with."""

    cloud: str
    region: str
    conn: Any
    project_id: str
    user_id: str
    facts: CloudFacts | None = None


@dataclass
class MemberOutcome:
    """What became of one member in an apply."""

    workload: str
    name: str
    action: str  # create | delete
    status: str  # active | failed | timeout | deleted | skipped | deferred | ...
    server_id: str | None = None
    message: str = ""


@dataclass
class ApplyReport:
    plans: list[WorkloadPlan]
    executed: bool
    outcomes: list[MemberOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[MemberOutcome]:
        return [o for o in self.outcomes if o.status in ("failed", "timeout", "error")]


@dataclass
class _Run:
    """One apply or destroy: whether it changes the cloud, the step its idempotency keys
    carry, its time, its report and progress display."""

    execute: bool
    run_id: str
    now: datetime
    report: ApplyReport
    progress: Progress | None


class _ScopedConnections(Connections):
    """The executor's connections: the workload's project-scoped one per cloud region."""

    def __init__(self, scopes: dict[tuple[str, str], Scope]) -> None:
        super().__init__()
        self.scopes = scopes

    def connection(self, cloud: str, region: str) -> Any:
        return self.scopes[(cloud, region)].conn


class ProvisionGate(SafetyGate):
    """The safety gate for a workload's own members. Its blast-radius cap is not the
    fleet-wide percentage: a workload's deletions are bounded by its spec (count) and
    its labelled members, and a fresh store may not have counted the fleet yet."""

    def _blast_radius(self, policy: Policy, candidates: list[Candidate]) -> None:
        return None


def workload_policy(workload: Workload, settings: Settings) -> Policy:
    """The policy a workload's actions are gated and audited under:
    `provision/<name>`, allowed as many actions per run as the plan needs (the global
    limits still hold); approvals when the spec or the settings ask for them."""
    return member_policy(
        workload.name,
        workload.require_approval or settings.provision.require_approval,
        max(1, 2 * workload.count + 1_000),
        workload.source,
        workload.line,
    )


def member_policy(
    name: str,
    require_approval: bool,
    max_actions: int = 10_000,
    source: str = "",
    line: int | None = None,
) -> Policy:
    """The policy `provision/<name>` a workload's creates, deletes and verbs run under."""
    spec = PolicySpec.model_validate(
        {
            "name": f"provision/{name}",
            "resource": "server",
            "description": f"workload {name}" + (f" ({source})" if source else ""),
            "mode": {"type": "manual"},
            "alert": False,
            "safety": {"max_actions": max_actions, "require_approval": require_approval},
        }
    )
    return Policy(spec=spec, filters=[], actions=[], source=source, line=line)


class Provisioner:
    """Plans and applies workload specs against their clouds."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        config_files: list[str] | None = None,
        default_cloud: str | None = None,
        default_region: str | None = None,
        actor: str = "stackfleet-provision",
        poll_interval: float = 2.0,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.config_files = config_files
        self.default_cloud = default_cloud
        self.default_region = default_region
        self.actor = actor
        self.poll_interval = poll_interval
        self.log = RequestLog()
        self.audit = AuditLog(store)
        self._connections = Connections(config_files)
        self._scopes: dict[tuple[str, str, str], Scope] = {}

    def close(self) -> None:
        self._connections.close()

    # -- resolving ------------------------------------------------------------------

    def scope_of(self, workload: Workload) -> Scope:
        """The workload's cloud region, connected as its project."""
        cloud = workload.cloud or self.default_cloud
        if not cloud:
            raise SpecError(
                [
                    Problem(
                        workload.source,
                        workload.line,
                        f"workload {workload.name!r} cloud",
                        "no cloud: set 'cloud' in the spec or pass --os-cloud",
                    )
                ]
            )
        try:
            return self.scope_for(cloud, workload.region, workload.project)
        except ProjectError as exc:
            raise SpecError(
                [
                    Problem(
                        workload.source,
                        workload.line,
                        f"workload {workload.name!r} project",
                        str(exc),
                    )
                ]
            ) from exc

    def scope_for(self, cloud: str | None, region: str | None, project: str | None) -> Scope:
        """A cloud region connected as `project` (name or id; None: the cloud entry's)."""
        cloud = cloud or self.default_cloud
        if not cloud:
            raise StackFleetError("no cloud: pass --os-cloud or set OS_CLOUD")
        region = region or self.default_region or ""
        key = (cloud, region, project or "")
        if key in self._scopes:
            return self._scopes[key]
        conn = self._connections.connection(cloud, region)
        region = region or str(conn.config.region_name or "")
        if project and project not in (
            conn.current_project_id,
            (conn.config.auth or {}).get("project_name"),
        ):
            try:
                conn = _as_project(conn, project)
            except Exception as exc:  # noqa: BLE001 - said as the caller's problem
                raise ProjectError(f"cannot act as project {project!r}: {exc}") from exc
        scope = Scope(cloud, region, conn, str(conn.current_project_id), str(conn.current_user_id))
        self._scopes[key] = scope
        return scope

    def prepare(self, workloads: list[Workload]) -> list[tuple[Resolved, Scope]]:
        """Every workload resolved against its cloud; SpecError naming every problem.
        Each call reads each cloud region once, afresh: a provisioner that applies twice
        checks the second plan against what the first one left (nodes taken, images
        added)."""
        problems: list[Problem] = []
        prepared: list[tuple[Resolved, Scope]] = []
        read: set[int] = set()
        for workload in workloads:
            scope = self.scope_of(workload)
            if id(scope) not in read:
                read.add(id(scope))
                ctx = ListContext(target=scope_target(scope), log=self.log)
                try:
                    scope.facts = read_facts(ctx, scope.project_id, scope.user_id)
                except ListingError as exc:
                    raise StackFleetError(
                        f"reading {scope.cloud}/{scope.region} failed: {exc}"
                    ) from exc
            assert scope.facts is not None
            resolved, found = resolve(workload, scope.facts)
            problems += found
            if resolved is not None:
                prepared.append((resolved, scope))
        if problems:
            raise SpecError(problems)
        return prepared

    # -- planning -------------------------------------------------------------------

    def plan(
        self, prepared: list[tuple[Resolved, Scope]], destroy: bool = False
    ) -> list[tuple[WorkloadPlan, Scope]]:
        """Each workload's plan against its members (one list call each)."""
        plans: list[tuple[WorkloadPlan, Scope]] = []
        for resolved, scope in prepared:
            if resolved.backend not in ("nova", "ironic", "zun"):
                raise StackFleetError(
                    f"workload {resolved.workload.name}: no {resolved.backend!r} backend"
                )
            try:
                members = self.members(resolved.backend, scope, resolved.workload.name)
            except ListingError as exc:
                raise StackFleetError(
                    f"workload {resolved.workload.name}: listing its members failed: {exc}"
                ) from exc
            group_id = None
            if resolved.backend == "nova" and (resolved.workload.placement.server_group or destroy):
                group_id = nova.find_group(scope.conn, group_name(resolved.workload.name), self.log)
            plans.append((plan_workload(resolved, members, group_id, destroy=destroy), scope))
        return plans

    def members(self, backend: str, scope: Scope, workload: str) -> list[Member]:
        """A workload's members on its backend (list calls only)."""
        if backend == "ironic":
            return ironic.list_members(scope.conn, workload, scope.project_id, self.log)
        if backend == "zun":
            return zun.list_members(scope.conn, workload, scope.project_id, self.log)
        return nova.list_members(scope.conn, workload, scope.project_id, self.log)

    def check_capacity(self, plans: list[tuple[WorkloadPlan, Scope]]) -> list[str]:
        """Refuse (CapacityError) what the project's compute quota or the hosts' free
        capacity cannot hold; returns notes on what could not be checked."""
        notes: list[str] = []
        short: list[str] = []
        for plan, scope in plans:
            creates = len(plan.of("create"))
            if creates and plan.resolved.backend == "ironic":
                short += self._nodes_short(plan, scope, creates)
                continue
            if creates and plan.resolved.backend == "zun":
                w = plan.resolved.workload
                new = creates - len(plan.of("delete"))
                where = f"{scope.cloud}/{scope.region}"
                for found, note in (
                    zun.quota_short(scope.conn, w, scope.project_id, new, self.log),
                    zun.capacity_short(scope.conn, w, creates, where, self.log),
                ):
                    short += found
                    if note:
                        notes.append(note)
                continue
            if not creates or plan.resolved.flavor is None:
                continue
            w = plan.resolved.workload
            flavor = plan.resolved.flavor
            freed = len(plan.of("delete"))
            short += self._quota_short(w, scope, flavor, creates - freed)
            found, note = self._capacity_short(plan, scope, creates)
            short += found
            if note:
                notes.append(note)
        if short:
            raise CapacityError(
                "not enough room; nothing was created:\n" + "\n".join(f"  {s}" for s in short)
            )
        return notes

    def _nodes_short(self, plan: WorkloadPlan, scope: Scope, creates: int) -> list[str]:
        """Standalone Ironic: enough available nodes of the resource class (the project's
        own or leased ones, as its token lists them)?"""
        w = plan.resolved.workload
        rc = (w.baremetal.resource_class if w.baremetal else None) or ""
        traits = set(w.baremetal.traits if w.baremetal else [])
        nodes = (scope.facts.baremetal_nodes if scope.facts else None) or []
        matching = [
            n
            for n in nodes
            if n.get("resource_class") == rc
            and n.get("provision_state") == "available"
            and not n.get("maintenance")
            and not n.get("instance_uuid")
            and traits <= set(n.get("traits") or [])
        ]
        # Ironic allocates only nodes whose power state it knows (its candidate filter
        # `with_power_state`): a fake-hardware node has none until a power change
        free = [n for n in matching if n.get("power_state")]
        if len(free) < creates:
            unpowered = len(matching) - len(free)
            return [
                f"workload {w.name}: capacity: needs {creates} available {rc} node(s)"
                + (f" with traits {', '.join(sorted(traits))}" if traits else "")
                + f", {len(free)} in {scope.cloud}/{scope.region}"
                + (
                    f" ({unpowered} more without a known power state, which Ironic does not "
                    "allocate: set their power)"
                    if unpowered
                    else ""
                )
            ]
        return []

    def _quota_short(
        self, w: Workload, scope: Scope, flavor: dict[str, Any], new: int
    ) -> list[str]:
        if new <= 0:
            return []
        source = next(s for s in QUOTA_SOURCES if s.service == "compute")
        reading = read_quota(scope_target(scope), source, scope.project_id, self.log)
        if reading.error:
            return []
        try:
            limits = request_json(
                scope.conn.compute, "/limits", self.log, "compute GET /limits",
                microversion=compute.MICROVERSION,
            )["limits"]["absolute"]  # fmt: skip
        except (ListingError, KeyError, TypeError):
            return []
        used = {
            "instances": int(limits.get("totalInstancesUsed") or 0),
            "cores": int(limits.get("totalCoresUsed") or 0),
            "ram_mb": int(limits.get("totalRAMUsed") or 0),
        }
        wanted = {
            "instances": new,
            "cores": new * int(flavor.get("vcpus") or 0),
            "ram_mb": new * int(flavor.get("ram") or 0),
        }
        short = []
        for resource, amount in wanted.items():
            limit = reading.limits.get(resource)
            if limit is None or limit < 0:
                continue
            free = max(0, limit - used[resource])
            if amount > free:
                short.append(
                    f"workload {w.name}: quota {resource} of project {scope.project_id}: needs "
                    f"{amount}, {free} free ({used[resource]} of {limit} used)"
                )
        return short

    def _capacity_short(
        self, plan: WorkloadPlan, scope: Scope, creates: int
    ) -> tuple[list[str], str]:
        w = plan.resolved.workload
        demand = demand_of(plan.resolved)
        if not demand:
            return [], ""
        ctx = ListContext(target=scope_target(scope), log=self.log)
        try:
            hypervisors = compute.hypervisors(ctx)
            services = compute.compute_services(ctx)
        except ListingError as exc:
            return [], f"workload {w.name}: capacity not checked ({exc})"
        hosts = [h for h in host_capacities(hypervisors, services) if h.usable]
        zone = w.placement.availability_zone
        if zone:
            hosts = [h for h in hosts if h.zone == zone]
        flavor_name = (plan.resolved.flavor or {}).get("name")
        where = f"{scope.cloud}/{scope.region}" + (f" zone {zone}" if zone else "")
        if w.placement.server_group == "anti-affinity":
            taken = {m.host for m in plan.members if m.host}
            room = sum(1 for h in hosts if h.host not in taken and fits(h, demand) >= 1)
            if room < creates:
                return [
                    f"workload {w.name}: anti-affinity needs {creates} more hosts with room for "
                    f"{flavor_name}; {room} usable in {where}"
                ], ""
            return [], ""
        if w.placement.server_group == "affinity":
            best = max((fits(h, demand) for h in hosts), default=0)
            if best < creates:
                return [
                    f"workload {w.name}: affinity needs {creates} x {flavor_name} on one host; "
                    f"the roomiest host in {where} holds {best}"
                ], ""
            return [], ""
        total = sum(fits(h, demand) for h in hosts)
        if total < creates:
            short_rc = sorted(
                rc for rc in demand if sum(h.free(rc) for h in hosts) < demand[rc] * creates
            )
            return [
                f"workload {w.name}: capacity for {flavor_name}: needs {creates}, "
                f"{total} fit on the {len(hosts)} usable hosts of {where}"
                + (f" (short of {', '.join(short_rc)})" if short_rc else "")
            ], ""
        return [], ""

    # -- applying -------------------------------------------------------------------

    def apply(
        self,
        plans: list[tuple[WorkloadPlan, Scope]],
        execute: bool,
        progress: Progress | None = None,
        now: datetime | None = None,
    ) -> ApplyReport:
        """Carry out the plans: deletions first (and wait until they are gone), then
        creations (and wait until ACTIVE, ERROR or the workload's timeout). Without
        `execute` nothing changes: the gate's verdicts are reported."""
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        report = ApplyReport([p for p, _ in plans], execute)
        run = _Run(execute, uuid.uuid4().hex[:12], now, report, progress)
        if plans and all(plan.destroy for plan, _ in plans):
            self._teardown(plans, run)
        else:
            for plan, scope in plans:
                self._apply_one(plan, scope, run)
        report.seconds = time.perf_counter() - started
        return report

    def _apply_one(
        self,
        plan: WorkloadPlan,
        scope: Scope,
        run: _Run,
    ) -> None:
        w = plan.resolved.workload
        self._remove(plan, scope, run)
        self._create(plan, scope, run)
        if w.count == 0:
            self._drop_group(plan, scope, run.execute, run.report)

    def _teardown(
        self,
        plans: list[tuple[WorkloadPlan, Scope]],
        run: _Run,
    ) -> None:
        """Destroy: every workload's members, then their server groups, phase by phase
        in the teardown order `project purge` follows too (containers, servers, bare-metal
        nodes, server groups)."""
        kinds = {MEMBER_KINDS[p.resolved.backend] for p, _ in plans} | {"server_group"}
        for phase in teardown.phases(kinds):
            for plan, scope in plans:
                if phase.kind == "server_group":
                    self._drop_group(plan, scope, run.execute, run.report)
                elif MEMBER_KINDS[plan.resolved.backend] == phase.kind:
                    self._remove(plan, scope, run)

    def _run_of(
        self, plan: WorkloadPlan, scope: Scope, run: _Run
    ) -> tuple[Policy, SafetyGate, Executor, str]:
        """The policy, gate and executor a workload's actions run under, and the step
        their idempotency keys carry."""
        w = plan.resolved.workload
        policy = workload_policy(w, self.settings)
        gate, executor = self.machinery(scope, run.execute, run.now, w.timeout.total_seconds())
        run_id = run.run_id
        if policy.spec.safety.require_approval:
            # the same key on every apply: a queued action is found again, not queued twice
            run_id = f"approval:{plan.spec_hash}"
        return policy, gate, executor, run_id

    def _remove(
        self,
        plan: WorkloadPlan,
        scope: Scope,
        run: _Run,
    ) -> None:
        """The plan's deletions (scale-down, replaced and destroyed members), waited for
        until they are gone."""
        w = plan.resolved.workload
        policy, gate, executor, run_id = self._run_of(plan, scope, run)
        execute, now, report, progress = run.execute, run.now, run.report, run.progress
        removals = [s for s in plan.steps if s.kind in ("delete", "replace") and s.member]
        delete_class = DELETE_ACTIONS[plan.resolved.backend]
        deletes = [
            self._candidate(
                policy,
                delete_class(workload=w.name, reason=s.reason, project_id=scope.project_id),
                scope,
                s,
                run_id,
            )
            for s in removals
        ]
        gate.decide(policy, deletes)
        if execute:
            self.queue_awaiting(deletes, now)
        gone_ids = self._run(executor, deletes, report, w.name, "delete", execute, progress)
        if gone_ids:
            self._wait_gone(plan, scope, gone_ids, w.timeout.total_seconds(), report, progress)

    def _create(
        self,
        plan: WorkloadPlan,
        scope: Scope,
        run: _Run,
    ) -> None:
        """The plan's creations (missing and replaced members; a replacement only once
        its old member is gone), waited for until built, failed or timed out."""
        w = plan.resolved.workload
        backend = plan.resolved.backend
        policy, gate, executor, run_id = self._run_of(plan, scope, run)
        execute, now, report, progress = run.execute, run.now, run.report, run.progress
        creations = [s for s in plan.steps if s.kind in ("create", "replace")]
        replaced_ok = {
            o.name for o in report.outcomes if o.action == "delete" and o.status == "deleted"
        }
        creations = [s for s in creations if s.kind == "create" or s.name in replaced_ok]
        group_id = plan.group_id
        if (
            creations
            and backend == "nova"
            and w.placement.server_group
            and group_id is None
            and execute
        ):
            group_id = nova.create_group(
                scope.conn, group_name(w.name), w.placement.server_group, self.log
            )
            self.audit.append(
                "provision.group_created",
                {"name": group_name(w.name), "policy": w.placement.server_group, "id": group_id},
                actor=self.actor,
                policy=policy.name,
                target=f"{scope.cloud}/{scope.region}/server_group/{group_id}",
            )
        creates: list[Candidate] = []
        for step in creations:
            action: nova.MemberAction
            if backend == "zun":
                action = zun.CreateContainerMember(
                    workload=w.name,
                    index=step.index,
                    project_id=scope.project_id,
                    body=zun.container_body(
                        w,
                        step.index,
                        step.name,
                        plan.spec_hash,
                        plan.resolved.networks,
                        plan.resolved.security_groups,
                    ),  # fmt: skip
                )
            elif backend == "ironic":
                bm = w.baremetal
                action = ironic.CreateNodeMember(
                    workload=w.name,
                    index=step.index,
                    project_id=scope.project_id,
                    image_id=str(plan.resolved.image_id),
                    allocation=ironic.allocation_body(
                        w.name,
                        step.index,
                        step.name,
                        plan.spec_hash,
                        str(bm.resource_class if bm else ""),
                        list(bm.traits if bm else []),
                        scope.project_id,
                        w.metadata,
                    ),  # fmt: skip
                )
            else:
                body = nova.server_body(
                    plan.resolved, step.index, step.name, plan.spec_hash, group_id, now
                )
                action = nova.CreateMember(
                    workload=w.name, index=step.index, body=body, project_id=scope.project_id
                )
            creates.append(self._candidate(policy, action, scope, step, run_id))
        gate.decide(policy, creates)
        if execute:
            self.queue_awaiting(creates, now)
        self._run(executor, creates, report, w.name, "create", execute, progress)
        new = {
            str(server_id): c.record["name"]
            for c in creates
            if (server_id := getattr(c.action, "server_id", None))
        }
        if new:
            self._wait_built(plan, scope, new, w.timeout.total_seconds(), report, progress)

    def machinery(
        self, scope: Scope, execute: bool, now: datetime, timeout: float
    ) -> tuple[SafetyGate, Executor]:
        """The safety gate and the executor for actions on one scope's members."""
        view = FleetView(self.store, now)
        gate = ProvisionGate(self.store, self.settings.safety, view, now, execute)
        ctx = RunContext(
            now=now,
            connections=_ScopedConnections({(scope.cloud, scope.region): scope}),
            notifier=Notifier(self.settings.notify, {}),
            verify_timeout=timeout,
            poll_interval=self.poll_interval,
        )
        ctx.request_log = self.log  # type: ignore[attr-defined]
        executor = Executor(
            self.store, self.audit, ctx, self.actor, self.settings.safety.exclude_tag
        )
        return gate, executor

    def queue_awaiting(self, candidates: list[Candidate], now: datetime) -> None:
        """Put what the gate held for approval in the approvals queue (once per key)."""
        for candidate in candidates:
            if candidate.verdict == "awaiting-approval" and candidate.action_id is None:
                queue_for_approval(self.store, self.audit, candidate, self.actor, now)

    def _drop_group(
        self, plan: WorkloadPlan, scope: Scope, execute: bool, report: ApplyReport
    ) -> None:
        """A workload with no members left has its server group deleted too."""
        if plan.group_id is None or not execute:
            return
        if any(o.status not in ("deleted",) for o in report.outcomes if o.workload == plan.name):
            return
        nova.delete_group(scope.conn, plan.group_id, self.log)
        self.audit.append(
            "provision.group_deleted",
            {"name": group_name(plan.name), "id": plan.group_id},
            actor=self.actor,
            policy=f"provision/{plan.name}",
            target=f"{scope.cloud}/{scope.region}/server_group/{plan.group_id}",
        )

    def _candidate(
        self, policy: Policy, action: Action, scope: Scope, step: Step, run_id: str
    ) -> Candidate:
        member: Member | None = step.member if action.destructive else None
        kind = next((k for k in ("baremetal_node", "container") if k in action.kinds), "server")
        record = member_record(scope, step.name, member, kind)
        candidate = make_candidate(policy, action, record, run_id)
        assert candidate is not None
        return candidate

    def _run(
        self,
        executor: Executor,
        candidates: list[Candidate],
        report: ApplyReport,
        workload: str,
        what: str,
        execute: bool,
        progress: Progress | None,
    ) -> list[str]:
        """Execute what the gate let through; outcomes for the rest. Returns the ids of
        servers whose deletion Nova accepted."""
        accepted: list[str] = []
        for number, candidate in enumerate(candidates, start=1):
            name = str(candidate.record["name"])
            if candidate.verdict == "execute":
                executor.run(candidate)
            if progress:
                progress(f"{what} {workload}", number, len(candidates))
            if candidate.verdict == "succeeded" and what == "delete":
                accepted.append(str(candidate.record["id"]))
                continue
            if candidate.verdict == "succeeded":
                continue  # the wait below says how the build ended
            status = candidate.verdict if execute else "planned"
            report.outcomes.append(
                MemberOutcome(workload, name, what, status, None, candidate.reason)
            )
        return accepted

    def _wait_gone(
        self,
        plan: WorkloadPlan,
        scope: Scope,
        ids: list[str],
        timeout: float,
        report: ApplyReport,
        progress: Progress | None,
    ) -> None:
        names = {m.id: m.name for m in plan.members}
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while True:
            members = self.members(plan.resolved.backend, scope, plan.name)
            present = {m.id for m in members}
            for server_id in sorted(pending - present):
                report.outcomes.append(
                    MemberOutcome(
                        plan.name, names.get(server_id, server_id), "delete", "deleted", server_id
                    )
                )
                self._audit_member(scope, plan, "provision.member_deleted", server_id, {})
            pending &= present
            if progress:
                progress(f"deleting {plan.name}", len(ids) - len(pending), len(ids))
            if not pending:
                return
            if time.monotonic() >= deadline:
                for server_id in sorted(pending):
                    report.outcomes.append(
                        MemberOutcome(
                            plan.name,
                            names.get(server_id, server_id),
                            "delete",
                            "timeout",
                            server_id,
                            f"still there after {timeout:g} s",
                        )  # fmt: skip
                    )
                return
            time.sleep(self.poll_interval)

    def _wait_built(
        self,
        plan: WorkloadPlan,
        scope: Scope,
        new: dict[str, str],
        timeout: float,
        report: ApplyReport,
        progress: Progress | None,
    ) -> None:
        """Poll the workload's listing until every new member is ACTIVE or ERROR, or
        the timeout passes; failures carry Nova's fault message. The other members go
        on building whatever one of them does."""
        deadline = time.monotonic() + timeout
        pending = dict(new)
        while True:
            members = {m.id: m for m in self.members(plan.resolved.backend, scope, plan.name)}
            for server_id in sorted(pending):
                member = members.get(server_id)
                if member is None:
                    report.outcomes.append(
                        MemberOutcome(
                            plan.name,
                            pending[server_id],
                            "create",
                            "failed",
                            server_id,
                            "disappeared while building",
                        )
                    )
                elif member.status == "ACTIVE" or (
                    plan.resolved.backend == "ironic" and member.status == "SHUTOFF"
                ):
                    # a node deployed (`active`) is built whatever its power: Ironic's
                    # fake-hardware deploy leaves the power as it was
                    report.outcomes.append(
                        MemberOutcome(
                            plan.name, member.name, "create", "active", server_id, member.host or ""
                        )
                    )
                    self._audit_member(
                        scope,
                        plan,
                        "provision.member_active",
                        server_id,
                        {"host": member.host},
                    )
                elif member.failed:
                    message = member.fault or "ERROR without a fault message"
                    report.outcomes.append(
                        MemberOutcome(
                            plan.name, member.name, "create", "failed", server_id, message
                        )
                    )
                    self._audit_member(
                        scope, plan, "provision.member_failed", server_id, {"fault": message}
                    )
                else:
                    continue
                del pending[server_id]
            if progress:
                progress(f"building {plan.name}", len(new) - len(pending), len(new))
            if not pending:
                return
            if time.monotonic() >= deadline:
                for server_id, name in sorted(pending.items()):
                    member = members.get(server_id)
                    status = member.status if member else "unknown"
                    message = (
                        f"not ACTIVE after {timeout:g} s (status {status}); kept: the next apply "
                        "replaces it if it ends in ERROR"
                    )
                    report.outcomes.append(
                        MemberOutcome(plan.name, name, "create", "timeout", server_id, message)
                    )
                    self._audit_member(
                        scope, plan, "provision.member_timeout", server_id, {"status": status}
                    )
                return
            time.sleep(self.poll_interval)

    def _audit_member(
        self, scope: Scope, plan: WorkloadPlan, event: str, member_id: str, details: dict[str, Any]
    ) -> None:
        """An entry about one member, its target named by the member's own kind (a
        server, a bare-metal node, a container)."""
        kind = MEMBER_KINDS[plan.resolved.backend]
        self.audit.append(
            event,
            {"workload": plan.name, **details},
            actor=self.actor,
            policy=f"provision/{plan.name}",
            target=f"{scope.cloud}/{scope.region}/{kind}/{member_id}",
        )


def _as_project(conn: Any, project: str) -> Any:
    """A connection scoped to `project`, a name or an id (openstacksdk's
    connect_as_project takes a name; a 32-hex id that is no name is tried as an id)."""
    if re.fullmatch(r"[0-9a-f]{32}", project):
        try:
            scoped = conn.connect_as_project({"id": project, "name": None})
            _ = scoped.current_project_id  # authenticates now: a bad id fails here
            return scoped
        except Exception:  # noqa: BLE001 - then it may be a project named so
            pass
    scoped = conn.connect_as_project(project)
    _ = scoped.current_project_id
    return scoped


def member_record(
    scope: Scope, name: str, member: Member | None, kind: str = "server"
) -> dict[str, Any]:
    """A member as the record its actions are planned, gated and audited on (a member
    yet to be made: id `new:<name>`): what every backend's member has, and what its
    own actions read (flavor, node and allocation, container image)."""
    raw = member.raw if member else {}
    record: dict[str, Any] = {
        "cloud": scope.cloud,
        "region": scope.region,
        "kind": kind,
        "id": member.id if member else f"new:{name}",
        "name": name,
        "project_id": scope.project_id,
        "status": member.status if member else None,
    }
    if kind == "container":
        record.update(tags=[], metadata=dict(raw.get("labels") or {}), image_id=raw.get("image"))
    elif kind == "baremetal_node":
        allocation = raw.get("allocation") or {}
        record.update(
            tags=[],
            metadata=dict(allocation.get("extra") or {}),
            node_id=raw.get("uuid"),
            allocation_id=allocation.get("uuid"),
            image_id=(raw.get("instance_info") or {}).get("image_source"),
        )
    else:
        record.update(
            tags=list(raw.get("tags") or []),
            metadata=dict(raw.get("metadata") or {}),
            flavor_name=(raw.get("flavor") or {}).get("original_name"),
            image_id=(raw.get("image") or {}).get("id") if raw.get("image") else None,
        )
    return record


def make_candidate(
    policy: Policy, action: Action, record: dict[str, Any], step: str
) -> Candidate | None:
    """The action on `record` as a candidate for the gate; None when the member is
    already as the action would leave it."""
    plan = action.plan(record)
    if plan is None or not isinstance(plan, Plan):
        return None
    return Candidate(
        policy=policy,
        action=action,
        record=record,
        plan=plan,
        key=idempotency_key(policy.name, action, record, None, step=step),
        finding_id=None,
        trusted=True,
    )


def scope_target(scope: Scope) -> Any:
    from stackfleet.sources.openstack.connection import CloudTarget

    return CloudTarget(cloud=scope.cloud, region=scope.region, conn=scope.conn)
