"""Gathering the health signals and judging them (stackfleet.model.health): the compute
services read live from Nova, the management-address probes, the `compute.<host>` RPC
consumers on the cloud's RabbitMQ, the BMCs of the BMC map, and the inventory's
hypervisors and servers. The daemon's `health` job runs `HealthMonitor.run_once` every
couple of seconds; the verdicts go to the store (health_states, health_changes).

Probe misses are counted across runs in memory: a host is unreachable only after
`probe.misses` misses in a row, so one lost packet never counts as a dead host."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stackfleet.core.times import parse_time
from stackfleet.engine.execute import Connections
from stackfleet.engine.health_settings import HealthSettings, Workload
from stackfleet.model.health import (
    FleetVerdict,
    HostHealth,
    HostSignals,
    InstanceHealth,
    WorkloadHealth,
    assess_fleet,
    assess_host,
    assess_instance,
    assess_workload,
)
from stackfleet.sources.rabbitmq import BrokerProbeError, BrokerTarget, rpc_consumers
from stackfleet.sources.reachability import probe_all, split_address
from stackfleet.sources.redfish.bmc_map import BmcTarget, load_bmc_map
from stackfleet.sources.redfish.client import read_power
from stackfleet.store import health_states
from stackfleet.store.db import Store
from stackfleet.store.evaluation import load_records
from stackfleet.store.health_states import Verdict

log = logging.getLogger(__name__)

Segment = tuple[str, str]


@dataclass
class Assessment:
    """One run's verdicts."""

    at: datetime
    hosts: list[HostHealth] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    instances: list[InstanceHealth] = field(default_factory=list)
    workloads: list[WorkloadHealth] = field(default_factory=list)
    fleet: FleetVerdict = field(default_factory=lambda: FleetVerdict(None, 0, 0))
    faults: list[str] = field(default_factory=list)

    def host(self, cloud: str, region: str, host: str) -> HostHealth | None:
        for h in self.hosts:
            if (h.cloud, h.region, h.host) == (cloud, region, host):
                return h
        return None


def list_services(conn: Any) -> list[dict[str, Any]]:
    """Nova's compute services, live (GET /os-services at 2.53: ids are UUIDs)."""
    response = conn.compute.get("/os-services", microversion="2.53")
    if response.status_code >= 400:
        raise RuntimeError(f"GET /os-services answered HTTP {response.status_code}")
    services: list[dict[str, Any]] = response.json().get("services") or []
    return services


