"""Campaigns: a resumable plan of gated, audited actions over hosts, batch by batch.

Each host goes through its steps in order — pre-check → drain → apply → restart → gate
→ undrain — with its per-step state in the store (pending, running, done, failed,
skipped). The reconciler is level-triggered: a step found `running` (StackFleet was
killed during it) is resumed from what OpenStack and the host show, not repeated:

- drain: the service is disabled already (with the campaign's reason) or not; servers
  already gone from the host are not listed again; a migration under way is waited
  for, not started twice;
- apply: the host's revision differs from the one captured before the step → the
  change took; otherwise it runs again only when every item is idempotent (playbooks,
  config changes, package versions; a command only when marked `idempotent: true`),
  else the campaign halts and says so;
- restart: a heartbeat newer than the step's start means the service came back;
- gate: read-only (a canary left behind is deleted first);
- undrain: enabled already, or enabled now.

Every change goes through the engine's safety gate and executor (idempotency keys,
re-read before acting, audit entries before and after); apply and rollback write
audit entries with the revision before and after. A failed gate rolls the host back to
its last tested revision (the pre-check marks the untouched revision tested when its
gate passes), re-runs the gate, halts the campaign and raises an alert (the
`patching/campaign-halted` rule of the patching pack).

One process carries a campaign out at a time: a lease in the campaigns table (owner and
heartbeat), taken over when stale or when its owner's process on this machine is gone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stackfleet.actions.base import Action, ActionError, Plan, Record, Skip
from stackfleet.actions.compute import RebuildServer, SnapshotServer, StartServer, StopServer
from stackfleet.actions.maintenance import (
    ColdMigrateServer,
    DisableComputeService,
    EnableComputeService,
    LiveMigrateServer,
    api,
    read_services,
    service_record,
)
from stackfleet.actions.notify import Notifier
from stackfleet.core.errors import ConfigError, ConflictError, StackFleetError
from stackfleet.engine.capacity import (
    Fleet,
    drain_fit,
    flavors_by_name,
    host_capacities,
    load_fleet,
)
from stackfleet.engine.execute import Connections, Executor, RunContext
from stackfleet.engine.gate import Candidate, SafetyGate, idempotency_key
from stackfleet.engine.health import workload_members
from stackfleet.engine.health_settings import Workload
from stackfleet.engine.settings import Settings
from stackfleet.model.kinds import kind
from stackfleet.patching.connectors import Connector, ConnectorError, connector_for, syntax_check
from stackfleet.patching.gates import CANARY_PREFIX, GateRunner, services_problems
from stackfleet.patching.ini import edit_ini
from stackfleet.patching.instances import (
    guest_check_problems,
    instance_steps,
    select_instances,
)
from stackfleet.patching.reporting import report_campaign
from stackfleet.patching.revisions import (
    Revision,
    apply_revision,
    capture,
    diff,
    install_packages,
    record,
)
from stackfleet.patching.services import ServiceDefinition, definitions
from stackfleet.patching.spec import (
    CampaignError,
    CampaignSpec,
    LoadedSpec,
    closest,
)
from stackfleet.policy.errors import Problem
from stackfleet.policy.schema import Policy, PolicySpec, Safety
from stackfleet.policy.view import FleetView
from stackfleet.store import action_records
from stackfleet.store import patching as records
from stackfleet.store.audit import AuditLog
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

HOST_STEPS = ("pre-check", "drain", "apply", "restart", "gate", "undrain")
ROLLBACK = "rollback"
_SERVER = kind("server").record_builder()


class StepFailed(StackFleetError):
    """A step could not be carried out on a host (the message says why)."""


# a member of a workload serves while in these statuses
SERVING_STATUSES = ("ACTIVE", "MIGRATING")


@dataclass
class SlaWorkload:
    """A workload of the settings (health.workloads) and its members' server ids."""

    workload: Workload
    members: set[str]

    @property
    def name(self) -> str:
        return self.workload.name

    @property
    def selector(self) -> str:
        return self.workload.selector

    @property
    def min_healthy(self) -> int:
        """k: None in the settings means every member."""
        return self.workload.min_healthy or len(self.members)


# ---------------------------------------------------------------------------- planning


@dataclass
class HostInfo:
    """A host of the cloud as os-services shows it."""

    name: str
    zone: str | None
    binaries: list[str]
    aggregates: list[str] = field(default_factory=list)

    @property
    def compute(self) -> bool:
        return "nova-compute" in self.binaries


def cloud_hosts(conn: Any, store: Store | None, cloud: str) -> dict[str, HostInfo]:
    """Every host with a Nova service (live), with its aggregates (from the store's
    hypervisor records, when a collection pass has seen them)."""
    try:
        response = api(
            f"listing the compute services of cloud {cloud!r}",
            conn.compute.get,
            "/os-services",
            microversion="2.53",
        )
    except ActionError as exc:
        raise ConfigError(str(exc)) from exc
    hosts: dict[str, HostInfo] = {}
    for service in response.json().get("services") or []:
        host = str(service.get("host"))
        info = hosts.setdefault(host, HostInfo(host, None, []))
        info.binaries.append(str(service.get("binary")))
        if service.get("binary") == "nova-compute":
            info.zone = service.get("zone")
    if store is not None:
        for hypervisor in store.list_resources("hypervisor", cloud=cloud)[0]:
            found = hosts.get(str(hypervisor.get("host")))
            if found is not None:
                found.aggregates = list(hypervisor.get("aggregates") or [])
    return hosts


def select_hosts(loaded: LoadedSpec, hosts: dict[str, HostInfo]) -> tuple[list[str], list[Problem]]:
    """The spec's target hosts, in name order; problems for names that do not exist."""
    wanted = loaded.spec.targets.hosts
    problems: list[Problem] = []
    known = sorted(hosts)
    for where, names in (("names", wanted.names), ("exclude", wanted.exclude)):
        for index, name in enumerate(names):
            if name not in hosts:
                problems.append(
                    loaded.problem(
                        ("targets", "hosts", where, index),
                        f"unknown host {name!r}{closest(name, known)}",
                    )
                )
    zones = sorted({h.zone for h in hosts.values() if h.zone})
    for index, zone in enumerate(wanted.availability_zones):
        if zone not in zones:
            problems.append(
                loaded.problem(
                    ("targets", "hosts", "availability_zones", index),
                    f"unknown availability zone {zone!r}{closest(zone, zones)}",
                )
            )
    aggregates = sorted({a for h in hosts.values() for a in h.aggregates})
    for index, aggregate in enumerate(wanted.aggregates):
        if aggregate not in aggregates:
            problems.append(
                loaded.problem(
                    ("targets", "hosts", "aggregates", index),
                    f"unknown aggregate {aggregate!r}{closest(aggregate, aggregates)} "
                    "(aggregates are read from the newest collection pass)",
                )
            )
    chosen = []
    for name, info in sorted(hosts.items()):
        if wanted.names and name not in wanted.names:
            continue
        if name in wanted.exclude:
            continue
        if wanted.availability_zones and info.zone not in wanted.availability_zones:
            continue
        if wanted.aggregates and not set(wanted.aggregates) & set(info.aggregates):
            continue
        roles = {"compute"} if info.compute else set()
        if "nova-conductor" in info.binaries:
            roles.add("controller")
        if wanted.roles and not set(wanted.roles) & roles:
            continue
        chosen.append(name)
    if not chosen and not problems:
        problems.append(loaded.problem(("targets", "hosts"), "no host matches the targets"))
    return chosen, problems


