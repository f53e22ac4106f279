"""The infrastructure and hardware packs, run after each sweep.

Database servers, RabbitMQ clusters, nodes and queues, and hosts' BMCs with their
sensors are resources like any other: their sweeps record them (`database_server`,
`rabbitmq_cluster`, `rabbitmq_node`, `queue`, `bmc`, `temperature_sensor`, `fan`), and
the built-in database, RabbitMQ and hardware policy packs (as the monitoring file's
policy files tune them) run here over those records with the one policy engine, as any
policy runs after a collection pass. Their findings (``hardware/inlet-temperature-high``,
``database/connections-high``, ``*/unreachable``, ...) and alerts (source and `pack`
label name the pack) are the engine's.

A resource the newest sweep could not read (`reachable` false) is judged only by the
policies that ask about `reachable` (``hardware/bmc-unreachable``,
``database/unreachable``, ...): its other findings stay as they were, since missing
data is no evidence that a problem went away (engine/evaluate.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stackfleet.alerts.dispatch import Dispatch, dispatch
from stackfleet.alerts.lifecycle import AlertChanges
from stackfleet.alerts.routing import InhibitRule, Receiver
from stackfleet.core.delivery import NotifySettings
from stackfleet.engine.infra_monitor import pack_policies
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy.schema import Policy
from stackfleet.store.db import Store

HARDWARE, DATABASE, RABBITMQ = "hardware", "database", "rabbitmq"
PACKS = (HARDWARE, DATABASE, RABBITMQ)


@dataclass
class PackRun:
    """What running one pack after a sweep did to findings and alerts."""

    pack: str
    opened: int = 0
    resolved: int = 0
    still_open: int = 0
    alerts: AlertChanges = field(default_factory=AlertChanges)


@dataclass
class InfraPacks:
    """The hooks `stackfleet serve` (and the CLI's --record) run after each sweep: the
    sweep's pack over what it recorded, then the receivers are told what is due."""

    store: Store
    receivers: Sequence[Receiver] = ()
    notify: NotifySettings = field(default_factory=NotifySettings)
    inhibit_rules: Sequence[InhibitRule] = ()
    # the policies of each pack (a missing pack: the built-in one)
    policies: dict[str, Sequence[Policy]] = field(default_factory=dict)
    # False on scale-out workers: they record findings and alerts, and only the
    # leader's alerts job tells the receivers (one sender, no duplicate notices)
    dispatch_after: bool = True

    def pack(self, name: str) -> Sequence[Policy]:
        """The policies of one pack, as tuned (the built-in pack unless given)."""
        if name not in self.policies:
            self.policies[name] = pack_policies(name)
        return self.policies[name]

    def after_hardware_sweep(self, report: Any = None) -> list[PackRun]:
        """After a sweep of BMCs: the hardware pack."""
        now = datetime.now(UTC)
        results = [self.run_pack(HARDWARE, now)]
        if self.dispatch_after:
            self.dispatch(now)
        return results

    def after_infra_sweep(
        self, databases: Sequence[Any], brokers: Sequence[Any], vhost: str | None = None
    ) -> list[PackRun]:
        """After a sweep of database servers and RabbitMQ clusters: the packs of what
        was swept (a vhost sweep leaves the other vhosts' queue records as they were,
        so their findings stay as they were too)."""
        now = datetime.now(UTC)
        results = []
        if databases:
            results.append(self.run_pack(DATABASE, now))
        if brokers:
            results.append(self.run_pack(RABBITMQ, now))
        if self.dispatch_after:
            self.dispatch(now)
        return results

    def run_pack(self, pack: str, now: datetime | None = None) -> PackRun:
        """Run the enabled policies of a pack over the records its sweep wrote:
        findings and alerts as for any policy (the receivers are told after)."""
        now = now or datetime.now(UTC)
        enabled = [p for p in self.pack(pack) if p.spec.enabled]
        report = PolicyRunner(self.store).run(enabled, now=now, dispatch_alerts=False)
        result = PackRun(pack)
        for item in report.policies:
            if item.findings is not None:
                result.opened += item.findings.opened
                result.resolved += item.findings.resolved
                result.still_open += item.findings.still_open
            if item.alerts is not None:
                result.alerts.fired += item.alerts.fired
                result.alerts.resolved += item.alerts.resolved
        return result

    def dispatch(self, now: datetime | None = None) -> Dispatch:
        return dispatch(self.store, self.receivers, self.notify, now, self.inhibit_rules)


def from_settings(
    store: Store, settings: Settings, policies: dict[str, Sequence[Policy]] | None = None
) -> InfraPacks:
    """The hooks with the receivers, notification and inhibition settings of a settings
    file, and the packs' policies (`policies`: by pack name; the others built in)."""
    return InfraPacks(
        store,
        settings.alerts.receivers,
        settings.notify,
        settings.alerts.inhibit_rules,
        dict(policies or {}),
    )


def describe(results: Sequence[PackRun]) -> str:
    """One line on what running the packs did, for the CLI."""
    parts = [
        f"{item.pack}: {item.opened} findings opened, {item.resolved} resolved, "
        f"{item.still_open} still open; {item.alerts.fired} alerts fired, "
        f"{item.alerts.resolved} resolved"
        for item in results
    ]
    return "; ".join(parts) or "nothing recorded"
