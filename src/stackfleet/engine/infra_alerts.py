"""Infrastructure sweeps become findings and alerts.

Database servers and RabbitMQ clusters, nodes and queues are resources like any other:
their sweep records them (`database_server`, `rabbitmq_cluster`, `rabbitmq_node`,
`queue`), and the database and RabbitMQ policy packs (or the operator's copies) are run
here over them by the policy engine, as any policy is after a collection pass; their
findings (``database/connections-high``, ``rabbitmq/queue-no-consumer``,
``*/unreachable``, ...) and alerts (source and `pack` label the pack) are the engine's.

The hardware sweep (Redfish BMCs) still judges readings against thresholds of its own
(`model.hardware.evaluate`). Here its verdicts enter the findings table under stable
names — the pack, a slash, and the check with hyphens: ``hardware/inlet-temperature-high``
— and fire alerts with labels (alertname, severity, pack, kind, resource_id, cloud/region
where known, host) through the same routing as policy alerts. (`record_findings` and
`record` take any pack's findings.)

A finding resolves only when a later sweep *read* its resource and no longer sees it.
A resource that could not be read (BMC, database or broker unreachable) gets a finding
of its own (``hardware/bmc-unreachable``, ``database/unreachable``,
``rabbitmq/unreachable``) and its other findings stay as they were: missing data is no
evidence that a problem went away. Resources a sweep did not look at (no longer in the
BMC map or the infrastructure file) keep their findings too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stackfleet.alerts.dispatch import Dispatch, dispatch
from stackfleet.alerts.lifecycle import AlertChanges, WantedAlert, sync_alerts
from stackfleet.alerts.routing import InhibitRule, Receiver
from stackfleet.core.delivery import NotifySettings
from stackfleet.core.times import parse_time
from stackfleet.engine.hardware import SweepReport
from stackfleet.engine.infra_monitor import BrokerStatus, DatabaseStatus, pack_policies
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.model.hardware import OK, HardwareFinding, Thresholds, evaluate
from stackfleet.policy.schema import Policy
from stackfleet.store import infra_findings
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

HARDWARE, DATABASE, RABBITMQ = "hardware", "database", "rabbitmq"
PACKS = (HARDWARE, DATABASE, RABBITMQ)

# findings a sweep can judge on a resource it could not read
AVAILABILITY_RULES = {
    HARDWARE: {
        "hardware/bmc-unreachable",
        "hardware/bmc-credentials",
        "hardware/bmc-bad-response",
        "hardware/stale-reading",
    },
    DATABASE: {"database/unreachable"},
    RABBITMQ: {"rabbitmq/unreachable"},
}

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


# What usually helps, for the hardware checks (the database and RabbitMQ rules carry
# their own advice).
HARDWARE_ADVICE = {
    "bmc_unreachable": "Check the BMC's network from this host and that the BMC map's "
    "address is right; resetting the BMC (not the host) often brings it back.",
    "bmc_credentials": "Check the user name and password in the BMC map (or Ironic's "
    "driver_info); the BMC account may be locked after failed logins.",
    "bmc_bad_response": "Check the system id and that the address serves Redfish "
    "(/redfish/v1); a BMC firmware update helps when it answers malformed documents.",
    "inlet_temperature_high": "Check the rack's cooling: blocked or recirculating "
    "airflow, missing blanking panels, a failed CRAC/CRAH unit; move workloads off the "
    "host if it keeps rising.",
    "temperature_critical": "A component is at its critical limit: check its fans and "
    "heatsink, and evacuate the host before it throttles or shuts down.",
    "psu_redundancy_lost": "Reseat or replace the failed power supply and check its feed "
    "(PDU, breaker): the host runs on its last supply.",
    "psu_unhealthy": "Check the power supply's feed; replace the supply if its health stays bad.",
    "power_over_budget": "Live-migrate workloads off the host, or raise its budget if "
    "the rack's circuit allows; look for runaway load.",
    "health_degraded": "Read the BMC's event log (SEL) for the failing component.",
    "stale_reading": "The BMC's sensors stopped updating: reset the BMC (not the host) "
    "and check its firmware.",
}


def rule_name(pack: str, rule: str) -> str:
    """The stable finding name of a check or threshold rule: "db_connections_high" ->
    "database/connections-high", "inlet_temperature_high" ->
    "hardware/inlet-temperature-high"."""
    for prefix in ("db_", "mq_"):
        if rule.startswith(prefix):
            rule = rule[len(prefix) :]
            break
    return f"{pack}/{rule.replace('_', '-')}"


@dataclass
class InfraFinding:
    """One problem a sweep saw on one resource, ready for the findings table."""

    name: str
    pack: str
    severity: str
    cloud: str
    region: str
    kind: str
    resource_id: str
    resource_name: str | None
    summary: str
    advice: str
    labels: dict[str, str]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.name, self.cloud, self.region, self.kind, self.resource_id)


@dataclass(frozen=True)
class Judged:
    """A resource (and with `subtree`, every resource whose id continues it with "/") a
    sweep read; `availability_only` when the read failed: then only the availability
    findings of the pack are judged."""

    cloud: str
    region: str
    resource_id: str
    subtree: bool = False
    availability_only: bool = False

    def covers(self, pack: str, finding: dict[str, Any]) -> bool:
        if (finding["cloud"], finding["region"]) != (self.cloud, self.region):
            return False
        rid = finding["resource_id"]
        if rid != self.resource_id and not (
            self.subtree and rid.startswith(self.resource_id + "/")
        ):
            return False
        return not self.availability_only or finding["policy"] in AVAILABILITY_RULES[pack]


@dataclass
class InfraSync:
    """What recording one sweep did to findings and alerts."""

    pack: str
    opened: int = 0
    resolved: int = 0
    still_open: int = 0
    alerts: AlertChanges | None = None


def _labels(
    pack: str, cloud: str, region: str, kind: str, resource_id: str, **place: str
) -> dict[str, str]:
    labels = {"pack": pack, "kind": kind, "resource_id": resource_id}
    if cloud:
        labels["cloud"] = cloud
    if region:
        labels["region"] = region
    labels.update({k: v for k, v in place.items() if v})
    return labels


# --------------------------------------------------------------------------- hardware


def hardware_findings(
    report: SweepReport, thresholds: Thresholds | None = None, now: float | None = None
) -> tuple[list[InfraFinding], list[Judged]]:
    """The findings of one hardware sweep, and the hosts it judged."""
    limits = thresholds or Thresholds()
    moment = time.time() if now is None else now
    findings: dict[tuple[str, str, str, str, str], InfraFinding] = {}
    judged = []
    for status in report.statuses:
        judged.append(
            Judged(
                status.cloud,
                status.region,
                status.resource_id,
                availability_only=status.status != OK,
            )
        )
        for check in evaluate(status, limits, moment):
            item = _hardware_finding(status.cloud, status.region, status, check)
            _merge(findings, item)
    return list(findings.values()), judged


def _hardware_finding(cloud: str, region: str, status: Any, check: HardwareFinding) -> InfraFinding:
    return InfraFinding(
        name=rule_name(HARDWARE, check.check),
        pack=HARDWARE,
        severity=check.severity,
        cloud=cloud,
        region=region,
        kind=status.kind,
        resource_id=status.resource_id,
        resource_name=status.name,
        summary=f"{status.name}: {check.message}",
        advice=HARDWARE_ADVICE.get(check.check, ""),
        labels=_labels(HARDWARE, cloud, region, status.kind, status.resource_id, host=status.name),
        details={
            "check": check.check,
            "value": check.value,
            "threshold": check.threshold,
            "bmc": status.address,
        },
    )


def _merge(
    findings: dict[tuple[str, str, str, str, str], InfraFinding], item: InfraFinding
) -> None:
    """One finding per rule and resource: several sensors over their limit on one host
    are one finding, as bad as the worst of them, saying all of them."""
    known = findings.get(item.key)
    if known is None:
        findings[item.key] = item
        return
    if SEVERITY_ORDER.get(item.severity, 9) < SEVERITY_ORDER.get(known.severity, 9):
        known.severity = item.severity
    known.summary += "; " + item.summary.split(": ", 1)[-1]


# --------------------------------------------------------------------------- recording


def record_findings(
    store: Store,
    pack: str,
    findings: Sequence[InfraFinding],
    judged: Sequence[Judged],
    now: datetime | None = None,
) -> InfraSync:
    """Open, refresh and resolve the findings of `pack` after one sweep (see the module
    docstring for when a finding resolves)."""
    now = now or datetime.now(UTC)
    existing = {
        (f["policy"], f["cloud"], f["region"], f["kind"], f["resource_id"]): f
        for f in infra_findings.open_findings(store, pack + "/")
    }
    wanted = {f.key: f for f in findings}
    new_rows = []
    refreshed: dict[int, dict[str, Any]] = {}
    for key, item in wanted.items():
        details = {
            **item.details,
            "pack": pack,
            "summary": item.summary,
            "advice": item.advice,
            "labels": item.labels,
        }
        known = existing.get(key)
        if known is not None:
            refreshed[known["id"]] = {"severity": item.severity, "details": details}
            continue
        new_rows.append(
            {
                "policy": item.name,
                "cloud": item.cloud,
                "region": item.region,
                "kind": item.kind,
                "resource_id": item.resource_id,
                "resource_name": (item.resource_name or "")[:255] or None,
                "project_id": None,
                "severity": item.severity,
                "status": "open",
                "opened_at": now,
                "last_matched_at": now,
                "resolved_at": None,
                "details": details,
            }
        )
    gone = [
        f["id"]
        for key, f in existing.items()
        if key not in wanted and any(j.covers(pack, f) for j in judged)
    ]
    infra_findings.apply_changes(store, new_rows, refreshed, gone, now)
    result = InfraSync(pack, opened=len(new_rows), resolved=len(gone), still_open=len(refreshed))
    if new_rows or gone:
        log.info("%s findings: %d opened, %d resolved", pack, len(new_rows), len(gone))
    return result


def sync_pack_alerts(store: Store, pack: str, now: datetime | None = None) -> AlertChanges:
    """Make the firing alerts of `pack` (source = the pack) follow its open findings."""
    now = now or datetime.now(UTC)
    wanted = []
    for finding in infra_findings.open_findings(store, pack + "/"):
        details = finding["details"] or {}
        labels = {
            "alertname": finding["policy"],
            "severity": finding["severity"],
            **(details.get("labels") or {}),
        }
        annotations = {"summary": details.get("summary") or finding["policy"]}
        if details.get("advice"):
            annotations["description"] = details["advice"]
        wanted.append(
            WantedAlert(
                labels=labels,
                annotations=annotations,
                starts_at=parse_time(finding["opened_at"]) or now,
                finding_id=finding["id"],
                refresh_annotations=True,
            )
        )
    return sync_alerts(store, pack, wanted, now)


def record(
    store: Store,
    pack: str,
    findings: Sequence[InfraFinding],
    judged: Sequence[Judged],
    now: datetime | None = None,
) -> InfraSync:
    """record_findings, then the pack's alerts."""
    now = now or datetime.now(UTC)
    result = record_findings(store, pack, findings, judged, now)
    result.alerts = sync_pack_alerts(store, pack, now)
    return result