def check_spec(loaded: LoadedSpec, now: datetime) -> list[Problem]:
    """What the file alone cannot show: services defined, playbooks present and passing
    `ansible-playbook --syntax-check`, files the connector needs, an open window."""
    spec = loaded.spec
    problems: list[Problem] = []
    known = definitions(spec.services)
    for index, service in enumerate(spec.targets.services):
        if service not in known:
            problems.append(
                loaded.problem(
                    ("targets", "services", index),
                    f"unknown service {service!r}{closest(service, sorted(known))} "
                    "(define it under `services:`)",
                )
            )
    playbooks: list[tuple[tuple[str | int, ...], str]] = []
    for index, item in enumerate(spec.steps.apply):
        if item.playbook:
            playbooks.append((("steps", "apply", index, "playbook"), item.playbook))
        if item.packages and item.packages.service not in known:
            problems.append(
                loaded.problem(
                    ("steps", "apply", index, "packages", "service"),
                    f"unknown service {item.packages.service!r}"
                    f"{closest(item.packages.service, sorted(known))}",
                )
            )
    for where, checks in (
        ("gate", spec.steps.gate.checks),
        ("pre_check", spec.steps.pre_check.checks),
    ):
        for index, check in enumerate(checks):
            if check.playbook:
                playbooks.append((("steps", where, "checks", index, "playbook"), check.playbook))
    for loc, name in playbooks:
        path = loaded.path(name)
        if not path.is_file():
            problems.append(loaded.problem(loc, f"playbook {name!r} does not exist ({path})"))
            continue
        found = syntax_check(str(path))
        if found:
            problems.append(loaded.problem(loc, f"playbook {name!r}: {found}"))
    if spec.connector.type == "ansible" and spec.connector.inventory:
        inventory = loaded.path(spec.connector.inventory)
        if not inventory.exists():
            problems.append(
                loaded.problem(("connector", "inventory"), f"inventory {inventory} does not exist")
            )
    if spec.window is not None:
        reason = spec.window.closed_reason(now)
        if reason and spec.window.has_ended(now):
            problems.append(loaded.problem(("window",), reason))
        elif reason:
            problems.append(loaded.problem(("window",), f"{reason}: start it then"))
    if spec.steps.restart.enabled and spec.steps.restart.command is None:
        for index, service in enumerate(spec.targets.services):
            definition = known.get(service)
            if definition is not None and not definition.restart:
                problems.append(
                    loaded.problem(
                        ("targets", "services", index),
                        f"service {service!r} has no restart command: give "
                        "steps.restart.command or the service's `restart`",
                    )
                )
    return problems


def batches_of(spec: CampaignSpec, hosts: list[str]) -> list[list[str]]:
    """Canary hosts alone first, then batches of the rollout's size."""
    canary = hosts[: spec.rollout.canary_hosts]
    rest = hosts[spec.rollout.canary_hosts :]
    size = spec.rollout.size(len(hosts))
    batches = [canary] if canary else []
    batches += [rest[i : i + size] for i in range(0, len(rest), size)]
    return batches


def host_steps(spec: CampaignSpec, info: HostInfo) -> list[str]:
    steps = ["pre-check"]
    drain = spec.steps.drain.enabled and info.compute
    if drain:
        steps.append("drain")
    steps.append("apply")
    if spec.steps.restart.enabled:
        steps.append("restart")
    steps.append("gate")
    if drain and spec.steps.undrain:
        steps.append("undrain")
    return steps


@dataclass
class CampaignPlan:
    """What a campaign would do: hosts by batch and each host's steps."""

    name: str
    cloud: str
    region: str
    batches: list[list[str]]
    steps: dict[str, list[str]]
    zones: dict[str, str | None]
    previews: dict[str, list[str]] = field(default_factory=dict)
    # what a batch holds: hosts, or servers (an instance campaign, keyed by server id)
    unit: str = "host"

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "name": self.name,
            "cloud": self.cloud,
            "region": self.region,
            "batches": self.batches,
            "steps": self.steps,
            "zones": self.zones,
            "previews": self.previews,
        }


def preview_apply(loaded: LoadedSpec, connector: Connector, host: str) -> list[str]:
    """The diff the config changes would make on `host` (playbooks and commands cannot
    be previewed: they are named)."""
    lines: list[str] = []
    for item in loaded.spec.steps.apply:
        if item.config is not None:
            current = connector.read_file(host, item.config.file) or ""
            wanted = edit_ini(current, item.config.set, item.config.unset)
            lines += diff(
                {"files": {item.config.file: current}}, {"files": {item.config.file: wanted}}
            )
        elif item.playbook:
            lines.append(f"# playbook {item.playbook}")
        elif item.command:
            lines.append(f"# command: {item.command}")
        elif item.packages:
            lines += [f"# package {n}={v}" for n, v in item.packages.versions.items()]
    return lines


def make_plan(
    loaded: LoadedSpec, conn: Any, store: Store, connector: Connector, now: datetime
) -> CampaignPlan:
    """Resolve the targets against the live cloud and check everything; CampaignError
    listing every problem (nothing started)."""
    spec = loaded.spec
    if spec.targets.instances is not None:
        return make_instance_plan(loaded, conn, store, connector, now)
    hosts = cloud_hosts(conn, store, spec.cloud)
    chosen, problems = select_hosts(loaded, hosts)
    problems += check_spec(loaded, now) + _pass_problems(loaded, store)
    canary = spec.steps.gate.canary
    if canary is not None:
        gates = GateRunner(loaded, conn, connector, store, 1.0)
        for field_, find in (("flavor", gates._flavor), ("image", gates._image)):
            try:
                find(getattr(canary, field_))
            except ActionError as exc:
                problems.append(loaded.problem(("steps", "gate", "canary", field_), str(exc)))
    if problems:
        raise CampaignError(problems)
    batches = batches_of(spec, chosen)
    plan = CampaignPlan(
        spec.name,
        spec.cloud,
        spec.region,
        batches,
        {h: host_steps(spec, hosts[h]) for h in chosen},
        {h: hosts[h].zone for h in chosen},
    )
    for host in batches[0] if batches else []:
        try:
            plan.previews[host] = preview_apply(loaded, connector, host)
        except ConnectorError as exc:
            plan.previews[host] = [f"# cannot preview: {exc}"]
    return plan


def _pass_problems(loaded: LoadedSpec, store: Store) -> list[Problem]:
    cloud = loaded.spec.cloud
    if any(p["status"] in ("complete", "partial") for p in store.list_passes(5, cloud)):
        return []
    return [
        loaded.problem(
            ("cloud",),
            f"no collection pass of cloud {cloud!r} in the store: run `stackfleet "
            f"collect {cloud}` first (the safety gate weighs each change against "
            "the inventory)",
        )
    ]


def make_instance_plan(
    loaded: LoadedSpec, conn: Any, store: Store, connector: Connector, now: datetime
) -> CampaignPlan:
    """An instance campaign's plan: the servers by batch (one at a time by default),
    each rebuilt onto the new image; CampaignError listing every problem."""
    spec = loaded.spec
    problems = check_spec(loaded, now) + _pass_problems(loaded, store)
    region = spec.region or None
    servers, _ = store.list_resources("server", cloud=spec.cloud, region=region)
    groups, _ = store.list_resources("server_group", cloud=spec.cloud, region=region)
    chosen, found = select_instances(loaded, servers, groups)
    problems += found
    wanted = str(spec.steps.apply[0].image)
    image = ""
    try:
        image = GateRunner(loaded, conn, connector, store, 1.0)._image(wanted)
    except ActionError:
        problems.append(loaded.problem(("steps", "apply", 0, "image"), f"unknown image {wanted!r}"))
    if problems:
        raise CampaignError(problems)
    ids = [str(s["id"]) for s in chosen]
    batches = batches_of(spec, ids)
    steps = instance_steps(spec.steps.rebuild.snapshot)
    names = {str(s["id"]): str(s.get("name") or s["id"]) for s in chosen}
    plan = CampaignPlan(
        spec.name,
        spec.cloud,
        spec.region,
        batches,
        {sid: list(steps) for sid in ids},
        {},
        unit="server",
    )
    for server in chosen:
        if str(server["id"]) in (batches[0] if batches else []):
            plan.previews[str(server["id"])] = [
                f"# rebuild {names[str(server['id'])]} from image {server.get('image_id')} "
                f"onto {image} ({wanted})"
            ]
    return plan


# ------------------------------------------------------------------------ the host watch


