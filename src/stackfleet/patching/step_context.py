"""What the steps of a campaign run share: the run's state (campaign, spec, connection,
connector) and how a step acts — every change planned, passed through the engine's safety
gate and executed by its executor (idempotency keys, re-read before acting, audit entries
before and after). The steps themselves: patching/host_steps.py, drain.py, instances.py;
their order, batches and control: campaign.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stackfleet.actions.base import Action, Plan, Record, Skip
from stackfleet.actions.maintenance import api, read_services, service_record
from stackfleet.actions.notify import Notifier
from stackfleet.core.errors import StackFleetError
from stackfleet.engine.capacity import Fleet
from stackfleet.engine.execute import Executor, RunContext
from stackfleet.engine.gate import Candidate, SafetyGate, idempotency_key
from stackfleet.model.kinds import kind
from stackfleet.patching.connectors import connector_for
from stackfleet.patching.gates import GateRunner
from stackfleet.patching.services import ServiceDefinition, definitions
from stackfleet.patching.spec import LoadedSpec
from stackfleet.policy.schema import Policy, PolicySpec, Safety
from stackfleet.policy.view import FleetView
from stackfleet.store import action_records
from stackfleet.store import patching as records

if TYPE_CHECKING:  # the runner starts a run; a run only reads its store and settings
    from stackfleet.patching.campaign import CampaignRunner


_SERVER = kind("server").record_builder()


class StepFailed(StackFleetError):
    """A step could not be carried out on a host (the message says why)."""


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


class StepContext:
    """What every step of one carrying-out of a campaign shares: the campaign, its
    spec, connection and connector, and how a step acts (through the safety gate
    and the executor, audited)."""

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
        # wired by the run (it needs the host steps' canary opener)
        self.gates: GateRunner
        # host -> servers the scheduler placed on it while it was open for a canary
        self.landed: dict[str, list[str]] = {}
        # workload name -> held while a member moves (see _workload_locks)
        self._sla_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # hosts of the batch under way that their drain has not disabled yet (DrainSteps)
        self._not_yet_disabled: set[str] = set()
        self._disables = threading.Condition()
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

    def _steps(self, host: str) -> list[dict[str, Any]]:
        return [s for s in records.steps_of(self.store, self.campaign["id"]) if s["host"] == host]

    def _detail(self, host: str, name: str) -> dict[str, Any]:
        for step in self._steps(host):
            if step["step"] == name:
                return dict(step["detail"] or {})
        return {}

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