@dataclass
class InfraAlerts:
    """The hooks `stackfleet serve` (and the CLI's --record) run after each sweep:
    record findings and alerts, then tell the receivers what is due."""

    store: Store
    receivers: Sequence[Receiver] = ()
    notify: NotifySettings = field(default_factory=NotifySettings)
    inhibit_rules: Sequence[InhibitRule] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    # the policies judging database servers (None: the database pack)
    database_policies: Sequence[Policy] | None = None
    # the policies judging RabbitMQ clusters, nodes and queues (None: the RabbitMQ pack)
    rabbitmq_policies: Sequence[Policy] | None = None
    # False on scale-out workers: they record findings and alerts, and only the
    # leader's alerts job tells the receivers (one sender, no duplicate notices)
    dispatch_after: bool = True

    def after_hardware_sweep(self, report: SweepReport) -> list[InfraSync]:
        findings, judged = hardware_findings(report, self.thresholds)
        return self._record([(HARDWARE, findings, judged)])

    def after_infra_sweep(
        self,
        databases: Sequence[DatabaseStatus],
        brokers: Sequence[BrokerStatus],
        vhost: str | None = None,
    ) -> list[InfraSync]:
        now = datetime.now(UTC)
        results = []
        if databases:
            results.append(self.run_pack(DATABASE, now))
        if brokers:
            # a vhost sweep left the other vhosts' queue records as they were: their
            # findings stay as they were too
            results.append(self.run_pack(RABBITMQ, now))
        if self.dispatch_after:
            self.dispatch(now)
        return results

    def run_pack(self, pack: str, now: datetime | None = None) -> InfraSync:
        """Run the policies of an infrastructure pack over the records its sweep wrote:
        findings and alerts as for any policy (the receivers are told after)."""
        now = now or datetime.now(UTC)
        policies = self.database_policies if pack == DATABASE else self.rabbitmq_policies
        if policies is None:
            policies = pack_policies(pack)
        enabled = [p for p in policies if p.spec.enabled]
        report = PolicyRunner(self.store).run(enabled, now=now, dispatch_alerts=False)
        result = InfraSync(pack, alerts=AlertChanges())
        for item in report.policies:
            if item.findings is not None:
                result.opened += item.findings.opened
                result.resolved += item.findings.resolved
                result.still_open += item.findings.still_open
            if item.alerts is not None and result.alerts is not None:
                result.alerts.fired += item.alerts.fired
                result.alerts.resolved += item.alerts.resolved
        return result

    def _record(
        self,
        work: Sequence[tuple[str, list[InfraFinding], list[Judged]]],
        now: datetime | None = None,
    ) -> list[InfraSync]:
        now = now or datetime.now(UTC)
        results = [
            record(self.store, pack, findings, judged, now) for pack, findings, judged in work
        ]
        if self.dispatch_after:
            self.dispatch(now)
        return results

    def dispatch(self, now: datetime | None = None) -> Dispatch:
        return dispatch(self.store, self.receivers, self.notify, now, self.inhibit_rules)


def from_settings(
    store: Store,
    settings: Settings,
    thresholds: Thresholds | None = None,
    database_policies: Sequence[Policy] | None = None,
    rabbitmq_policies: Sequence[Policy] | None = None,
) -> InfraAlerts:
    """The hooks with the receivers, notification and inhibition settings of a settings
    file."""
    return InfraAlerts(
        store,
        settings.alerts.receivers,
        settings.notify,
        settings.alerts.inhibit_rules,
        thresholds or Thresholds(),
        database_policies,
        rabbitmq_policies,
    )


def describe(results: Sequence[InfraSync]) -> str:
    """One line on what recording did, for the CLI."""
    parts = []
    for item in results:
        alerts = item.alerts or AlertChanges()
        parts.append(
            f"{item.pack}: {item.opened} findings opened, {item.resolved} resolved, "
            f"{item.still_open} still open; {alerts.fired} alerts fired, "
            f"{alerts.resolved} resolved"
        )
    return "; ".join(parts) or "nothing recorded"
