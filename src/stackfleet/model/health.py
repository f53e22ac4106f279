"""The health model: what the signals about a host, an instance or a workload say, and
whether they are enough to act on. No I/O here: the engine gathers the signals
(engine/health.py), this module judges them, the store keeps the verdicts.

Every verdict carries the evidence that decided it, signal by signal, so an operator can
check the reasoning (docs/health.md lists which combinations allow acting and why).

Host verdicts:

- **host failure**: the compute service is silent (heartbeat older than allowed, Nova says
  down, or its RPC consumer is gone) *and* the host itself looks dead by a signal that
  does not come from the compute service: the management address does not answer
  (several probes in a row), or the BMC says power Off or health Critical. Only this
  verdict lets a recovery evacuate.
- **process failure**: the compute service is silent but the host answers on its
  management address (or its RPC consumer is still there): the instances run on under
  the hypervisor, so evacuating them would start second copies. Restart the service.
- **undetermined**: the service is silent and nothing independent says whether the host
  lives (no probe and no BMC, or signals that contradict each other). Never acted on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from stackfleet.core.times import parse_time

HealthState = Literal["healthy", "degraded", "down", "unknown"]
Failure = Literal["none", "host", "process", "undetermined"]
STATES: tuple[str, ...] = ("healthy", "degraded", "down", "unknown")

# the prefix of every disabled reason StackFleet writes on a compute service
REASON_PREFIX = "stackfleet"


@dataclass(frozen=True)
class Evidence:
    """One signal and what it says: `says` is alive, dead, info or unknown."""

    signal: str
    value: str
    says: str

    def text(self) -> str:
        return f"{self.signal}: {self.value} ({self.says})"


@dataclass
class HostSignals:
    """Everything known about one compute host at one moment.

    `probe` is reachable / unreachable (after `probe_misses` misses in a row) /
    missing (a miss or two, not yet enough) / unknown (no address or port configured).
    `rpc_consumers` is the consumer count of the host's `compute.<host>` queue (None: no
    management API configured or it could not be read). BMC fields are None when the
    BMC map does not know the host or the BMC could not be read (`bmc_error` says why)."""

    host: str
    cloud: str = ""
    region: str = ""
    service_id: str | None = None
    service_state: str | None = None
    service_status: str | None = None
    disabled_reason: str | None = None
    forced_down: bool = False
    heartbeat_age: float | None = None
    heartbeat_allowed: float = 15.0
    hypervisor_state: str | None = None
    probe: str = "unknown"
    probe_misses: int = 0
    probe_detail: str = ""
    rpc_consumers: int | None = None
    bmc_power: str | None = None
    bmc_health: str | None = None
    bmc_error: str | None = None


@dataclass
class HostHealth:
    """A host's verdict: state, the kind of failure, and the evidence."""

    host: str
    cloud: str
    region: str
    state: HealthState
    failure: Failure
    evidence: list[Evidence] = field(default_factory=list)
    reason: str = ""
    service_id: str | None = None
    disabled: bool = False
    disabled_reason: str | None = None

    @property
    def host_failed(self) -> bool:
        """The only verdict a recovery may evacuate on."""
        return self.failure == "host"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["evidence"] = [e.text() for e in self.evidence]
        return out


def _silent(signals: HostSignals, evidence: list[Evidence]) -> bool:
    """Whether the compute service looks gone; adds what says so (or not)."""
    silent = False
    if signals.service_state is None:
        evidence.append(Evidence("compute service", "not listed", "unknown"))
        return False
    if signals.forced_down:
        evidence.append(Evidence("compute service", "forced down", "dead"))
        silent = True
    elif signals.service_state == "down":
        evidence.append(Evidence("compute service", "Nova reports it down", "dead"))
        silent = True
    else:
        evidence.append(Evidence("compute service", "Nova reports it up", "alive"))
    age = signals.heartbeat_age
    if age is not None:
        if age > signals.heartbeat_allowed:
            evidence.append(
                Evidence(
                    "heartbeat",
                    f"{age:.0f} s old (> {signals.heartbeat_allowed:g} s)",
                    "dead",
                )
            )
            silent = True
        else:
            evidence.append(Evidence("heartbeat", f"{age:.0f} s old", "alive"))
    if signals.rpc_consumers is not None:
        if signals.rpc_consumers == 0:
            evidence.append(Evidence("rpc consumer", f"compute.{signals.host}: none", "dead"))
            silent = True
        else:
            evidence.append(
                Evidence(
                    "rpc consumer", f"compute.{signals.host}: {signals.rpc_consumers}", "alive"
                )
            )
    return silent


