"""Hardware sweeps: which BMCs to read, reading them, and recording what they said.

One sweep: targets from the BMC map and from Ironic nodes in the store, each resolved
to the inventory resource its readings belong to (a hypervisor by host name, a
bare-metal node by name or uuid); a parallel Redfish read of all of them; metric
samples on those resources; the current status of each host; then a compaction of
the metric store. A BMC that fails is recorded as failed (hw_up 0, its status and
error) and keeps its last good reading for context, never a zero reading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from stackfleet.core.errors import ConfigError
from stackfleet.model.hardware import (
    OK,
    BmcStatus,
    HardwareFinding,
    Thresholds,
    evaluate,
    sample_values,
)
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


def hardware_report(
    store: Store,
    thresholds: Thresholds | None = None,
    now: float | None = None,
    cloud: str | None = None,
    region: str | None = None,
) -> list[tuple[BmcStatus, list[HardwareFinding]]]:
    """Every host's stored status with the findings of the checks at `now`."""
    limits = thresholds or Thresholds()
    moment = time.time() if now is None else now
    return [(s, evaluate(s, limits, moment)) for s in load_statuses(store, cloud, region)]


def load_thresholds(path: str | Path | None) -> Thresholds:
    """Thresholds from a YAML file (its `hardware:` section, or the whole file), or the
    defaults when `path` is None; ConfigError names the file and the bad key."""
    if path is None:
        return Thresholds()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read thresholds file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of threshold names to numbers")
    section = data.get("hardware", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: hardware: expected a mapping of threshold names to numbers")
    try:
        return Thresholds.from_mapping(section, where=str(path))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def targets_for(
    store: Store, bmc_map_path: str | Path | None, include_ironic: bool = True
) -> list[BmcTarget]:
    """resolve_targets with the BMC map read from `bmc_map_path` (if given)."""
    bmc_map = load_bmc_map(bmc_map_path) if bmc_map_path else None
    return resolve_targets(store, bmc_map, include_ironic)


def status_dict(status: BmcStatus, findings: list[HardwareFinding]) -> dict[str, Any]:
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
        "findings": [f.__dict__ for f in findings],
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
        if self.share is not None:
            mine = self.share([f"hardware:{t.name}" for t in targets])
            targets = [t for t in targets if f"hardware:{t.name}" in mine]
        if not targets:
            return None
        report = run_sweep(self.store, targets, timeout=self.timeout)
        if self.after_sweep is not None:
            self.after_sweep(report)
        return report