class HostListing:
    """The servers of one host, read with one list call (all projects, `host` filter)
    and shared by every migration off it: refreshed at most once per `max_age`."""

    def __init__(self, conn: Any, host: str, microversion: str = "2.30") -> None:
        self.conn = conn
        self.host = host
        # 2.47 and later embed each server's flavor (what a capacity check needs)
        self.microversion = microversion
        self._lock = threading.Lock()
        self._at = 0.0
        self._servers: dict[str, dict[str, Any]] = {}
        self.requests = 0

    def refresh(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return self._refresh()

    def _refresh(self) -> dict[str, dict[str, Any]]:
        servers: dict[str, dict[str, Any]] = {}
        path = f"/servers/detail?all_tenants=1&host={self.host}&limit=1000"
        while path:
            self.requests += 1
            body = api(
                f"listing the servers of {self.host}",
                self.conn.compute.get,
                path,
                microversion=self.microversion,
            ).json()
            for obj in body.get("servers") or []:
                record = _SERVER(obj)
                servers[str(record["id"])] = record
            nxt = next(
                (
                    link["href"]
                    for link in body.get("servers_links") or []
                    if link.get("rel") == "next"
                ),
                None,
            )
            path = nxt.split("/v2.1", 1)[-1] if nxt else ""
        self._servers = servers
        self._at = time.monotonic()
        return servers

    @property
    def refreshed_at(self) -> float:
        return self._at

    def server(self, server_id: str, max_age: float) -> dict[str, Any] | None:
        with self._lock:
            if time.monotonic() - self._at > max_age:
                self._refresh()
            return self._servers.get(server_id)


@dataclass
class WatchedContext(RunContext):
    """A run context whose server reads come from a host listing (see HostListing)."""

    host_watch: HostListing | None = None


# ------------------------------------------------------------------------ the runner


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _owner_gone(owner: str | None) -> bool:
    """The lease's owner is a process of this machine that no longer runs."""
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class CampaignRunner:
    """Starts and carries out campaigns over one store."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        connections: Connections | None = None,
        lease: float = 60.0,
        actor: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.connections = connections or Connections()
        self.lease = lease
        self.owner = owner_id()
        self.actor = actor or self.settings.actor
        self.audit = AuditLog(store)

    # ------------------------------------------------------------ starting
    def plan(self, loaded: LoadedSpec) -> CampaignPlan:
        spec = loaded.spec
        conn = self.connections.connection(spec.cloud, spec.region)
        connector = connector_for(_resolved_connector(loaded))
        return make_plan(loaded, conn, self.store, connector, datetime.now(UTC))

    def start(self, loaded: LoadedSpec, source: str = "") -> CampaignPlan:
        """Check and record a campaign (status running); run it with `run`."""
        plan = self.plan(loaded)
        now = datetime.now(UTC)
        steps = [
            (host, batch, position, step)
            for batch, hosts in enumerate(plan.batches)
            for host in hosts
            for position, step in enumerate(plan.steps[host])
        ]
        spec_json = loaded.spec.model_dump(mode="json")
        records.create_campaign(
            self.store,
            loaded.spec.name,
            spec_json,
            {**plan.as_dict(), "base": str(loaded.base), "source": loaded.source},
            source,
            steps,
            now,
        )
        self.audit.append(
            "campaign.started",
            {"plan": plan.as_dict()},
            actor=self.actor,
            policy=_policy_name(loaded.spec.name),
        )
        return plan

    # ------------------------------------------------------------ control
    def set_status(
        self,
        name: str,
        status: str,
        event: str,
        error: str | None = None,
        allowed: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        campaign = records.get_campaign(self.store, name)
        if allowed and campaign["status"] not in allowed:
            raise ConflictError(
                f"campaign {name} is {campaign['status']}; {event.split('.')[-1]} applies to "
                f"a campaign that is {' or '.join(allowed)}"
            )
        now = datetime.now(UTC)
        records.set_campaign(self.store, campaign["id"], now, status=status, error=error)
        self.audit.append(
            event, {"status": status, "error": error}, actor=self.actor, policy=_policy_name(name)
        )
        campaign = records.get_campaign(self.store, name)
        report_campaign(self.store, self.settings, campaign)
        return campaign

    def approve(self, name: str) -> dict[str, Any]:
        """Let the next batch waiting for approval go on."""
        campaign = records.get_campaign(self.store, name)
        waiting = campaign["plan"].get("waiting_batch")
        if campaign["status"] != "awaiting-approval" or waiting is None:
            raise ConflictError(f"campaign {name} is {campaign['status']}: no batch waits")
        approved = sorted({*campaign["approved_batches"], int(waiting)})
        records.set_campaign(
            self.store,
            campaign["id"],
            datetime.now(UTC),
            approved_batches=approved,
            status="running",
            error=None,
        )
        self.audit.append(
            "campaign.batch-approved",
            {"batch": waiting},
            actor=self.actor,
            policy=_policy_name(name),
        )
        return records.get_campaign(self.store, name)

    def resume(self, name: str, retry: bool = False) -> dict[str, Any]:
        """Mark a paused or halted campaign running again; with `retry`, failed steps
        (and steps a crash interrupted that could not be resumed) run again."""
        campaign = records.get_campaign(self.store, name)
        if campaign["status"] in ("completed", "aborted"):
            raise ConflictError(f"campaign {name} is {campaign['status']}; nothing to resume")
        spec = CampaignSpec.model_validate(campaign["spec"])
        if spec.window is not None:
            reason = spec.window.closed_reason(datetime.now(UTC))
            if reason:
                raise ConfigError(f"campaign {name}: {reason}; nothing was resumed")
        if retry:
            steps = records.steps_of(self.store, campaign["id"])
            rolled_back = {s["host"] for s in steps if s["step"] == ROLLBACK}
            for step in steps:
                if step["host"] in rolled_back and step["step"] != "pre-check":
                    # the host is back on its tested revision (and undrained): every
                    # step after its pre-check runs again, and a rollback if it fails
                    status = "skipped" if step["step"] == ROLLBACK else "pending"
                    records.set_step(self.store, step["id"], status=status, error=None, detail={})
                elif step["status"] == "failed":
                    records.set_step(self.store, step["id"], status="pending", error=None)
        return self.set_status(name, "running", "campaign.resumed")

    def rollback(self, name: str, hosts: list[str] | None = None) -> list[dict[str, Any]]:
        """Put each host's last tested revision back (all hosts the campaign changed, or
        `hosts`), restart and gate them. Refused, with nothing done, when a host has no
        tested revision."""
        campaign = records.get_campaign(self.store, name)
        loaded = _loaded_of(campaign)
        steps = records.steps_of(self.store, campaign["id"])
        changed = sorted(
            {
                s["host"]
                for s in steps
                if s["step"] in ("apply", "rebuild")
                and s["status"] in ("done", "running", "failed")
            }
        )
        targets = hosts or changed
        known = sorted({s["host"] for s in steps})
        missing = []
        for host in targets:
            if host not in known:
                raise ConfigError(f"host {host!r} is not in campaign {name}{closest(host, known)}")
            for service in loaded.spec.targets.services:
                if rollback_target(self.store, campaign["id"], host, service) is None:
                    missing.append(f"{service} on {host}")
        if missing:
            raise ConfigError(
                "no tested revision to roll back to for "
                + ", ".join(missing)
                + "; nothing was rolled back"
            )
        if not targets:
            raise ConfigError(f"campaign {name} changed no host yet: nothing to roll back")
        results = []
        run = _Run(self, campaign, loaded)
        for host in targets:
            try:
                run.roll_back(host, {})
                results.append({"host": host, "status": "rolled-back"})
            except StepFailed as exc:
                results.append({"host": host, "status": "failed", "error": str(exc)})
        return results

    # ------------------------------------------------------------ running
    def run(self, name: str, on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Carry a campaign out (or on) until it completes, halts, pauses or waits."""
        campaign = records.get_campaign(self.store, name)
        if campaign["status"] != "running":
            return campaign
        now = datetime.now(UTC)
        stale_before = now - timedelta(seconds=self.lease)
        if _owner_gone(campaign["owner"]):
            stale_before = now + timedelta(days=1)  # its process is gone: take over
        if not records.claim_campaign(self.store, campaign["id"], self.owner, now, stale_before):
            raise ConflictError(
                f"campaign {name} is being carried out by {campaign['owner']} "
                f"(heartbeat {campaign['heartbeat_at']}); its lease ends {self.lease:g} s "
                "after its last heartbeat"
            )
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(campaign["id"], stop), daemon=True)
        beat.start()
        try:
            return _Run(self, campaign, _loaded_of(campaign), on_progress).run()
        finally:
            stop.set()
            beat.join(timeout=5)
            records.release_campaign(self.store, campaign["id"], self.owner)

    def run_due(self) -> None:
        """Every running campaign nobody carries out (the daemon's job)."""
        for campaign in records.list_campaigns(self.store, "running"):
            try:
                self.run(campaign["name"])
            except ConflictError as exc:
                log.info("%s", exc)

    def _heartbeat(self, campaign_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 3):
            records.set_campaign(
                self.store, campaign_id, datetime.now(UTC), heartbeat_at=datetime.now(UTC)
            )


def rollback_target(
    store: Store, campaign_id: int, host: str, service: str
) -> dict[str, Any] | None:
    """The revision a rollback of `host` puts back: the one its pre-check found running
    and tested before this campaign changed anything (what undoing the campaign means),
    else the last revision marked tested there; None when none was ever tested."""
    for step in records.steps_of(store, campaign_id):
        if step["host"] == host and step["step"] == "pre-check":
            digest = (step["detail"].get("revisions") or {}).get(service)
            if digest:
                revision = records.get_revision(store, host, service, digest)
                if revision["tested_at"]:
                    return revision
    return records.last_tested(store, host, service)