def assess_host(signals: HostSignals) -> HostHealth:
    """The verdict on one host from its signals (see the module doc)."""
    evidence: list[Evidence] = []
    silent = _silent(signals, evidence)
    # the host itself, by signals that do not come from its compute service
    host_dead: list[str] = []
    host_alive: list[str] = []
    if signals.probe == "reachable":
        evidence.append(Evidence("management address", signals.probe_detail or "answers", "alive"))
        host_alive.append("its management address answers")
    elif signals.probe == "unreachable":
        evidence.append(
            Evidence(
                "management address",
                signals.probe_detail or f"{signals.probe_misses} misses in a row",
                "dead",
            )
        )
        host_dead.append("its management address does not answer")
    elif signals.probe == "missing":
        evidence.append(
            Evidence(
                "management address",
                f"{signals.probe_misses} miss(es), not yet enough",
                "unknown",
            )
        )
    else:
        evidence.append(Evidence("management address", "not probed", "unknown"))
    if signals.bmc_power is None:
        evidence.append(Evidence("BMC", signals.bmc_error or "not in the BMC map", "unknown"))
    else:
        power = signals.bmc_power
        bmc_health = signals.bmc_health or "unknown"
        seen = f"power {power}, health {bmc_health}"
        if power.lower() == "off":
            evidence.append(Evidence("BMC", seen, "dead"))
            host_dead.append("its BMC reports power off")
        elif bmc_health == "Critical":
            evidence.append(Evidence("BMC", seen, "dead"))
            host_dead.append("its BMC reports health Critical")
        else:
            # power On is what a kernel panic leaves: not a sign of life by itself
            evidence.append(Evidence("BMC", seen, "info"))
    consumer_alive = bool(signals.rpc_consumers)
    if signals.hypervisor_state is not None:
        evidence.append(
            Evidence(
                "hypervisor",
                signals.hypervisor_state,
                "dead" if signals.hypervisor_state == "down" else "alive",
            )
        )
    disabled = signals.service_status == "disabled"
    if signals.disabled_reason:
        evidence.append(Evidence("disabled reason", signals.disabled_reason, "info"))
    health = HostHealth(
        host=signals.host,
        cloud=signals.cloud,
        region=signals.region,
        state="healthy",
        failure="none",
        evidence=evidence,
        service_id=signals.service_id,
        disabled=disabled,
        disabled_reason=signals.disabled_reason,
    )
    if signals.service_state is None:
        health.state, health.failure = "unknown", "undetermined"
        health.reason = "no compute service listed for the host"
        return health
    if silent:
        if host_dead and (host_alive or consumer_alive):
            health.state, health.failure = "unknown", "undetermined"
            alive = [*host_alive, *(["its RPC consumer is connected"] if consumer_alive else [])]
            health.reason = (
                f"signals contradict each other: {', '.join(host_dead)} but {', '.join(alive)}"
            )
        elif host_dead:
            health.state, health.failure = "down", "host"
            health.reason = f"host failure: compute service silent and {', '.join(host_dead)}"
        elif host_alive or consumer_alive:
            health.state, health.failure = "degraded", "process"
            health.reason = "process failure: compute service silent but " + ", ".join(
                [*host_alive, *(["its RPC consumer is connected"] if consumer_alive else [])]
            )
        else:
            health.state, health.failure = "down", "undetermined"
            health.reason = (
                "compute service silent; no independent signal (management probe, BMC) tells "
                "a dead host from a dead process"
            )
        return health
    problems: list[str] = []
    if host_dead:
        problems.extend(host_dead)
    if disabled:
        problems.append(f"compute service disabled ({signals.disabled_reason or 'no reason'})")
    if signals.bmc_health == "Warning":
        problems.append("BMC health Warning")
    if signals.probe == "missing":
        problems.append("management probe missed")
    if problems:
        health.state = "degraded"
        health.reason = "; ".join(problems)
    else:
        health.reason = "compute service reporting"
    return health


@dataclass(frozen=True)
class FleetVerdict:
    """Whether automatic recovery may act at all now; `frozen` says why not."""

    frozen: str | None
    hosts_down: int
    hosts_total: int