class HealthMonitor:
    """Assesses every compute host, service, instance and workload of the store's clouds."""

    def __init__(
        self,
        store: Store,
        settings: HealthSettings,
        connections: Connections,
        bmc_map: str | None = None,
        clouds: list[str] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.connections = connections
        self.bmc_map_path = settings.bmc_map or bmc_map
        self.clouds = clouds
        self._misses: dict[tuple[str, str, str], int] = {}
        self._bmcs: list[BmcTarget] | None = None
        self.last: Assessment | None = None

    # -- inputs ------------------------------------------------------------------------
    def _bmc_targets(self) -> list[BmcTarget]:
        if self._bmcs is None:
            self._bmcs = list(load_bmc_map(self.bmc_map_path).targets) if self.bmc_map_path else []
        return self._bmcs

    def bmc_for(self, host: str, hypervisor_hostname: str | None) -> BmcTarget | None:
        names = {host, host.split(".", 1)[0]}
        if hypervisor_hostname:
            names |= {hypervisor_hostname, hypervisor_hostname.split(".", 1)[0]}
        for target in self._bmc_targets():
            if target.name in names:
                return target
        return None

    def _broker(self) -> BrokerTarget | None:
        rabbit = self.settings.rabbitmq
        if not rabbit.url:
            return None
        target = BrokerTarget.from_url(rabbit.url, timeout=2.0)
        if rabbit.password_env and os.environ.get(rabbit.password_env):
            target = BrokerTarget(
                url=target.url,
                user=target.user,
                password=os.environ[rabbit.password_env],
                timeout=2.0,
            )
        return target

    # -- one run -----------------------------------------------------------------------
    def assess(self, now: datetime | None = None) -> Assessment:
        """Read every signal once and judge it (nothing is written)."""
        now = now or datetime.now(UTC)
        assessment = Assessment(at=now)
        hypervisors = [
            h
            for h in load_records(self.store, "hypervisor")
            if self.clouds is None or h["cloud"] in self.clouds
        ]
        segments = sorted({(h["cloud"], h["region"]) for h in hypervisors})
        services: dict[Segment, list[dict[str, Any]]] = {}
        for cloud, region in segments:
            try:
                services[(cloud, region)] = list_services(
                    self.connections.connection(cloud, region)
                )
            except Exception as exc:  # noqa: BLE001 - an unreachable API is a fault, not a crash
                assessment.faults.append(f"compute API of {cloud}/{region} does not answer: {exc}")
        consumers: dict[str, int] | None = None
        broker = self._broker()
        if broker is not None:
            try:
                consumers = rpc_consumers(broker, self.settings.rabbitmq.vhost)
            except BrokerProbeError as exc:
                assessment.faults.append(f"RabbitMQ: {exc}")
        by_host: dict[tuple[str, str, str], dict[str, Any]] = {}
        for h in hypervisors:
            if h.get("host"):
                by_host[(h["cloud"], h["region"], str(h["host"]))] = h
        signals: list[HostSignals] = []
        for (cloud, region), listed in services.items():
            for service in listed:
                if service.get("binary") != "nova-compute":
                    continue
                signals.append(self._signals(cloud, region, service, by_host, consumers, now))
        self._probe(signals)
        self._read_bmcs(signals, by_host)
        assessment.hosts = [assess_host(s) for s in signals]
        assessment.services = [
            self._service_view(cloud, region, s, now)
            for (cloud, region), listed in services.items()
            for s in listed
        ]
        assessment.fleet = assess_fleet(
            assessment.hosts, assessment.faults, self.settings.max_down_percent
        )
        self._instances(assessment, now)
        return assessment

    def _signals(
        self,
        cloud: str,
        region: str,
        service: dict[str, Any],
        by_host: dict[tuple[str, str, str], dict[str, Any]],
        consumers: dict[str, int] | None,
        now: datetime,
    ) -> HostSignals:
        host = str(service.get("host"))
        updated = parse_time(service.get("updated_at"))
        hypervisor = by_host.get((cloud, region, host))
        return HostSignals(
            host=host,
            cloud=cloud,
            region=region,
            service_id=str(service.get("id")),
            service_state=service.get("state"),
            service_status=service.get("status"),
            disabled_reason=service.get("disabled_reason"),
            forced_down=bool(service.get("forced_down")),
            heartbeat_age=(now - updated).total_seconds() if updated else None,
            heartbeat_allowed=self.settings.heartbeat_allowed,
            hypervisor_state=hypervisor.get("state") if hypervisor else None,
            rpc_consumers=None if consumers is None else consumers.get(host, 0),
        )

    def _probe(self, signals: list[HostSignals]) -> None:
        probe = self.settings.probe
        if probe.port is None and not probe.addresses:
            return
        addresses: dict[str, tuple[str, int]] = {}
        for s in signals:
            raw = probe.addresses.get(s.host)
            if raw is None:
                continue
            addresses[f"{s.cloud}/{s.region}/{s.host}"] = split_address(raw, probe.port or 22)
        by_key = {f"{s.cloud}/{s.region}/{s.host}": s for s in signals}
        pending = addresses
        retry = probe.retry_interval.total_seconds()
        while pending:
            results = probe_all(pending, probe.timeout.total_seconds())
            missed = [k for k in results if self._count(by_key[k], results[k], pending)]
            # a missed probe is tried again soon rather than one assessment later: three
            # misses a second apart say "unreachable" in 2 s, not in 3 health intervals
            pending = {k: pending[k] for k in missed if by_key[k].probe == "missing" and retry > 0}
            if pending:
                time.sleep(retry)

    def _count(self, s: HostSignals, problem: str | None, addresses: dict[str, Any]) -> bool:
        """Records one probe of the host on its signals; True when it missed."""
        miss_key = (s.cloud, s.region, s.host)
        if not problem:
            self._misses[miss_key] = 0
            s.probe, s.probe_misses = "reachable", 0
            s.probe_detail = "{}:{} answers".format(*addresses[f"{s.cloud}/{s.region}/{s.host}"])
            return False
        misses = self._misses.get(miss_key, 0) + 1
        self._misses[miss_key] = misses
        s.probe_misses = misses
        s.probe_detail = f"{problem} ({misses} miss(es) in a row)"
        s.probe = "unreachable" if misses >= self.settings.probe.misses else "missing"
        return True

    def _read_bmcs(
        self, signals: list[HostSignals], by_host: dict[tuple[str, str, str], dict[str, Any]]
    ) -> None:
        """BMC power and health of every host the map knows (in parallel)."""
        wanted: list[tuple[HostSignals, BmcTarget]] = []
        for s in signals:
            hypervisor = by_host.get((s.cloud, s.region, s.host)) or {}
            target = self.bmc_for(s.host, hypervisor.get("hypervisor_hostname"))
            if target is None:
                s.bmc_error = "not in the BMC map"
                continue
            wanted.append((s, target))
        if not wanted:
            return
        with ThreadPoolExecutor(max_workers=min(16, len(wanted))) as pool:
            readings = list(pool.map(lambda pair: read_power(pair[1], 3.0), wanted))
        for (s, _target), reading in zip(wanted, readings, strict=True):
            if reading.power_state is None:
                s.bmc_error = f"BMC unreadable ({reading.status}): {reading.error}"
            else:
                s.bmc_power, s.bmc_health = reading.power_state, reading.health

    @staticmethod
    def _service_view(
        cloud: str, region: str, service: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        updated = parse_time(service.get("updated_at"))
        down = service.get("state") != "up" or bool(service.get("forced_down"))
        disabled = service.get("status") == "disabled"
        return {
            "cloud": cloud,
            "region": region,
            "id": str(service.get("id")),
            "binary": service.get("binary"),
            "host": service.get("host"),
            "state": "down" if down else ("degraded" if disabled else "healthy"),
            "up": not down,
            "disabled": disabled,
            "disabled_reason": service.get("disabled_reason"),
            "forced_down": bool(service.get("forced_down")),
            "heartbeat_age": round((now - updated).total_seconds(), 1) if updated else None,
        }

    def _instances(self, assessment: Assessment, now: datetime) -> None:
        hosts = {(h.cloud, h.region, h.host): h for h in assessment.hosts}
        servers = [
            s
            for s in load_records(self.store, "server")
            if self.clouds is None or s["cloud"] in self.clouds
        ]
        stuck = self.settings.instances.stuck_after
        assessment.instances = [assess_instance(s, now, stuck, hosts) for s in servers]
        if self.settings.workloads:
            assessment.workloads = workload_health(
                self.store, self.settings.workloads, servers, assessment.instances
            )

    # -- saving ------------------------------------------------------------------------
    def run_once(self) -> Assessment:
        """Assess and save; the assessment is kept in `last` for the recovery job."""
        assessment = self.assess()
        save_assessment(self.store, assessment)
        self.last = assessment
        return assessment


def workload_health(
    store: Store,
    workloads: list[Workload],
    servers: list[dict[str, Any]],
    instances: list[InstanceHealth],
) -> list[WorkloadHealth]:
    """Each workload's members (by server group, tag or metadata) and verdict."""
    health = {(i.cloud, i.region, i.id): i for i in instances}
    groups = load_records(store, "server_group")
    out = []
    for workload in workloads:
        members = workload_members(workload, servers, groups)
        judged = [health[(s["cloud"], s["region"], s["id"])] for s in members]
        out.append(
            assess_workload(
                workload.name, workload.selector, judged, workload.min_healthy, workload.target
            )
        )
    return out


def workload_members(
    workload: Workload, servers: list[dict[str, Any]], groups: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The server records of `workload` (by server group, tag or metadata)."""
    if workload.server_group:
        ids: set[tuple[str, str, str]] = set()
        for g in groups:
            if workload.server_group in (g["id"], g.get("name")):
                ids |= {(g["cloud"], g["region"], str(m)) for m in g.get("members") or []}
        return [s for s in servers if (s["cloud"], s["region"], s["id"]) in ids]
    if workload.tag:
        return [s for s in servers if workload.tag in (s.get("tags") or [])]
    return [
        s
        for s in servers
        if all((s.get("metadata") or {}).get(k) == v for k, v in workload.metadata.items())
    ]


def save_assessment(store: Store, assessment: Assessment) -> None:
    """Store the verdicts (and a change record for each state that changed)."""
    now = assessment.at
    health_states.save(
        store,
        "host",
        [
            Verdict(
                h.cloud,
                h.region,
                "host",
                h.host,
                h.host,
                h.state,
                h.failure,
                h.reason,
                {"evidence": [e.text() for e in h.evidence], "disabled": h.disabled},
            )
            for h in assessment.hosts
        ],
        now,
    )
    health_states.save(
        store,
        "service",
        [
            Verdict(
                s["cloud"],
                s["region"],
                "service",
                s["id"],
                f"{s['binary']}@{s['host']}",
                s["state"],
                None,
                s.get("disabled_reason") or ("up" if s["up"] else "down"),
                s,
            )
            for s in assessment.services
        ],
        now,
    )
    health_states.save(
        store,
        "instance",
        [
            Verdict(
                i.cloud,
                i.region,
                "instance",
                i.id,
                i.name,
                i.state,
                i.problem or None,
                "; ".join(i.evidence),
                {"host": i.host, "project_id": i.project_id},
            )
            for i in assessment.instances
        ],
        now,
    )
    health_states.save(
        store,
        "workload",
        [
            Verdict(
                "",
                "",
                "workload",
                w.name,
                w.name,
                w.state,
                None,
                (
                    f"{w.healthy} of {w.members} healthy (at least {w.min_healthy})"
                    + (f"; not healthy: {', '.join(w.unhealthy)}" if w.unhealthy else "")
                    if w.members
                    else f"no instance matches {w.selector}: state unknown"
                ),
                w.to_dict(),
            )
            for w in assessment.workloads
        ],
        now,
    )
    health_states.save(
        store,
        "fleet",
        [
            Verdict(
                "",
                "",
                "fleet",
                "recovery",
                "recovery",
                "down" if assessment.fleet.frozen else "healthy",
                "frozen" if assessment.fleet.frozen else None,
                assessment.fleet.frozen or "recovery may act",
                {
                    "hosts_down": assessment.fleet.hosts_down,
                    "hosts_total": assessment.fleet.hosts_total,
                    "faults": assessment.faults,
                },
            )
        ],
        now,
    )
