"""The daemon: the store, the settings, the policies and one scheduler running the
periodic jobs (`stackfleet serve`, `stackfleet demo`).

The CLI only fills a `DaemonConfig` and starts a `Daemon` beside the API; everything
that runs in the background is a job declared here (docs/daemon.md lists them):

    collect    a pass over each cloud, then the metric rollups; wakes `policies`
    policies   the periodic policies that are due, after a pass landed (leader only)
    quotas     the projects whose quotas are older than the quota interval
    usage      real usage (diagnostics or Prometheus), when the settings name a source
    infra      the database servers and RabbitMQ clusters of the infrastructure file
    hardware   the BMCs of the BMC map (and Ironic's)
    alerts     alert dispatch to the receivers, when the settings name any (leader only)
    events     the resources named by notifications, once settled, and event policies
    campaigns  running campaigns nobody carries out (leader only; from patching/)
    drift      configuration drift of the hosts campaigns changed (leader only)

Several daemons may one day share the work (`stackfleet worker`, coordinated through
tooz): each runs the jobs of its partitions, and only the leader runs the jobs marked
`leader_only`. `DaemonConfig.jobs` and `DaemonConfig.leader` choose which jobs a daemon
runs; nothing else here assumes it is alone, except the in-process hand-over from a
pass to `policies` (a worker's leader would read the newest pass from the store).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from stackfleet.alerts.dispatch import DispatchLoop
from stackfleet.core.errors import StackFleetError
from stackfleet.engine.collect import PassResult
from stackfleet.engine.coordination import (
    Coordinator,
    Membership,
    default_member_id,
    group_for_store,
)
from stackfleet.engine.daemon_config import DaemonConfig
from stackfleet.engine.event_processor import EVENTS_TICK, EventProcessor, build_events
from stackfleet.engine.execute import Connections
from stackfleet.engine.hardware import HardwareSweepLoop
from stackfleet.engine.infra_monitor import InfraMonitorLoop, pack_policies
from stackfleet.engine.infra_packs import PACKS, InfraPacks
from stackfleet.engine.loop import CloudSpec, CollectionLoop, roll_up
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.quota_sweep import FIRST_PASS_WAIT, QuotaSweepLoop, check_interval
from stackfleet.engine.schedule import PolicySchedule
from stackfleet.engine.scheduler import Job, JobState, NextRun, Scheduler
from stackfleet.engine.settings import Settings, load_settings
from stackfleet.engine.usage import UsageLoop
from stackfleet.policy import load_files
from stackfleet.policy.schema import Policy
from stackfleet.sources.infra_config import InfraConfig, load_infra_config
from stackfleet.sources.notifications import NotificationListener
from stackfleet.store import Store

log = logging.getLogger(__name__)

# Jobs over the whole fleet that scale-out workers leave to their leader too: one quota,
# usage and database/RabbitMQ reader is enough (collection and BMC sweeps are shared).
LEADER_IN_WORKERS = frozenset({"quotas", "usage", "infra"})


JobFactory = Callable[[Store, Settings, "list[str] | None"], list[Job]]


class JobFailedError(StackFleetError):
    """A job's run did part of its work: the scheduler records it as failed."""