def spread_groups(
    servers: list[dict[str, Any]], groups: dict[str, set[str]]
) -> list[list[dict[str, Any]]]:
    """Waves of servers to migrate at once, no two members of one anti-affinity group in
    a wave: the scheduler places each knowing where the other members already are (two
    concurrent moves could otherwise both pick one host)."""
    waves: list[list[dict[str, Any]]] = []
    for server in servers:
        mine = groups.get(str(server["id"]), set())
        for wave in waves:
            if not any(mine & groups.get(str(other["id"]), set()) for other in wave):
                wave.append(server)
                break
        else:
            waves.append([server])
    return waves


def _policy_name(name: str) -> str:
    return f"campaign/{name}"


def _resolved_connector(loaded: LoadedSpec) -> Any:
    """The connector spec with its paths relative to the spec file."""
    spec = loaded.spec.connector
    update: dict[str, Any] = {}
    if spec.root is not None:
        update["root"] = str(loaded.path(spec.root))
    if spec.inventory is not None:
        update["inventory"] = str(loaded.path(spec.inventory))
    return spec.model_copy(update=update)


def _loaded_of(campaign: dict[str, Any]) -> LoadedSpec:
    from pathlib import Path

    spec = CampaignSpec.model_validate(campaign["spec"])
    plan = campaign["plan"]
    return LoadedSpec(
        spec, plan.get("source") or campaign["name"], None, Path(plan.get("base") or ".")
    )