def assess_fleet(
    hosts: list[HostHealth],
    control_plane_faults: list[str],
    max_down_percent: float,
) -> FleetVerdict:
    """Freeze every recovery on a control-plane fault or when more than
    `max_down_percent` of the (enabled) hosts look down at once: a network partition
    or a broken control plane looks like many dead hosts, and evacuating on it would do
    harm (Masakari and Pacemaker fence on quorum for the same reason)."""
    counted = [
        h for h in hosts if not h.disabled or (h.disabled_reason or "").startswith(REASON_PREFIX)
    ]
    down = [h for h in counted if h.state == "down" or h.failure in ("host", "undetermined")]
    total = len(counted)
    if control_plane_faults:
        return FleetVerdict(
            "control plane fault: " + "; ".join(control_plane_faults), len(down), total
        )
    if total and len(down) * 100.0 / total > max_down_percent:
        return FleetVerdict(
            f"{len(down)} of {total} hosts look down at once (> {max_down_percent:g} %): "
            "a partition or a control-plane fault is more likely than that many host failures",
            len(down),
            total,
        )
    return FleetVerdict(None, len(down), total)


# -- instances ---------------------------------------------------------------------------


@dataclass
class InstanceHealth:
    """An instance's verdict and the evidence."""

    id: str
    name: str
    cloud: str
    region: str
    project_id: str | None
    host: str | None
    state: HealthState
    evidence: list[str] = field(default_factory=list)
    problem: str = ""  # error | stuck | power-mismatch | host-down | ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RUNNING_STATUSES = ("ACTIVE",)


def assess_instance(
    record: dict[str, Any],
    now: datetime,
    stuck_after: timedelta,
    host_states: dict[tuple[str, str, str], HostHealth],
) -> InstanceHealth:
    """The verdict on one server record: ERROR, a task state stuck past `stuck_after`
    (since the record's `updated`), power state not matching status, or on a down host."""
    status = str(record.get("status") or "")
    health = InstanceHealth(
        id=str(record["id"]),
        name=str(record.get("name") or record["id"]),
        cloud=str(record.get("cloud") or ""),
        region=str(record.get("region") or ""),
        project_id=record.get("project_id"),
        host=record.get("host"),
        state="healthy",
    )
    host = host_states.get((health.cloud, health.region, str(record.get("host") or "")))
    if host is not None and host.state == "down":
        health.state, health.problem = "down", "host-down"
        health.evidence.append(f"host {host.host} is down: {host.reason}")
        return health
    if status == "ERROR":
        health.state, health.problem = "down", "error"
        health.evidence.append("status ERROR")
        return health
    task = record.get("task_state")
    if task:
        updated = _when(record.get("updated"))
        if updated is not None and now - updated > stuck_after:
            health.state, health.problem = "degraded", "stuck"
            health.evidence.append(
                f"task_state {task} since {updated:%Y-%m-%d %H:%M:%S} UTC "
                f"(> {int(stuck_after.total_seconds())} s)"
            )
            return health
    power = record.get("power_state")
    if status == "ACTIVE" and power not in (None, "RUNNING"):
        health.state, health.problem = "degraded", "power-mismatch"
        health.evidence.append(f"status ACTIVE but power state {power}")
    elif status == "SHUTOFF" and power == "RUNNING":
        health.state, health.problem = "degraded", "power-mismatch"
        health.evidence.append("status SHUTOFF but power state RUNNING")
    elif status and status not in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "SHELVED_OFFLOADED"):
        health.evidence.append(f"status {status}")
        if status not in ("BUILD", "REBOOT", "HARD_REBOOT", "MIGRATING", "RESIZE", "REBUILD"):
            health.state = "degraded"
    else:
        health.evidence.append(f"status {status or 'unknown'}, power {power or 'unknown'}")
    return health


def _when(value: Any) -> datetime | None:
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        return None


# -- workloads ---------------------------------------------------------------------------


@dataclass
class WorkloadHealth:
    """A workload: healthy while at least `min_healthy` of its members are healthy."""

    name: str
    selector: str
    members: int
    healthy: int
    min_healthy: int
    state: HealthState
    target: float | None = None
    unhealthy: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess_workload(
    name: str,
    selector: str,
    members: list[InstanceHealth],
    min_healthy: int | None,
    target: float | None = None,
) -> WorkloadHealth:
    """`min_healthy` None: every member must be healthy. No members: unknown."""
    wanted = len(members) if min_healthy is None else min_healthy
    healthy = [m for m in members if m.state == "healthy"]
    if not members:
        state: HealthState = "unknown"
    elif len(healthy) >= wanted:
        state = "healthy" if len(healthy) == len(members) else "degraded"
    else:
        state = "down"
    return WorkloadHealth(
        name=name,
        selector=selector,
        members=len(members),
        healthy=len(healthy),
        min_healthy=wanted,
        state=state,
        target=target,
        unhealthy=[
            f"{m.name} ({m.problem or m.state}"
            + (f" {m.host}" if m.problem == "host-down" and m.host else "")
            + ")"
            for m in members
            if m.state != "healthy"
        ],
        projects=sorted({m.project_id for m in members if m.project_id}),
    )
