"""The `health:` section of the settings file: how hosts are probed, when a recovery
may act, and what it may touch (docs/health.md has the reference)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stackfleet.core.times import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProbeSettings(_Strict):
    """The management-address probe: a TCP connect to `port` of each compute host."""

    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="TCP port to connect to (e.g. 22); none: no probe.",
    )
    addresses: dict[str, str] = Field(
        default_factory=dict,
        description="host -> address (host:port allowed); hosts not named use the "
        "hypervisor's host_ip.",
    )
    misses: int = Field(default=3, ge=1, description="Misses in a row before unreachable.")
    timeout: Duration = Field(default=timedelta(seconds=1), description="One connect attempt.")
    retry_interval: Duration = Field(
        default=timedelta(seconds=1),
        description="A missed probe is tried again this soon, within the same assessment, "
        "until `misses` in a row or an answer (0: only at the next assessment).",
    )


class RabbitSettings(_Strict):
    """The cloud's RabbitMQ management API: the `compute.<host>` queue's consumer."""

    url: str | None = Field(
        default=None, description="http://user:password@host:15672 (none: not read)."
    )
    vhost: str = "/"
    password_env: str | None = Field(
        default=None, description="Environment variable holding the password."
    )


class FenceSettings(_Strict):
    """How a failed host is powered off before anything is evacuated from it."""

    method: Literal["redfish", "ironic", "command"] = "redfish"
    command: list[str] = Field(
        default_factory=list,
        description="method command: argv run to power the host off ({host} replaced).",
    )
    confirm_command: list[str] = Field(
        default_factory=list,
        description="method command: argv whose exit status 0 confirms the host is off "
        "(without it, the BMC map's reading confirms).",
    )


class Selectors(_Strict):
    """Which instances a recovery may act on (opt-in) or must never touch."""

    all: bool = Field(default=False, description="Every instance (still minus `never`).")
    projects: list[str] = Field(default_factory=list, description="Project ids or names.")
    server_groups: list[str] = Field(default_factory=list, description="Server group ids or names.")
    aggregates: list[str] = Field(default_factory=list, description="Host aggregate names.")
    tags: list[str] = Field(default_factory=list, description="Instance tags.")


class NeverSelectors(_Strict):
    """Instances never evacuated (load-balancer amphorae and other service VMs)."""

    projects: list[str] = Field(default_factory=lambda: ["service"])
    tags: list[str] = Field(default_factory=lambda: ["amphora"])


class InstanceRecovery(_Strict):
    """Instance ERROR / stuck: reset-state, then reboot, then rebuild."""

    enabled: bool = Field(
        default=False,
        description="Recover instances in ERROR or stuck (with health.recovery; the same "
        "opt_in / never selectors as hosts).",
    )
    stuck_after: Duration = Field(default=timedelta(minutes=30))
    steps: list[Literal["reset-state", "reboot", "rebuild"]] = Field(
        default_factory=lambda: ["reset-state", "reboot", "rebuild"]  # type: ignore[arg-type]
    )
    max_per_instance: int = Field(
        default=3, ge=1, description="Recovery steps per instance in 24 hours."
    )
    max_per_hour: int = Field(
        default=10, ge=0, description="Instance recovery steps per hour, every instance together."
    )


class Workload(_Strict):
    """A group of instances with a health rule (k of n) and an availability target."""

    name: str = Field(min_length=1, max_length=128)
    server_group: str | None = None
    tag: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    min_healthy: int | None = Field(default=None, ge=1)
    target: float | None = Field(default=None, ge=0, le=100, description="Availability %.")

    @model_validator(mode="after")
    def _one_selector(self) -> Workload:
        chosen = [s for s in (self.server_group, self.tag, self.metadata or None) if s]
        if len(chosen) != 1:
            raise ValueError(
                f"workload {self.name!r}: give exactly one of server_group, tag or metadata"
            )
        return self

    @property
    def selector(self) -> str:
        if self.server_group:
            return f"server_group={self.server_group}"
        if self.tag:
            return f"tag={self.tag}"
        return ",".join(f"metadata.{k}={v}" for k, v in sorted(self.metadata.items()))


class HealthSettings(_Strict):
    """Health assessment and automatic recovery."""

    enabled: bool = Field(
        default=False, description="The daemon runs the `health` job (assessment every interval)."
    )
    interval: Duration = Field(default=timedelta(seconds=2), description="Between assessments.")
    report_interval: Duration = Field(
        default=timedelta(seconds=10),
        description="The cloud's Nova report_interval (heartbeat period).",
    )
    heartbeat_missed_after: Duration | None = Field(
        default=None,
        description="A heartbeat older than this is missed (default report_interval + 2 s, "
        "at most 1.5 x report_interval).",
    )
    max_down_percent: float = Field(
        default=50.0,
        ge=0,
        le=100,
        description="More hosts than this % looking down at once freezes every recovery.",
    )
    service_target: float = Field(
        default=99.9,
        ge=0,
        le=100,
        description="Availability target, %, of each OpenStack service (nova-compute, "
        "neutron agents, cinder-volume...) in `stackfleet sla report --services`.",
    )
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    rabbitmq: RabbitSettings = Field(default_factory=RabbitSettings)
    bmc_map: str | None = Field(
        default=None, description="BMC map file (default: the daemon's --bmc-map)."
    )
    # recovery
    recovery: bool = Field(
        default=False, description="Recover failed hosts automatically (the daemon's job)."
    )
    execute: bool = Field(default=False, description="false: recoveries are planned only.")
    max_hosts: int = Field(default=1, ge=1, description="Host recoveries under way at once.")
    fence: FenceSettings = Field(default_factory=FenceSettings)
    opt_in: Selectors = Field(default_factory=Selectors)
    never: NeverSelectors = Field(default_factory=NeverSelectors)
    restart_hook: list[str] = Field(
        default_factory=list,
        description="argv run to restart a dead compute service ({host}, {binary} replaced).",
    )
    restart_wait: Duration = Field(
        default=timedelta(seconds=60),
        description="How long a restarted service has to report again.",
    )
    instances: InstanceRecovery = Field(default_factory=InstanceRecovery)
    workloads: list[Workload] = Field(default_factory=list)
    require_approval: bool = Field(
        default=False, description="Each host recovery waits for `stackfleet approve`."
    )
    takeover_after: Duration = Field(
        default=timedelta(seconds=30),
        description="A recovery whose driver has not written for this long is taken over "
        "(after a crash) and resumed from OpenStack's state.",
    )

    @field_validator("workloads")
    @classmethod
    def _unique_workloads(cls, value: list[Workload]) -> list[Workload]:
        names = [w.name for w in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"workload names must be unique: {', '.join(twice)}")
        return value

    @property
    def heartbeat_allowed(self) -> float:
        if self.heartbeat_missed_after is not None:
            return self.heartbeat_missed_after.total_seconds()
        # one heartbeat missed, with a little slack for clock skew and a slow report:
        # 12 s at Nova's default report_interval of 10 s
        period = self.report_interval.total_seconds()
        return min(period * 1.5, period + 2.0)