@dataclass
class Daemon:
    """The store, settings and policies of one daemon process, and its scheduler.

    Building one reads and checks every file (policies, settings, infrastructure and
    the packs' policy files), so a mistake stops the daemon before anything runs; `start()` starts
    the notification listeners and the jobs, `stop()` stops them."""

    store: Store
    config: DaemonConfig
    # given: used instead of reading config.settings_file / config.infra_config
    settings: Settings | None = None
    infra: InfraConfig | None = None
    scheduler: Scheduler = field(default_factory=Scheduler)
    policies: list[Policy] = field(default_factory=list)
    events: EventProcessor | None = None
    listeners: list[NotificationListener] = field(default_factory=list)
    # scale-out: membership, partitions and leadership (None: a lone process)
    coordinator: Coordinator | None = None
    _pass_landed: threading.Event = field(default_factory=threading.Event)
    # the newest pass the leader's policy run has seen (scale-out)
    _evaluated_pass: int = 0
    _collection: CollectionLoop | None = None
    # jobs of layers beside the engine (patching's campaigns), handed in by the CLI so
    # that the engine does not import them: each gets the store, the settings and the
    # clouds.yaml files, and returns its jobs
    job_factories: Sequence[JobFactory] = ()

    def __post_init__(self) -> None:
        config = self.config
        if config.coordination_url:
            member = config.member_id or default_member_id()
            self.coordinator = Coordinator(
                config.coordination_url,
                member_id=member,
                membership_timeout=config.membership_timeout,
                group=group_for_store(self.store.engine.url.render_as_string(hide_password=True)),
                on_change=self._membership_changed,
            )
            # passes say which worker collected them
            self.store.collector = member
        # invalid policies stop the daemon before it starts, as `policy validate` would
        self.policies = load_files(list(config.policy_files))
        if self.settings is None:
            self.settings = load_settings(config.settings_file)
        # every OpenStack connection of this process (passes, actions, token checks)
        self.settings.apply_api_timeout()
        if self.infra is None:
            self.infra = load_infra_config(config.infra_config)
        check_interval(config.quota_interval)
        for job in self._build_jobs(self.settings, self.infra):
            if config.jobs is not None and job.name not in config.jobs:
                continue
            if self.coordinator is not None and (job.leader_only or job.name in LEADER_IN_WORKERS):
                # every worker has the job; only the current leader's turn does work
                job = replace(job, run=self._on_leader(job.run), leader_only=True)
            elif job.leader_only and not config.leader:
                continue
            self.scheduler.add(job)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Join the other workers (scale-out), start listening to notifications and
        running the jobs."""
        if self.coordinator is not None:
            self.coordinator.start()
        started: list[NotificationListener] = []
        try:
            for listener in self.listeners:
                listener.start()
                started.append(listener)
        except BaseException:
            for listener in started:
                listener.stop()
            raise
        self.scheduler.start()
        log.info("daemon started: jobs %s", ", ".join(self.scheduler.names))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the listeners, then the jobs (a job in a run finishes it first)."""
        for listener in self.listeners:
            listener.stop()
        self.scheduler.stop(timeout)
        if self.coordinator is not None:
            # leave the group at once: the others take over now, not after a timeout
            self.coordinator.stop()

    def jobs(self) -> list[JobState]:
        return self.scheduler.jobs()

    def cluster(self) -> dict[str, Any]:
        """This process's view of the workers: members, leadership, its partitions."""
        if self.coordinator is None:
            return {
                "distributed": False,
                "member_id": None,
                "members": [],
                "leader": True,
                "partitions": [],
            }
        view = self.coordinator.membership()
        keys = [
            f"collect:{cloud.name}/{region}"
            for cloud, region in (self._collection.partitions() if self._collection else [])
        ]
        return {
            "distributed": True,
            "member_id": view.member_id,
            "members": list(view.members),
            "leader": view.leader,
            "partitions": sorted(self.coordinator.share(keys)),
        }

    # ------------------------------------------------------------------ scale-out
    def _on_leader(self, run: Callable[[], object]) -> Callable[[], object]:
        """`run` on the leader only; a follower's turn does nothing."""
        coordinator = self.coordinator

        def leader_only() -> object:
            if coordinator is not None and not coordinator.is_leader:
                return None
            return run()

        return leader_only

    def _membership_changed(self, view: Membership) -> None:
        """Workers came or went, or leadership moved: collect gained partitions and
        sweep gained BMCs now, and let a new leader catch up at once."""
        log.info(
            "workers: %s; this one (%s) %s",
            ", ".join(view.members),
            view.member_id,
            "leads" if view.leader else "follows",
        )
        wake = ["collect", "hardware"]
        if view.leader:
            wake += ["policies", "rollups", "alerts", "quotas", "usage", "infra"]
        for name in wake:
            if name in self.scheduler:
                self.scheduler.run_now(name)

    # ------------------------------------------------------------------ jobs
    def _build_jobs(self, settings: Settings, infra: InfraConfig) -> list[Job]:
        """Every job this daemon could run, in the order GET /v1/jobs lists them."""
        schedule = PolicySchedule(
            PolicyRunner(self.store, settings, Connections(self.config.config_files)),
            self.policies,
            self.config.execute_actions,
        )
        # the database, RabbitMQ and hardware packs run after each sweep
        alerting = InfraPacks(
            self.store,
            settings.alerts.receivers,
            settings.notify,
            settings.alerts.inhibit_rules,
            # the packs as the monitoring file's policy files tune them
            {pack: pack_policies(pack, infra.policies) for pack in PACKS},
            # workers record; only the leader's alerts job tells the receivers
            dispatch_after=self.coordinator is None,
        )
        return [
            *self._collect_jobs(),
            *self._policies_jobs(schedule),
            self._quotas_job(),
            *self._usage_jobs(settings),
            *self._infra_jobs(infra, alerting),
            *self._hardware_jobs(alerting),
            *self._alerts_jobs(settings),
            self._events_job(settings, schedule),
            *self._audit_jobs(settings),
            *(
                job
                for factory in self.job_factories
                for job in factory(self.store, settings, self.config.config_files)
            ),
            *self._health_jobs(settings),
        ]

    def _settings(self) -> Settings:
        assert self.settings is not None  # read in __post_init__
        return self.settings

    def _clouds(self) -> list[CloudSpec]:
        config = self.config
        return [CloudSpec(c, config.system_cloud, config.config_files) for c in config.clouds]

    def _collect_jobs(self) -> list[Job]:
        config = self.config
        coordinator = self.coordinator
        collection = CollectionLoop(
            self.store,
            self._clouds(),
            after_pass=self._after_pass,
            agent_interval=config.agent_interval,
            share=coordinator.share if coordinator is not None else None,
            holding=coordinator.holding if coordinator is not None else None,
            shrink=self._settings().collect.shrink,
            interval=config.interval,
        )
        self._collection = collection

        def collect() -> None:
            if coordinator is None:
                collection.run_once()
            else:
                collection.run_due()
            if self._pass_landed.is_set() and "policies" in self.scheduler:
                self.scheduler.run_now("policies")
            if collection.errors:
                raise JobFailedError("; ".join(collection.errors))

        if coordinator is None:
            return [
                Job(
                    "collect",
                    collect,
                    config.interval,
                    jitter=config.jitter,
                    initial_delay=config.first_pass_delay,
                    timeout=config.interval * 2,
                    description="A collection pass over each cloud, then the metric rollups.",
                )
            ]
        return [
            Job(
                "collect",
                collect,
                config.partition_tick,
                # workers started together see each other before their first passes,
                # rather than each collecting every region once
                initial_delay=max(config.first_pass_delay, config.membership_timeout),
                timeout=config.interval * 2,
                description="A pass over each (cloud, region) partition this worker owns when "
                "due: every interval, and at once when gained from another worker.",
            ),
            Job(
                "rollups",
                lambda: roll_up(self.store),
                config.interval,
                initial_delay=config.interval,
                timeout=config.interval,
                leader_only=True,
                description="Metric rollups of every source (the leader only: one writer).",
            ),
        ]

    def _audit_jobs(self, settings: Settings) -> list[Job]:
        """A signed checkpoint of the audit log's head, outside the database, at
        intervals: what a database writer cannot take back (store/audit.py)."""
        from pathlib import Path

        from stackfleet.store.audit import AuditLog, checkpoints_path

        path = Path(settings.audit.checkpoints) if settings.audit.checkpoints else None
        path = path or checkpoints_path()
        if path is None:
            return []
        interval = settings.audit.checkpoint_interval.total_seconds()
        return [
            Job(
                "audit",
                lambda: AuditLog(self.store).checkpoint(path),
                interval,
                timeout=60.0,
                leader_only=True,
                description=f"A signed checkpoint of the audit log's head, appended to {path}.",
            )
        ]

    def _health_jobs(self, settings: Settings) -> list[Job]:
        """Health assessment every `health.interval` and, when `health.recovery` is on,
        the recovery reconciler after each assessment (leader only: one driver)."""
        health = settings.health
        if not health.enabled or not self.config.clouds:
            return []
        from stackfleet.engine.health import HealthMonitor
        from stackfleet.engine.recovery import RecoveryReconciler

        connections = Connections(self.config.config_files)
        monitor = HealthMonitor(
            self.store,
            health,
            connections,
            bmc_map=self.config.bmc_map,
            clouds=list(self.config.clouds),
        )
        reconciler = (
            RecoveryReconciler(self.store, settings, connections, monitor)
            if health.recovery
            else None
        )

        def run() -> None:
            assessment = monitor.run_once()
            if reconciler is not None:
                reconciler.run_once(assessment)

        interval = health.interval.total_seconds()
        return [
            Job(
                "health",
                run,
                interval,
                initial_delay=min(interval, self.config.first_pass_delay or interval),
                timeout=max(60.0, settings.verify_timeout.total_seconds() * 2),
                leader_only=True,
                description="Host, service, instance and workload health; automatic "
                "recovery when health.recovery is on (docs/health.md).",
            )
        ]

    def _after_pass(self, result: PassResult) -> None:
        # a failed pass changes nothing worth evaluating
        if result.status != "failed":
            self._pass_landed.set()

    def _policies_jobs(self, schedule: PolicySchedule) -> list[Job]:
        if not schedule.policies:
            return []

        coordinator = self.coordinator

        def policies() -> None:
            if coordinator is not None:
                # workers: the leader evaluates once any worker's pass has landed
                newest = self.store.newest_pass_id()
                if newest > self._evaluated_pass:
                    self._evaluated_pass = newest
                    schedule.run_due()
                return
            if self._pass_landed.is_set():
                self._pass_landed.clear()
                schedule.run_due()

        interval = self.config.interval
        return [
            Job(
                "policies",
                policies,
                interval,
                # woken by `collect` after each pass; the interval is a fallback
                initial_delay=interval,
                timeout=interval,
                leader_only=True,
                description="The periodic policies that are due, after each pass.",
            )
        ]

    def _quotas_job(self) -> Job:
        config = self.config
        quotas = QuotaSweepLoop(self.store, self._clouds(), config.quota_interval)

        def sweep_quotas() -> NextRun | None:
            results = quotas.run_once()
            if quotas.errors:
                raise JobFailedError("; ".join(quotas.errors))
            if not any(r.projects or r.skipped for r in results):
                # no pass has seen a project with resources yet: look again soon
                return NextRun(min(config.quota_check_every, FIRST_PASS_WAIT))
            return None

        return Job(
            "quotas",
            sweep_quotas,
            config.quota_check_every,
            jitter=config.jitter,
            timeout=config.quota_check_every * 2,
            description="Quotas of the projects not read within the quota interval.",
        )

    def _usage_jobs(self, settings: Settings) -> list[Job]:
        if settings.usage.source == "none":
            return []
        config = self.config
        usage = UsageLoop(
            self.store,
            settings.usage,
            list(config.clouds),
            config.system_cloud,
            config.config_files,
        )
        interval = settings.usage.interval.total_seconds()
        return [
            Job(
                "usage",
                usage.run_once,
                interval,
                jitter=config.jitter,
                timeout=interval * 2,
                description=f"Real usage from {settings.usage.source}.",
            )
        ]

    def _infra_jobs(self, infra: InfraConfig, alerting: InfraPacks) -> list[Job]:
        if not (infra.databases or infra.brokers):
            return []
        monitor = InfraMonitorLoop(
            self.store,
            infra.databases,
            infra.brokers,
            alerting.pack("database"),
            alerting.pack("rabbitmq"),
            after_sweep=alerting.after_infra_sweep,
        )
        interval = self.config.infra_interval
        return [
            Job(
                "infra",
                monitor.run_once,
                interval,
                jitter=self.config.jitter,
                timeout=interval * 2,
                description="Database servers and RabbitMQ clusters.",
            )
        ]

    def _hardware_jobs(self, alerting: InfraPacks) -> list[Job]:
        config = self.config
        if not config.bmc_map:
            return []
        hardware = HardwareSweepLoop(
            self.store,
            config.bmc_map,
            include_ironic=config.include_ironic,
            after_sweep=alerting.after_hardware_sweep,
            # workers sweep the BMCs the hash ring gives them
            share=self.coordinator.share if self.coordinator is not None else None,
        )
        return [
            Job(
                "hardware",
                hardware.run_once,
                config.hardware_interval,
                jitter=config.jitter,
                timeout=config.hardware_interval * 2,
                description="The BMCs of the BMC map (and Ironic's nodes).",
            )
        ]

    def _alerts_jobs(self, settings: Settings) -> list[Job]:
        alerts = settings.alerts
        if not alerts.receivers:
            return []
        dispatcher = DispatchLoop(
            self.store, alerts.receivers, settings.notify, alerts.inhibit_rules
        )
        tick = self.config.dispatch_tick
        return [
            Job(
                "alerts",
                dispatcher.run_once,
                tick,
                initial_delay=tick,
                timeout=60.0,
                leader_only=True,
                description="Alert notifications that are due, to the receivers.",
            )
        ]

    def _events_job(self, settings: Settings, schedule: PolicySchedule) -> Job:
        config = self.config
        # POST /v1/events feeds the processor too, so it exists without listeners
        self.events, self.listeners = build_events(
            self.store,
            settings,
            self.policies,
            list(config.clouds),
            config.system_cloud,
            config.execute_actions,
            config.notifications,
            # a periodic and an event run never dispatch the same alerts at once
            run_lock=schedule.run_lock,
            config_files=config.config_files,
        )
        return Job(
            "events",
            self.events.run_due,
            EVENTS_TICK,
            timeout=60.0,
            description="Resources named by notifications, once settled; event policies.",
        )
