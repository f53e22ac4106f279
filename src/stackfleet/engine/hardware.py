"""Hardware sweeps: which BMCs to read, reading them, and recording what they said.

One sweep: targets from the BMC map and from Ironic nodes in the store, each resolved
to the inventory resource its readings belong to (a hypervisor by host name, a
bare-metal node by name or uuid); a parallel Redfish read of all of them; metric
samples on those resources; the current status of each host; its `bmc`,
`temperature_sensor` and `fan` records, which the hardware policy pack judges; then a
compaction of the metric store. A BMC that fails is recorded as failed (hw_up 0, its
status and error, records `reachable` false) and keeps its last good reading for
context, never a zero reading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackfleet.engine.infra_monitor import Verdict, judge, pack_policies
from stackfleet.model import kind
from stackfleet.model.hardware import (
    BMC_KIND,
    HARDWARE_KINDS,
    OK,
    BmcStatus,
    hardware_records,
    sample_values,
)
from stackfleet.policy.schema import Policy
from stackfleet.sources.redfish.bmc_map import (
    BmcMap,
    BmcTarget,
    load_bmc_map,
    merge_targets,
    targets_from_ironic,
    with_defaults,
)
from stackfleet.sources.redfish.client import DEFAULT_CONCURRENCY, BmcResult, sweep
from stackfleet.store import Store
from stackfleet.store.hardware import load_statuses, save_statuses
from stackfleet.store.inventory import live_ids
from stackfleet.store.metrics import Sample, compact, record_samples

log = logging.getLogger(__name__)

# kind and place of a host the inventory does not know (yet)
UNKNOWN_KIND = "hypervisor"


def resolve_targets(
    store: Store, bmc_map: BmcMap | None = None, include_ironic: bool = True
) -> list[BmcTarget]:
    """Every BMC to read: the map's, then Ironic nodes' (with a Redfish address) that the
    map does not name, each tied to its inventory resource where the store knows it."""
    bmc_map = bmc_map or BmcMap()
    hypervisors, _ = store.list_resources("hypervisor")
    nodes, _ = store.list_resources("baremetal_node")
    by_name: dict[str, dict[str, Any]] = {}
    for node in nodes:
        for key in (node.get("name"), node.get("id")):
            if key:
                by_name.setdefault(str(key), node)
    for hyp in hypervisors:
        names = (hyp.get("host"), hyp.get("hypervisor_hostname"), hyp.get("name"))
        for key in names:
            if key:
                by_name.setdefault(str(key), hyp)
                by_name.setdefault(str(key).split(".", 1)[0], hyp)
    explicit = [_resolved(t, by_name) for t in bmc_map.targets]
    ironic = targets_from_ironic(nodes, bmc_map.ironic) if include_ironic else []
    return merge_targets(explicit, ironic)


def _resolved(target: BmcTarget, by_name: dict[str, dict[str, Any]]) -> BmcTarget:
    if target.kind and target.resource_id and target.cloud is not None:
        return target
    record = by_name.get(target.name)
    if record is None or (target.kind and record["kind"] != target.kind):
        return target
    return with_defaults(
        target,
        kind=target.kind or record["kind"],
        resource_id=target.resource_id or str(record["id"]),
        cloud=target.cloud if target.cloud is not None else record["cloud"],
        region=target.region if target.region is not None else record["region"],
    )


@dataclass
class SweepReport:
    """What one sweep did."""

    results: list[BmcResult]
    statuses: list[BmcStatus]
    samples: int
    seconds: float
    started_at: float
    counts: dict[str, int] = field(default_factory=dict)


def run_sweep(
    store: Store,
    targets: Sequence[BmcTarget],
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
    on_result: Callable[[BmcResult], None] | None = None,
) -> SweepReport:
    """Read every target, record samples and statuses, compact the metric store."""
    started = time.time()
    clock = time.monotonic()
    results = sweep(targets, concurrency=concurrency, timeout=timeout, on_result=on_result)
    previous = {(s.cloud, s.region, s.name): s for s in load_statuses(store)}
    statuses = []
    samples: list[Sample] = []
    for result in results:
        status = _status(result, previous)
        statuses.append(status)
        at = result.finished_at
        for metric, value in sample_values(result.reading).items():
            samples.append(
                Sample(
                    status.cloud, status.region, status.kind, status.resource_id, metric, at, value
                )
            )
    recorded = record_samples(store, samples)
    save_statuses(store, statuses)
    record_hardware(store, statuses, time.time())
    compact(store, time.time())
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status.status] = counts.get(status.status, 0) + 1
    return SweepReport(results, statuses, recorded, time.monotonic() - clock, started, counts)


def _status(result: BmcResult, previous: dict[tuple[str, str, str], BmcStatus]) -> BmcStatus:
    target = result.target
    cloud, region = target.cloud or "", target.region or ""
    before = previous.get((cloud, region, target.name))
    status = BmcStatus(
        name=target.name,
        cloud=cloud,
        region=region,
        kind=target.kind or UNKNOWN_KIND,
        resource_id=target.resource_id or target.name,
        address=target.address,
        system_id=target.system_id,
        source=target.source,
        status=result.status,
        error=result.error,
        checked_at=result.finished_at,
        power_budget_watts=target.power_budget_watts,
    )
    if result.status == OK and result.reading is not None:
        fingerprint = result.reading.fingerprint()
        moved = before is None or before.fingerprint != fingerprint or before.changed_at is None
        status.reading = result.reading
        status.fingerprint = fingerprint
        status.ok_at = result.finished_at
        status.changed_at = result.finished_at if moved else before.changed_at  # type: ignore[union-attr]
    elif before is not None:
        # keep the last good reading (for context and staleness), not as a current value
        status.reading = before.reading
        status.fingerprint = before.fingerprint
        status.ok_at = before.ok_at
        status.changed_at = before.changed_at
    return status


_BUILDERS = {name: kind(name).record_builder() for name in HARDWARE_KINDS}
_SENSOR_KINDS = tuple(name for name in HARDWARE_KINDS if name != BMC_KIND)


def record_hardware(store: Store, statuses: Sequence[BmcStatus], now: float) -> None:
    """Record each host's hardware status as resources of the hardware kinds (see
    model/hardware.py `hardware_records`). Sensors that a successful read no longer
    has are gone; a failed read leaves them, unread, as they were."""
    known: dict[tuple[str, str, str], set[str]] = {}
    for status in statuses:
        cloud, region = status.cloud, status.region
        records = hardware_records(status, now)
        for kind_name, objects in records.items():
            build = _BUILDERS[kind_name]
            for obj in objects:
                store.upsert_resource(cloud, region, kind_name, build(obj))
        if status.status != OK:
            continue
        prefix = status.resource_id + "/"
        for kind_name in _SENSOR_KINDS:
            place = (cloud, region, kind_name)
            if place not in known:
                known[place] = live_ids(store, cloud, region, kind_name)
            seen = {obj["id"] for obj in records[kind_name]}
            for rid in known[place]:
                if rid.startswith(prefix) and rid not in seen:
                    store.mark_resource_gone(cloud, region, kind_name, rid)


def retire_hardware(store: Store, targets: Sequence[BmcTarget]) -> int:
    """Mark gone the `bmc` records (and their sensors) of hosts no longer among
    `targets` (every BMC the daemon reads: taken out of the BMC map, or an Ironic node
    without a Redfish address now): their findings resolve instead of going stale."""
    wanted = {(t.cloud or "", t.region or "", t.resource_id or t.name) for t in targets}
    retired = 0
    for cloud, region, rid in {
        (r["cloud"], r["region"], str(r["id"])) for r in store.list_resources(BMC_KIND)[0]
    }:
        if (cloud, region, rid) in wanted:
            continue
        store.mark_resource_gone(cloud, region, BMC_KIND, rid)
        retired += 1
        for kind_name in _SENSOR_KINDS:
            for sensor in live_ids(store, cloud, region, kind_name):
                if sensor.startswith(rid + "/"):
                    store.mark_resource_gone(cloud, region, kind_name, sensor)
    return retired


def hardware_policies(files: Sequence[str | Path] = ()) -> list[Policy]:
    """The hardware pack as the operator tuned it (policy files that replace its
    policies of the same name: the monitoring file's `policies:`)."""
    return pack_policies("hardware", files)


def hardware_report(
    store: Store,
    policies: Sequence[Policy] | None = None,
    cloud: str | None = None,
    region: str | None = None,
    now: datetime | None = None,
) -> list[tuple[BmcStatus, list[Verdict]]]:
    """Every host's stored status with what the hardware policies (default: the pack)
    find on its records at `now` (default: now): its BMC's and its sensors' (nothing
    is recorded)."""
    statuses = load_statuses(store, cloud, region)
    if not statuses:
        return []
    chosen = hardware_policies() if policies is None else policies
    verdicts: dict[str, list[Verdict]] = {}
    for kind_name in HARDWARE_KINDS:
        for rid, found in judge(store, chosen, kind_name, now).items():
            # a sensor's id continues its host's BMC id
            verdicts.setdefault(rid, []).extend(found)
    report = []
    for status in statuses:
        prefix = status.resource_id + "/"
        mine = [
            v
            for rid, found in verdicts.items()
            if rid == status.resource_id or rid.startswith(prefix)
            for v in found
        ]
        report.append((status, sorted(mine, key=_verdict_order)))
    return report


def host_findings(
    store: Store, status: BmcStatus, policies: Sequence[Policy] | None = None
) -> list[Verdict]:
    """What the hardware policies find on one host's records now."""
    for item, verdicts in hardware_report(store, policies, status.cloud, status.region):
        if item.name == status.name:
            return verdicts
    return []


_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def _verdict_order(verdict: Verdict) -> tuple[int, str, str]:
    return (_SEVERITY_ORDER.get(verdict.severity, 9), verdict.rule, verdict.resource_id)


def targets_for(
    store: Store, bmc_map_path: str | Path | None, include_ironic: bool = True
) -> list[BmcTarget]:
    """resolve_targets with the BMC map read from `bmc_map_path` (if given)."""
    bmc_map = load_bmc_map(bmc_map_path) if bmc_map_path else None
    return resolve_targets(store, bmc_map, include_ironic)


def status_dict(status: BmcStatus, findings: Sequence[Verdict]) -> dict[str, Any]:
    """One host's hardware status as the API and the CLI's machine formats show it. The
    readings are the last good ones; `status` says whether they are current."""
    reading = status.reading
    return {
        "name": status.name,
        "cloud": status.cloud,
        "region": status.region,
        "kind": status.kind,
        "resource_id": status.resource_id,
        "address": status.address,
        "system_id": status.system_id,
        "source": status.source,
        "status": status.status,
        "error": status.error,
        "checked_at": _iso(status.checked_at),
        "ok_at": _iso(status.ok_at),
        "changed_at": _iso(status.changed_at),
        "power_state": reading.power_state if reading else None,
        "health": reading.health if reading else None,
        "power_watts": reading.power_watts if reading else None,
        "power_source": reading.power_source if reading else None,
        "power_limit_watts": reading.power_limit_watts if reading else None,
        "power_budget_watts": status.power_budget_watts,
        "inlet_celsius": reading.inlet_celsius if reading else None,
        "cpu_celsius": reading.cpu_celsius if reading else None,
        "psu_redundancy": reading.psu_redundancy if reading else None,
        "temperatures": [t.__dict__ for t in reading.temperatures] if reading else [],
        "fans": [f.__dict__ for f in reading.fans] if reading else [],
        "psus": [{**p.__dict__, "healthy": p.healthy} for p in (reading.psus if reading else [])],
        "findings": [f.as_dict() for f in findings],
    }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass
class HardwareSweepLoop:
    """The daemon's hardware job: `run_once` sweeps every BMC (the map's and Ironic's);
    the scheduler repeats it. Targets are resolved again each time, so hosts the
    collection passes find later are read too."""

    store: Store
    bmc_map_path: str | Path | None
    include_ironic: bool = True
    timeout: float | None = 10.0
    # called with each sweep's report (serve records findings and alerts there)
    after_sweep: Callable[[SweepReport], Any] | None = None
    # scale-out: this process's share of the BMCs, by their partition keys
    # `hardware:<name>` (None: every BMC); findings resolve only for the BMCs swept
    share: Callable[[list[str]], set[str]] | None = None

    def run_once(self) -> SweepReport | None:
        """One sweep; None when there is no BMC to read yet."""
        targets = targets_for(self.store, self.bmc_map_path, self.include_ironic)
        # hosts the daemon no longer reads: their records (and findings) go
        retire_hardware(self.store, targets)
        if self.share is not None:
            mine = self.share([f"hardware:{t.name}" for t in targets])
            targets = [t for t in targets if f"hardware:{t.name}" in mine]
        if not targets:
            return None
        report = run_sweep(self.store, targets, timeout=self.timeout)
        if self.after_sweep is not None:
            self.after_sweep(report)
        return report