class _Run:
    """One carrying-out of a campaign by one process."""

    def __init__(
        self,
        runner: CampaignRunner,
        campaign: dict[str, Any],
        loaded: LoadedSpec,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.runner = runner
        self.store = runner.store
        self.campaign = campaign
        self.loaded = loaded
        self.spec = loaded.spec
        self.name = self.spec.name
        self.conn = runner.connections.connection(self.spec.cloud, self.spec.region)
        # the records of its actions carry the region the connection is in (a spec
        # without one uses the cloud's configured region): the safety gate counts the
        # stored resources of that cloud region (blast radius, incomplete passes)
        self.region: str = self.spec.region or str(
            getattr(getattr(self.conn, "config", None), "region_name", None) or ""
        )
        self.connector = connector_for(_resolved_connector(loaded))
        self.services: dict[str, ServiceDefinition] = definitions(self.spec.services)
        self.reason = f"stackfleet campaign {self.name}: host maintenance"
        # an instance campaign: its units are servers (ids), patched by rebuild
        self.instances = self.spec.targets.instances is not None
        self._image_id = ""
        self.poll = self.spec.poll_interval.total_seconds()
        self.gates = GateRunner(
            loaded, self.conn, self.connector, self.store, self.poll, self._opened_for_canary
        )
        # host -> servers the scheduler placed on it while it was open for a canary
        self.landed: dict[str, list[str]] = {}
        # workload name -> held while a member moves (see _workload_locks)
        self._sla_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # the inventory the capacity check weighs, and the pass it was read from
        self._fleet: Fleet | None = None
        self._fleet_key: Any = None
        self.progress = on_progress or (lambda text: None)
        self.policy = Policy(
            spec=PolicySpec(
                name=_policy_name(self.name)[:64],
                resource="compute_service",
                safety=Safety(max_percent=100),
            ),
            filters=[],
            actions=[],
        )

    # ------------------------------------------------------------ batches
    def run(self) -> dict[str, Any]:
        steps = records.steps_of(self.store, self.campaign["id"])
        by_batch: dict[int, list[str]] = {}
        for step in steps:
            hosts = by_batch.setdefault(step["batch"], [])
            if step["host"] not in hosts:
                hosts.append(step["host"])
        failed_hosts = {s["host"] for s in steps if s["status"] == "failed"}
        previous_done = False
        for batch in sorted(by_batch):
            batch_steps = [
                s for s in records.steps_of(self.store, self.campaign["id"]) if s["batch"] == batch
            ]
            if all(s["status"] in ("done", "skipped") for s in batch_steps):
                previous_done = True
                continue
            status = self._status()
            if status != "running":
                return records.get_campaign(self.store, self.name)
            now = datetime.now(UTC)
            if self.spec.window is not None:
                reason = self.spec.window.closed_reason(now)
                if reason:
                    return self._stop("paused", f"{reason}; resume when it opens")
            if self.spec.approvals.per_batch and batch not in self._approved():
                plan = {
                    **records.get_campaign(self.store, self.name)["plan"],
                    "waiting_batch": batch,
                }
                records.set_campaign(self.store, self.campaign["id"], now, plan=plan)
                return self._stop(
                    "awaiting-approval",
                    f"batch {batch} ({', '.join(by_batch[batch])}) waits for "
                    f"`stackfleet campaign approve {self.name}`",
                )
            if previous_done and self.spec.rollout.pause.total_seconds() > 0:
                self.progress(f"pause {self.spec.rollout.pause} before batch {batch}")
                time.sleep(self.spec.rollout.pause.total_seconds())
            self.progress(f"batch {batch}: {', '.join(by_batch[batch])}")
            hosts = by_batch[batch]
            with ThreadPoolExecutor(max_workers=min(len(hosts), 16)) as pool:
                outcomes = list(pool.map(self._host, hosts))
            failed_hosts |= {h for h, ok in zip(hosts, outcomes, strict=True) if ok is False}
            if any(ok is None for ok in outcomes):
                # paused or aborted mid-batch: the hosts stopped between steps
                return records.get_campaign(self.store, self.name)
            if len(failed_hosts) >= self.spec.abort.max_failed_hosts:
                return self._stop(
                    "halted",
                    f"{len(failed_hosts)} host(s) failed: {', '.join(sorted(failed_hosts))} "
                    f"(abort.max_failed_hosts {self.spec.abort.max_failed_hosts})",
                    failed_host=sorted(failed_hosts)[0],
                )
            previous_done = True
        return self._stop("completed", None)

    def _status(self) -> str:
        return str(records.get_campaign(self.store, self.name)["status"])

    def _approved(self) -> list[int]:
        return list(records.get_campaign(self.store, self.name)["approved_batches"])

    def _stop(
        self, status: str, error: str | None, failed_host: str | None = None
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        records.set_campaign(self.store, self.campaign["id"], now, status=status, error=error)
        self.runner.audit.append(
            f"campaign.{status}",
            {"error": error, "failed_host": failed_host},
            actor=self.runner.actor,
            policy=_policy_name(self.name),
        )
        campaign = records.get_campaign(self.store, self.name)
        report_campaign(self.store, self.runner.settings, campaign, failed_host)
        self.progress(f"campaign {self.name} {status}" + (f": {error}" if error else ""))
        return campaign

    # ------------------------------------------------------------ hosts
    def _host(self, host: str) -> bool | None:
        """Run a host's remaining steps: True done, False failed, None stopped between
        steps (paused or aborted)."""
        steps = self._steps(host)
        rollback = next((s for s in steps if s["step"] == ROLLBACK), None)
        for step in steps:
            if step["step"] == ROLLBACK or step["status"] in ("done", "skipped"):
                continue
            if step["status"] == "failed":
                if rollback is not None and rollback["status"] in ("pending", "running"):
                    # the process died between the failure and its rollback
                    self._step(host, rollback)
                return False
            if self._status() != "running":
                return None
            ok = self._step(host, step)
            if not ok:
                return False
        return True

    def _steps(self, host: str) -> list[dict[str, Any]]:
        return [s for s in records.steps_of(self.store, self.campaign["id"]) if s["host"] == host]

    def _detail(self, host: str, name: str) -> dict[str, Any]:
        for step in self._steps(host):
            if step["step"] == name:
                return dict(step["detail"] or {})
        return {}

    def _step(self, host: str, step: dict[str, Any]) -> bool:
        resumed = step["status"] == "running"
        detail = dict(step["detail"] or {})
        started = datetime.now(UTC)
        if not resumed:
            detail["started_at"] = started.isoformat()
        detail["attempt"] = int(detail.get("attempt", 0)) + 1
        values: dict[str, Any] = {"status": "running", "detail": detail}
        if not resumed:
            values["started_at"] = started
        records.set_step(self.store, step["id"], **values)
        target = f"{self.spec.cloud}/{self.region}/host/{host}"
        self.runner.audit.append(
            "campaign.step.started",
            {"step": step["step"], "resumed": resumed, "attempt": detail["attempt"]},
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=target,
        )
        self.progress(f"{host}: {step['step']}" + (" (resumed)" if resumed else ""))
        handler = getattr(self, "_" + step["step"].replace("-", "_"))
        began = time.monotonic()
        try:
            result = handler(host, detail, resumed)
        except (StepFailed, ActionError, ConnectorError, ConfigError) as exc:
            seconds = time.monotonic() - began
            records.set_step(
                self.store,
                step["id"],
                status="failed",
                error=str(exc),
                detail=detail,
                finished_at=datetime.now(UTC),
                seconds=seconds,
            )
            self.runner.audit.append(
                "campaign.step.failed",
                {"step": step["step"], "error": str(exc)},
                actor=self.runner.actor,
                policy=_policy_name(self.name),
                target=target,
            )
            self.progress(f"{host}: {step['step']} FAILED: {exc}")
            if (
                step["step"] in ("apply", "restart", "gate", "rebuild", "health-check")
                and self.spec.rollback.on_gate_failure
            ):
                self._rollback_step(host, step["batch"])
            return False
        seconds = time.monotonic() - began
        status = "skipped" if result is None else "done"
        detail.update(result or {})
        records.set_step(
            self.store,
            step["id"],
            status=status,
            detail=detail,
            error=None,
            finished_at=datetime.now(UTC),
            seconds=seconds,
        )
        self.runner.audit.append(
            "campaign.step.done",
            {"step": step["step"], "detail": _brief(detail)},
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=target,
        )
        return True

    def _rollback_step(self, host: str, batch: int) -> None:
        records.add_step(self.store, self.campaign["id"], host, batch, 99, ROLLBACK)
        step = next(s for s in self._steps(host) if s["step"] == ROLLBACK)
        if step["status"] in ("done", "failed"):
            return
        self._step(host, step)

    # ------------------------------------------------------------ steps
    def _capture(self, host: str) -> dict[str, Revision]:
        return {
            service: capture(self.connector, host, service, self.services[service])
            for service in self.spec.targets.services
        }

    def _pre_check(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        if self.instances:
            return self._instance_pre_check(host)
        now = datetime.now(UTC)
        revisions = self._capture(host)
        digests = {s: record(self.store, r, now) for s, r in revisions.items()}
        problems = []
        if self.spec.steps.pre_check.gate:
            # the untouched host is judged as it is: no waiting for services to come up
            gate = self.spec.steps.gate.model_copy(update={"wait": timedelta(0)})
            problems = self.gates.run(
                host,
                gate,
                now,
                None,
                self._compute(host),
                checks=[*self.spec.steps.pre_check.checks, *gate.checks],
            )
        else:
            for check in self.spec.steps.pre_check.checks:
                problems += self.gates._check(host, check)
        if problems:
            raise StepFailed(
                f"pre-check of {host} failed (nothing was changed): " + "; ".join(problems)
            )
        if self.spec.steps.pre_check.gate:
            for service, digest in digests.items():
                records.mark_tested(self.store, host, service, digest, now, self.name)
        return {"revisions": digests}

    def _compute(self, host: str) -> bool:
        return "drain" in {s["step"] for s in self._steps(host)} or bool(
            read_services(self.conn, host, "nova-compute")
        )

    def _act(
        self,
        action: Action,
        record_: Record,
        key_step: str,
        ctx_watch: HostListing | None = None,
        timeout: float | None = None,
    ) -> tuple[str, str]:
        """Plan, gate and execute one action; (verdict, reason)."""
        verdict, reason, _ = self._act_result(action, record_, key_step, ctx_watch, timeout)
        return verdict, reason

    def _act_result(
        self,
        action: Action,
        record_: Record,
        key_step: str,
        ctx_watch: HostListing | None = None,
        timeout: float | None = None,
    ) -> tuple[str, str, dict[str, Any]]:
        """Plan, gate and execute one action; (verdict, reason, the action's result)."""
        planned: Plan | Skip | None = action.plan(record_)
        if planned is None:
            return "done", "nothing to do", {}
        if isinstance(planned, Skip):
            return "skipped", planned.reason, {}
        policy = Policy(
            spec=self.policy.spec.model_copy(update={"resource": record_["kind"]}),
            filters=[],
            actions=[],
        )
        key = idempotency_key(policy.name, action, record_, None, key_step)
        deadline = time.monotonic() + self.spec.steps.drain.timeout.total_seconds()
        while True:
            now = datetime.now(UTC)
            candidate = Candidate(policy, action, record_, planned, key, None, True)
            gate = SafetyGate(
                self.store,
                self.runner.settings.safety,
                FleetView(self.store, now),
                now,
                execute=True,
            )
            gate.decide(policy, [candidate])
            if candidate.verdict == "deferred" and time.monotonic() < deadline:
                time.sleep(self.poll)  # a rate limit: wait for room
                continue
            if candidate.verdict != "execute":
                return candidate.verdict, candidate.reason, {}
            ctx = WatchedContext(
                now=now,
                connections=self.runner.connections,
                notifier=Notifier(),
                verify_timeout=timeout or self.spec.steps.drain.timeout.total_seconds(),
                poll_interval=self.poll,
                host_watch=ctx_watch,
            )
            Executor(
                self.store,
                self.runner.audit,
                ctx,
                self.runner.actor,
                self.runner.settings.safety.exclude_tag,
            ).run(candidate)
            result: dict[str, Any] = {}
            if candidate.action_id is not None:
                result = action_records.get(self.store, candidate.action_id).get("result") or {}
            return candidate.verdict, candidate.reason, result

    def _service_record(self, host: str) -> Record:
        services = read_services(self.conn, host, "nova-compute")
        if not services:
            raise StepFailed(f"{host} has no nova-compute service")
        return service_record(self.spec.cloud, self.region, services[0])

    def _drain(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        attempt = f"{self.campaign['id']}/{host}/drain/{detail['attempt']}"
        service = self._service_record(host)
        capacity: dict[str, Any] = {}
        if self.spec.steps.drain.capacity_check and service.get("disabled_reason") != self.reason:
            # before the disable: a host that cannot be emptied is not taken out at all
            capacity = self._check_capacity(host)
        verdict, reason = self._act(DisableComputeService(reason=self.reason), service, attempt)
        if verdict not in ("succeeded", "done"):
            raise StepFailed(f"disabling the compute service of {host}: {verdict}: {reason}")
        # the plan of moves is taken now that nothing new can land on the host
        listing = HostListing(self.conn, host)
        moved: list[str] = list(detail.get("moved") or [])
        stopped: list[str] = list(detail.get("stopped") or [])
        fallbacks: list[str] = list(detail.get("fallbacks") or [])
        deadline = time.monotonic() + self.spec.steps.drain.timeout.total_seconds()
        problems: list[str] = []
        lock = threading.Lock()
        leave = set(self.spec.steps.drain.leave_statuses)
        left: list[dict[str, Any]] = []
        kept: list[str] = list(detail.get("kept") or [])
        sla = self._sla_workloads()
        spread = self._anti_affinity()
        for workload in sla:
            for member in workload.members:
                # members of one SLA workload move one at a time
                spread.setdefault(member, set()).add(f"workload:{workload.name}")
        while True:
            servers = listing.refresh()
            busy = [s for s in servers.values() if s.get("task_state")]
            left = [s for s in servers.values() if s.get("status") in leave]
            todo = [
                s
                for s in servers.values()
                if not s.get("task_state")
                and s.get("status") not in leave
                and str(s["id"]) not in stopped
                and str(s["id"]) not in kept
                and not str(s.get("name") or "").startswith(CANARY_PREFIX)
            ]
            if not todo and not busy:
                break
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"{host} is not empty after {self.spec.steps.drain.timeout}: "
                    + ", ".join(str(s.get("name") or s["id"]) for s in todo + busy)
                )
            if not todo:
                time.sleep(self.poll)  # migrations under way (a resumed drain): wait
                continue
            problems.clear()

            def move(server: dict[str, Any]) -> None:
                with self._workload_locks(str(server["id"]), sla):
                    move_one(server)

            def move_one(server: dict[str, Any]) -> None:
                server = {
                    **server,
                    "kind": "server",
                    "cloud": self.spec.cloud,
                    "region": self.region,
                }
                first: Action = (
                    ColdMigrateServer()
                    if server.get("status") == "SHUTOFF"
                    else LiveMigrateServer()
                )
                verdict, reason = self._act(first, server, attempt, listing)
                if verdict in ("succeeded", "done"):
                    with lock:
                        moved.append(str(server["id"]))
                    return
                fallback = self.spec.steps.drain.fallback
                label_ = f"{server.get('name') or server['id']}"
                if first.type == "migrate" and fallback == "stop":
                    # shut off already and cannot be moved: it stays, shut off
                    with lock:
                        kept.append(str(server["id"]))
                        fallbacks.append(
                            f"{label_}: {first.type} {verdict} ({reason}); "
                            "left on the host, shut off"
                        )
                    return
                if fallback == "none" or first.type == "migrate":
                    with lock:
                        problems.append(f"{first.type} {label_}: {verdict}: {reason}")
                    return
                extra: Action = ColdMigrateServer() if fallback == "cold-migrate" else StopServer()
                breach = self._sla_breach(str(server["id"]), sla)
                fallback_entry = {
                    "server": server["id"],
                    "failed": first.type,
                    "reason": reason,
                    "fallback": extra.type,
                }
                if breach:
                    # a stop or a cold migration takes the member down: never below k of n
                    breach += ": the host is halted instead"
                    self._audit_fallback(server, {**fallback_entry, "refused": breach})
                    with lock:
                        problems.append(
                            f"{first.type} {label_}: {verdict}: {reason}; its fallback "
                            f"{extra.type} refused: {breach}"
                        )
                    return
                with lock:
                    fallbacks.append(f"{label_}: {first.type} {verdict} ({reason}); {extra.type}")
                self._audit_fallback(server, fallback_entry)
                live = listing.refresh().get(str(server["id"]))
                if live is None:
                    with lock:
                        moved.append(str(server["id"]))
                    return
                live = {
                    **live,
                    "kind": "server",
                    "cloud": self.spec.cloud,
                    "region": self.region,
                }
                verdict, reason = self._act(extra, live, attempt + "/fallback", listing)
                with lock:
                    if verdict in ("succeeded", "done"):
                        (stopped if extra.type == "stop" else moved).append(str(server["id"]))
                    else:
                        problems.append(f"{extra.type} {label_}: {verdict}: {reason}")

            with ThreadPoolExecutor(max_workers=self.spec.steps.drain.concurrency) as pool:
                for wave in spread_groups(todo, spread):
                    list(pool.map(move, wave))
            if problems:
                raise StepFailed(f"draining {host}: " + "; ".join(problems))
        return {
            "moved": moved,
            "stopped": stopped,
            "fallbacks": fallbacks,
            "kept": kept,
            "left": [f"{s.get('name') or s['id']} ({s.get('status')})" for s in left],
            "list_requests": listing.requests,
            **({"capacity": capacity} if capacity else {}),
        }

    def _audit_fallback(self, server: Record, details: dict[str, Any]) -> None:
        self.runner.audit.append(
            "campaign.fallback",
            details,
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=f"{self.spec.cloud}/{self.region}/server/{server['id']}",
        )

    def _check_capacity(self, host: str) -> dict[str, Any]:
        """Whether the other usable hosts of the host's zone (and aggregates), outside
        its batch, can take what runs on it, anti-affinity respected (capacity from the
        newest collection pass, servers listed live); StepFailed saying what is short."""
        fleet = self._inventory()
        hosts = {
            h.host: h for h in host_capacities(fleet.of("hypervisor"), fleet.of("compute_service"))
        }
        mine = hosts.get(host)
        if mine is None:
            raise StepFailed(
                f"not draining {host} (nothing was disabled): the newest collection pass "
                f"has no hypervisor of {host} to weigh its servers against; run `stackfleet "
                f"collect {self.spec.cloud}` or set steps.drain.capacity_check: false"
            )
        aggregates = {
            str(h.get("host")): set(h.get("aggregates") or []) for h in fleet.of("hypervisor")
        }
        mine_aggregates = aggregates.get(host, set())
        batch = self._batch_hosts(host)
        destinations = [
            h
            for h in hosts.values()
            if h.usable
            and h.host not in batch
            and h.zone == mine.zone
            and (not mine_aggregates or mine_aggregates & aggregates.get(h.host, set()))
        ]
        leave = set(self.spec.steps.drain.leave_statuses)
        moving = [
            {**s, "cloud": self.spec.cloud, "region": self.region}
            for s in HostListing(self.conn, host, microversion="2.47").refresh().values()
            if s.get("status") not in leave
            and not str(s.get("name") or "").startswith(CANARY_PREFIX)
        ]
        hard: dict[str, set[str]] = {}
        group_hosts: dict[str, set[str]] = {}
        where = {str(s["id"]): s.get("host") for s in fleet.of("server")}
        for group in fleet.of("server_group"):
            if group.get("policy") != "anti-affinity":
                continue
            for member in group.get("members") or []:
                hard.setdefault(str(member), set()).add(str(group.get("name") or group["id"]))
                if where.get(str(member)) and where[str(member)] != host:
                    group_hosts.setdefault(str(group.get("name") or group["id"]), set()).add(
                        str(where[str(member)])
                    )
        flavors = flavors_by_name(fleet.of("flavor"))
        # the region key of the records: the store's region of this cloud
        fit = drain_fit(
            host,
            [{**s, "region": mine.region} for s in moving],
            destinations,
            flavors,
            hard,
            group_hosts,
        )
        if not fit.fits:
            raise StepFailed(f"not draining {host} (nothing was disabled): {fit.message()}")
        return {"servers": fit.servers, "destinations": len(fit.destinations)}

    def _inventory(self) -> Fleet:
        """What the capacity check weighs, from the newest collection pass: read once per
        pass, not once per host (100 hosts of 20 servers would read 2,000 server records
        100 times)."""
        newest = self.store.list_passes(1, self.spec.cloud)
        key = newest[0]["id"] if newest else None
        with self._locks_guard:
            if self._fleet is None or self._fleet_key != key:
                self._fleet = load_fleet(
                    self.store,
                    self.spec.cloud,
                    self.region or None,
                    ("hypervisor", "compute_service", "flavor", "server", "server_group"),
                )
                self._fleet_key = key
            return self._fleet

    def _batch_hosts(self, host: str) -> set[str]:
        """The hosts drained beside `host` (its batch): no destination for its servers."""
        steps = records.steps_of(self.store, self.campaign["id"])
        batch = next((s["batch"] for s in steps if s["host"] == host), None)
        return {s["host"] for s in steps if s["batch"] == batch}

    def _sla_workloads(self) -> list[SlaWorkload]:
        """The settings' workloads (health.workloads) of this cloud region, with their
        members from the newest collection pass."""
        configured = self.runner.settings.health.workloads
        if not configured:
            return []
        servers, _ = self.store.list_resources(
            "server", cloud=self.spec.cloud, region=self.region or None
        )
        groups, _ = self.store.list_resources(
            "server_group", cloud=self.spec.cloud, region=self.region or None
        )
        found = []
        for workload in configured:
            members = {str(s["id"]) for s in workload_members(workload, servers, groups)}
            if members:
                found.append(SlaWorkload(workload, members))
        return found

    @contextmanager
    def _workload_locks(self, server_id: str, sla: list[SlaWorkload]) -> Iterator[None]:
        """Hold the lock of each SLA workload the server is a member of while it moves:
        one member of a workload at a time, across every host of the batch."""
        names = sorted(w.name for w in sla if server_id in w.members)
        with self._locks_guard:
            locks = [self._sla_locks.setdefault(n, threading.Lock()) for n in names]
        for held in locks:
            held.acquire()
        try:
            yield
        finally:
            for held in reversed(locks):
                held.release()

    def _sla_breach(self, server_id: str, sla: list[SlaWorkload]) -> str:
        """Why taking `server_id` down (a stop, a cold migration) would leave one of its
        workloads below its k healthy members ("" when it would not). Read live: a
        member counts while it runs (ACTIVE, or MIGRATING: a live migration keeps the
        guest running)."""
        for workload in sla:
            if server_id not in workload.members:
                continue
            serving = 0
            for member in sorted(workload.members - {server_id}):
                live = self._read_server(member)
                if live is not None and live.get("status") in SERVING_STATUSES:
                    serving += 1
            if serving < workload.min_healthy:
                return (
                    f"workload {workload.name!r} ({workload.selector}) would keep "
                    f"{serving} of {len(workload.members)} members healthy, below its "
                    f"min_healthy {workload.min_healthy}"
                )
        return ""

    def _anti_affinity(self) -> dict[str, set[str]]:
        """Server id -> the (soft-)anti-affinity groups it is a member of (from the
        newest collection pass)."""
        found: dict[str, set[str]] = {}
        groups, _ = self.store.list_resources(
            "server_group", cloud=self.spec.cloud, region=self.region or None
        )
        for group in groups:
            if group.get("policy") in ("anti-affinity", "soft-anti-affinity"):
                for member in group.get("members") or []:
                    found.setdefault(str(member), set()).add(str(group["id"]))
        return found

    def _apply(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        now = datetime.now(UTC)
        before = detail.get("before")
        current = self._capture(host)
        digests = {s: r.digest for s, r in current.items()}
        if before is None:
            before = digests
            detail["before"] = before
            step = next(s for s in self._steps(host) if s["step"] == "apply")
            records.set_step(self.store, step["id"], detail=detail)
        elif digests != before:
            # interrupted after the change took: record it, do not change again
            return self._applied(host, before, current, now, resumed=True)
        elif resumed and not all(item.rerunnable for item in self.spec.steps.apply):
            raise StepFailed(
                f"the apply step on {host} was interrupted and its command is not marked "
                "idempotent: check the host, then `stackfleet campaign resume "
                f"{self.name} --retry` to run it again (or abort)"
            )
        for item in self.spec.steps.apply:
            timeout = item.timeout.total_seconds()
            if item.playbook:
                result = self.connector.run_playbook(
                    host,
                    str(self.loaded.path(item.playbook)),
                    {**item.extravars, "stackfleet_campaign": self.name, "stackfleet_host": host},
                    timeout=timeout,
                )
                what = f"playbook {item.playbook}"
            elif item.command:
                result = self.connector.run(host, item.command, timeout=timeout)
                what = f"command `{item.command}`"
            elif item.config is not None:
                text = self.connector.read_file(host, item.config.file)
                if text is None:
                    raise StepFailed(f"{item.config.file} does not exist on {host}")
                wanted = edit_ini(text, item.config.set, item.config.unset)
                if wanted != text:
                    self.connector.write_file(host, item.config.file, wanted)
                continue
            else:
                assert item.packages is not None
                install_packages(
                    self.connector,
                    host,
                    self.services[item.packages.service],
                    item.packages.versions,
                )
                continue
            if not result.ok:
                raise StepFailed(f"{what} failed on {host} (exit {result.rc}): {result.tail()}")
        return self._applied(host, before, self._capture(host), now, resumed=False)

    def _applied(
        self,
        host: str,
        before: dict[str, str],
        after: dict[str, Revision],
        now: datetime,
        resumed: bool,
    ) -> dict[str, Any]:
        digests = {s: record(self.store, r, now, "applied", self.name) for s, r in after.items()}
        changes = {}
        for service, revision in after.items():
            old = records.get_revision(self.store, host, service, before[service])["content"]
            changes[service] = diff(old, revision.content, "before", "after")[:200]
        self.runner.audit.append(
            "campaign.applied",
            {"before": before, "after": digests, "diff": changes, "resumed": resumed},
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=f"{self.spec.cloud}/{self.region}/host/{host}",
        )
        return {"after": digests}

    def _restart_commands(self) -> list[str]:
        if self.spec.steps.restart.command:
            return [self.spec.steps.restart.command]
        commands: list[str] = []
        for service in self.spec.targets.services:
            command = self.services[service].restart
            if command and command not in commands:
                commands.append(command)
        return commands

    def _restart(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        started = datetime.fromisoformat(detail["started_at"])
        if resumed:
            services = read_services(self.conn, host)
            if services and not services_problems(services, datetime.now(UTC), None, started):
                fresh = all(
                    (t := _parse(s.get("updated_at"))) is not None and t >= started
                    for s in services
                )
                if fresh:
                    return {"restarted_at": started.isoformat(), "resumed": "came back"}
        return self._run_restart(host)

    def _run_restart(self, host: str) -> dict[str, Any]:
        restarted = datetime.now(UTC)
        for command in self._restart_commands():
            result = self.connector.run(host, command)
            if not result.ok:
                raise StepFailed(
                    f"restart `{command}` failed on {host} (exit {result.rc}): {result.tail()}"
                )
        return {"restarted_at": restarted.isoformat()}

    def _gate(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        since = datetime.fromisoformat(
            self._detail(host, "pre-check").get("started_at") or detail["started_at"]
        )
        restarted = self._detail(host, "restart").get("restarted_at")
        if resumed and any(
            s["step"] == "drain" and s["status"] == "done" for s in self._steps(host)
        ):
            # interrupted while the host was open for the canary: drained again first
            self._disable(host, f"{self.campaign['id']}/{host}/gate/{detail['attempt']}")
        self.landed.pop(host, None)
        problems = self.gates.run(
            host,
            self.spec.steps.gate,
            since,
            datetime.fromisoformat(restarted) if restarted else None,
            self._compute(host),
        )
        landed = self.landed.pop(host, [])
        if landed:
            detail["landed_while_open"] = landed
        if problems:
            raise StepFailed(f"the health gate failed on {host}: " + "; ".join(problems))
        now = datetime.now(UTC)
        tested = {}
        for service, revision in self._capture(host).items():
            digest = revision.digest
            records.save_revision(self.store, host, service, digest, revision.content, now)
            records.mark_tested(self.store, host, service, digest, now, self.name)
            tested[service] = digest
        return {"tested": tested}

    def _disable(self, host: str, key: str) -> None:
        """Disable the host's compute service with the campaign's reason (nothing to do
        when it is so already)."""
        verdict, reason = self._act(
            DisableComputeService(reason=self.reason), self._service_record(host), key
        )
        if verdict not in ("succeeded", "done"):
            raise StepFailed(f"disabling the compute service of {host}: {verdict}: {reason}")

    @contextmanager
    def _opened_for_canary(self, host: str, service: dict[str, Any]) -> Iterator[None]:
        """The drained host's compute service enabled while the canary boots, disabled
        again with the campaign's reason afterwards (see patching/gates.py: Nova places
        nothing on a disabled host, a forced canary included). The scheduler may place
        other servers on it meanwhile: they are named in the gate step's detail
        (`landed_while_open`). A host disabled by someone else is not opened."""
        if service.get("disabled_reason") != self.reason:
            raise ActionError(
                f"nova-compute@{host} is disabled by someone else (reason: "
                f"{service.get('disabled_reason') or 'none given'}): Nova places no server "
                "on a disabled compute service, a canary forced onto it included, and the "
                "campaign does not enable a host it did not disable"
            )
        key = f"{self.campaign['id']}/{host}/canary/{time.time_ns()}"
        listing = HostListing(self.conn, host)
        before = set(listing.refresh())
        verdict, reason = self._act(
            EnableComputeService(reason=self.reason),
            service_record(self.spec.cloud, self.region, service),
            key + "/open",
        )
        if verdict not in ("succeeded", "done"):
            raise ActionError(f"opening {host} for the canary: {verdict}: {reason}")
        self.progress(f"{host}: compute service enabled for the canary")
        try:
            yield
        finally:
            try:
                self._disable(host, key + "/close")
            except StepFailed as exc:
                raise ActionError(f"{exc} (after the canary: {host} is left enabled)") from exc
            self.progress(f"{host}: compute service disabled again")
            landed = [
                str(s.get("name") or sid)
                for sid, s in listing.refresh().items()
                if sid not in before and not str(s.get("name") or "").startswith(CANARY_PREFIX)
            ]
            if landed:
                self.landed.setdefault(host, []).extend(landed)
                self.progress(f"{host}: placed there while open for the canary: {landed}")

    def _undrain(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        attempt = f"{self.campaign['id']}/{host}/undrain/{detail['attempt']}"
        verdict, reason = self._act(
            EnableComputeService(reason=self.reason), self._service_record(host), attempt
        )
        if verdict not in ("succeeded", "done"):
            raise StepFailed(f"enabling the compute service of {host}: {verdict}: {reason}")
        started = []
        for server_id in self._detail(host, "drain").get("stopped") or []:
            live = self._read_server(server_id)
            if live is None:
                continue
            verdict, reason = self._act(StartServer(), live, attempt)
            if verdict in ("succeeded", "done"):
                started.append(server_id)
        return {"started": started}

    def _read_server(self, server_id: str) -> Record | None:
        response = api(
            f"reading server {server_id}",
            self.conn.compute.get,
            f"/servers/{server_id}",
            missing_ok=True,
            microversion="2.30",
        )
        if response is None:
            return None
        body = response.json()
        return {
            **_SERVER(body["server"]),
            "kind": "server",
            "cloud": self.spec.cloud,
            "region": self.region,
        }

    # ------------------------------------------------------------ instances
    def _server(self, server_id: str) -> Record:
        live = self._read_server(server_id)
        if live is None:
            raise StepFailed(f"server {server_id} no longer exists")
        return live

    def _new_image(self) -> str:
        """The id of the image the servers are rebuilt onto (the spec names it)."""
        if not self._image_id:
            try:
                self._image_id = self.gates._image(str(self.spec.steps.apply[0].image))
            except ActionError as exc:
                raise StepFailed(str(exc)) from exc
        return self._image_id

    def _rebuild_timeout(self) -> float:
        return self.spec.steps.rebuild.timeout.total_seconds()

    def _wait_settled(self, server_id: str) -> Record:
        """The server once no task is under way (ACTIVE, ERROR...), or as it is when the
        rebuild timeout has passed."""
        deadline = time.monotonic() + self._rebuild_timeout()
        while True:
            live = self._server(server_id)
            if not live.get("task_state") and live.get("status") not in ("BUILD", "REBUILD"):
                return live
            if time.monotonic() > deadline:
                return live
            time.sleep(self.poll)

    def _instance_pre_check(self, server_id: str) -> dict[str, Any]:
        """The untouched server: ACTIVE, booted from an image, its guest checks pass —
        its image becomes the tested configuration a rollback returns to."""
        live = self._server(server_id)
        name = _label(live)
        if live.get("status") != "ACTIVE" or live.get("task_state"):
            raise StepFailed(
                f"pre-check of server {name} failed (nothing was changed): it is "
                f"{live.get('status')}"
                + (f" ({live['task_state']})" if live.get("task_state") else "")
                + ", not ACTIVE"
            )
        if not live.get("image_id"):
            raise StepFailed(
                f"pre-check of server {name} failed (nothing was changed): booted from a "
                "volume, it has no image to rebuild"
            )
        problems = guest_check_problems(self.spec.steps.rebuild.checks, live, str(live["image_id"]))
        if problems:
            raise StepFailed(
                f"pre-check of server {name} failed (nothing was changed): " + "; ".join(problems)
            )
        return {"name": live.get("name"), "tested_image": live["image_id"]}

    def _snapshot(self, server_id: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        live = self._server(server_id)
        key = f"{self.campaign['id']}/{server_id}/snapshot/{detail['attempt']}"
        verdict, reason, result = self._act_result(
            SnapshotServer(), live, key, timeout=self._rebuild_timeout()
        )
        image = result.get("snapshot_image_id")
        if verdict not in ("succeeded", "done") or not image:
            raise StepFailed(f"snapshot of server {_label(live)}: {verdict}: {reason}")
        return {"snapshot": image}

    def _rebuild(self, server_id: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        image = self._new_image()
        live = self._server(server_id)
        previous = live.get("image_id")
        if resumed and previous == image and not live.get("task_state"):
            return {"image": image, "resumed": "rebuilt already"}
        sla = self._sla_workloads()
        with self._workload_locks(server_id, sla):
            # the member is down while it rebuilds: never below k of n
            breach = self._sla_breach(server_id, sla)
            if breach:
                raise StepFailed(
                    f"not rebuilding server {_label(live)} (nothing was changed): {breach}"
                )
            key = f"{self.campaign['id']}/{server_id}/rebuild/{detail['attempt']}"
            verdict, reason = self._act(
                RebuildServer(image=image), live, key, timeout=self._rebuild_timeout()
            )
        if verdict not in ("succeeded", "done"):
            raise StepFailed(f"rebuild of server {_label(live)} onto {image}: {verdict}: {reason}")
        return {"image": image, "previous_image": previous}

    def _health_check(
        self, server_id: str, detail: dict[str, Any], resumed: bool
    ) -> dict[str, Any]:
        image = self._new_image()
        live = self._wait_settled(server_id)
        problems = []
        if live.get("status") != "ACTIVE":
            problems.append(f"it is {live.get('status')}, not ACTIVE")
        if live.get("image_id") != image:
            problems.append(f"it runs image {live.get('image_id')}, not {image}")
        if not problems:
            problems = guest_check_problems(self.spec.steps.rebuild.checks, live, image)
        if problems:
            raise StepFailed(
                f"the health check of server {_label(live)} failed: " + "; ".join(problems)
            )
        return {"tested_image": image}

    def _rebuild_back(self, server_id: str, detail: dict[str, Any]) -> dict[str, Any]:
        """Rebuild a server back from its snapshot (or, without one, onto the image it
        ran healthy on), then check it again; nothing to do when it was never rebuilt."""
        tested = self._detail(server_id, "pre-check").get("tested_image")
        snapshot = self._detail(server_id, "snapshot").get("snapshot")
        if not tested:
            raise StepFailed(f"server {server_id} has no tested image to roll back to")
        live = self._wait_settled(server_id)
        if live.get("image_id") in (tested, snapshot) and live.get("status") == "ACTIVE":
            return {"restored": live.get("image_id"), "rebuilt": False}
        target = str(snapshot or tested)
        key = f"{self.campaign['id']}/{server_id}/rollback/{time.time_ns()}"
        verdict, reason = self._act(
            RebuildServer(image=target), live, key, timeout=self._rebuild_timeout()
        )
        if verdict not in ("succeeded", "done"):
            raise StepFailed(
                f"rebuilding server {_label(live)} back onto {target}: {verdict}: {reason}"
            )
        after = self._wait_settled(server_id)
        source = "snapshot" if snapshot else "tested image"
        self.runner.audit.append(
            "campaign.rolled-back",
            {
                "server": server_id,
                "before": live.get("image_id"),
                "after": target,
                "from": source,
                "tested_image": tested,
            },
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=f"{self.spec.cloud}/{self.region}/server/{server_id}",
        )
        problems = [] if after.get("status") == "ACTIVE" else [f"it is {after.get('status')}"]
        problems = problems or guest_check_problems(self.spec.steps.rebuild.checks, after, target)
        if problems:
            raise StepFailed(
                f"server {_label(after)} rebuilt back from its {source} but its check still "
                "fails: " + "; ".join(problems)
            )
        return {"restored": target, "from": source}

    def _rollback(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        return self.roll_back(host, detail)

    def roll_back(self, host: str, detail: dict[str, Any]) -> dict[str, Any]:
        """Put the last tested revision of each service back on `host`, restart, gate;
        re-enable the host when its gate passes. A server (instance campaign) is
        rebuilt back."""
        if self.instances:
            return self._rebuild_back(host, detail)
        now = datetime.now(UTC)
        restored = {}
        for service in self.spec.targets.services:
            tested = rollback_target(self.store, self.campaign["id"], host, service)
            if tested is None:
                raise StepFailed(f"no tested revision of {service} on {host} to roll back to")
            current = capture(self.connector, host, service, self.services[service])
            changed = apply_revision(
                self.connector, tested["content"], self.services[service], host
            )
            records.add_event(
                self.store, host, service, tested["digest"], "rolled-back", now, self.name
            )
            self.runner.audit.append(
                "campaign.rolled-back",
                {
                    "service": service,
                    "before": current.digest,
                    "after": tested["digest"],
                    "changed": changed,
                    "diff": diff(current.content, tested["content"], "before", "after")[:200],
                },
                actor=self.runner.actor,
                policy=_policy_name(self.name),
                target=f"{self.spec.cloud}/{self.region}/host/{host}",
            )
            restored[service] = tested["digest"]
        restart = self._run_restart(host) if self.spec.steps.restart.enabled else {}
        restarted = restart.get("restarted_at")
        problems = self.gates.run(
            host,
            self.spec.steps.gate,
            now,
            datetime.fromisoformat(restarted) if restarted else None,
            self._compute(host),
        )
        if problems:
            raise StepFailed(
                f"{host} rolled back to its tested revision but its gate still "
                "fails (left drained): " + "; ".join(problems)
            )
        if self.spec.steps.drain.enabled and self.spec.steps.undrain and self._compute(host):
            self._undrain(host, {"attempt": f"rollback-{int(time.time())}"}, False)
        return {"restored": restored}


def _label(server: Record) -> str:
    return f"{server.get('name') or server['id']} ({server['id']})"


def _parse(value: Any) -> datetime | None:
    from stackfleet.core.times import parse_time

    return parse_time(value)


def _brief(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if k not in ("moved",)} | (
        {"moved": len(detail["moved"])} if "moved" in detail else {}
    )
