"""Real usage of servers and hypervisors: sweeps that read it from the configured
source and store it as metric samples, where the `metric` policy filter (the waste
pack's idle-servers rule) and `stackfleet usage show` read it.

Sources (settings file, ``usage.source``):

- ``diagnostics``: Nova server diagnostics, one call per ACTIVE server, at most
  ``concurrency`` at a time and at most ``budget`` servers per sweep. The servers not
  read for the longest come first, so successive sweeps go round a fleet of any size.
  Diagnostics counters are cumulative: a rate needs the previous reading, which is kept
  in the store as samples (``cpu_time_seconds`` ...). A server whose diagnostics fail
  (409 not running, 404 gone, 403 policy) is reported and skipped, never stored as 0 %.
- ``prometheus``: the libvirt exporter's and node_exporter's series through the
  Prometheus query API; rates are computed by Prometheus, one query for the fleet.

Metric names (kind ``server``): ``cpu_util`` (percent of the server's vCPUs),
``memory_used_mb``, ``memory_max_mb``, ``disk_read_bps``, ``disk_write_bps``,
``net_rx_bps``, ``net_tx_bps`` (bytes per second). Kind ``hypervisor`` (node_exporter):
``cpu_util``, ``memory_used_mb``, ``memory_used_percent``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackfleet.core.errors import ConfigError
from stackfleet.core.times import Duration
from stackfleet.sources.openstack.connection import CloudTarget, close_targets, connect
from stackfleet.sources.openstack.diagnostics import (
    Diagnostics,
    DiagnosticsFailure,
    read_many,
)
from stackfleet.sources.openstack.listing import RequestLog
from stackfleet.sources.prometheus import (
    PrometheusClient,
    PrometheusSettings,
    host_name,
    host_queries,
    server_queries,
)
from stackfleet.store import Store
from stackfleet.store.metrics import HOUR, Sample, record_samples
from stackfleet.store.usage import (
    HourlyPoint,
    backfill_limit,
    newest_in_window,
    newest_values,
    record_hourly,
    resource_places,
    resources_by_name,
    servers_due,
    window_means,
)

log = logging.getLogger(__name__)

SERVER_METRICS = (
    "cpu_util",
    "memory_used_mb",
    "memory_max_mb",
    "disk_read_bps",
    "disk_write_bps",
    "net_rx_bps",
    "net_tx_bps",
)
HOST_METRICS = ("cpu_util", "memory_used_mb", "memory_used_percent")
# cumulative diagnostics counters kept for the next rate -> the rate's metric name
COUNTERS = {
    "cpu_time_seconds": "cpu_util",
    "disk_read_bytes": "disk_read_bps",
    "disk_write_bytes": "disk_write_bps",
    "net_rx_bytes": "net_rx_bps",
    "net_tx_bytes": "net_tx_bps",
}
# 1 after every diagnostics attempt that returned a reading, 0 after one that failed:
# its newest time orders the round-robin, so failing servers do not crowd the others out
ATTEMPT_METRIC = "diagnostics_ok"
# two readings closer than this give no rate (clock resolution, request jitter)
MIN_RATE_INTERVAL = 0.5


class UsageSettings(BaseModel):
    """`usage:` in the settings file: where real usage comes from and how it is read."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["diagnostics", "prometheus", "none"] = Field(
        default="none", description="Where per-server usage comes from."
    )
    interval: Duration = Field(
        default=timedelta(minutes=5), description="Time between sweeps (stackfleet serve)."
    )
    concurrency: int = Field(
        default=8, ge=1, le=64, description="Diagnostics calls in flight at once."
    )
    budget: int = Field(default=500, ge=1, description="Most servers read per sweep.")
    first_reading_gap: Duration = Field(
        default=timedelta(0),
        description="Read a never-read server twice this far apart in one sweep, so it "
        "gets a rate at once (0: its rate comes with the next sweep).",
    )
    prometheus: PrometheusSettings | None = Field(
        default=None, description="The Prometheus to read (source: prometheus)."
    )
    backfill: Duration = Field(
        default=timedelta(days=14),
        description="History to read from Prometheus once at start (hourly means).",
    )
    idle_threshold: float = Field(
        default=2.0, ge=0, description="CPU % under which /metrics counts a server idle."
    )
    idle_window: Duration = Field(
        default=timedelta(days=1), description="Window of the idle count on /metrics."
    )

    @model_validator(mode="after")
    def _prometheus_configured(self) -> UsageSettings:
        if self.source == "prometheus" and self.prometheus is None:
            raise ValueError("source prometheus needs a `prometheus:` section with its url")
        return self


# -- results ------------------------------------------------------------------------------


@dataclass
class UsageRow:
    """One resource in a sweep: what was read, or why nothing was."""

    kind: str
    resource_id: str
    cloud: str
    region: str
    name: str | None = None
    outcome: str = "sampled"  # sampled | first reading | skipped
    reason: str | None = None
    values: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.resource_id,
            "name": self.name,
            "cloud": self.cloud,
            "region": self.region,
            "outcome": self.outcome,
            "reason": self.reason,
            **{m: self.values.get(m) for m in SERVER_METRICS},
        }


@dataclass
class UsageSweep:
    """What one sweep did."""

    source: str
    started: float
    rows: list[UsageRow] = field(default_factory=list)
    samples: int = 0
    # ACTIVE servers in the inventory of the swept regions (diagnostics source)
    active_servers: int = 0
    requests: int = 0
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sampled": self.count("sampled"),
            "first_reading": self.count("first reading"),
            "skipped": self.count("skipped"),
            "active_servers": self.active_servers,
            "samples": self.samples,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
        }


# -- diagnostics -----------------------------------------------------------------------------


def _counters(reading: Diagnostics) -> dict[str, float]:
    values = {
        "cpu_time_seconds": reading.cpu_time_seconds,
        "disk_read_bytes": reading.disk_read_bytes,
        "disk_write_bytes": reading.disk_write_bytes,
        "net_rx_bytes": reading.net_rx_bytes,
        "net_tx_bytes": reading.net_tx_bytes,
    }
    return {k: v for k, v in values.items() if v is not None}


def diagnostics_rates(
    previous: dict[str, tuple[float, float]], reading: Diagnostics, vcpus: int | None
) -> tuple[dict[str, float], list[str]]:
    """Rates from the previous counters {metric: (ts, value)} to `reading`: CPU % is
    Δcpu_time / (Δt × vCPUs) × 100, the others bytes per second. A counter that went
    down (the domain restarted, the server moved) gives no rate; notes say why."""
    rates: dict[str, float] = {}
    notes: list[str] = []
    for counter, value in _counters(reading).items():
        before = previous.get(counter)
        if before is None:
            continue
        elapsed = reading.ts - before[0]
        if elapsed < MIN_RATE_INTERVAL:
            continue
        delta = value - before[1]
        if delta < 0:
            notes.append(f"{counter} went down (restarted or moved): no rate this time")
            continue
        name = COUNTERS[counter]
        if name == "cpu_util":
            cpus = reading.num_cpus or vcpus
            if not cpus:
                notes.append("vCPU count unknown: no CPU %")
                continue
            rates[name] = 100.0 * delta / (elapsed * cpus)
        else:
            rates[name] = delta / elapsed
    return rates, notes


def _reading_samples(
    cloud: str, region: str, reading: Diagnostics, rates: dict[str, float]
) -> list[Sample]:
    values: dict[str, float] = {**_counters(reading), **rates, ATTEMPT_METRIC: 1.0}
    if reading.memory_used_mb is not None:
        values["memory_used_mb"] = reading.memory_used_mb
    if reading.memory_max_mb is not None:
        values["memory_max_mb"] = reading.memory_max_mb
    return [
        Sample(cloud, region, "server", reading.server_id, metric, reading.ts, value)
        for metric, value in values.items()
    ]


Reader = Callable[
    [Any, Sequence[str], int, RequestLog | None], list[Diagnostics | DiagnosticsFailure]
]


def _default_reader(
    compute: Any, ids: Sequence[str], concurrency: int, request_log: RequestLog | None
) -> list[Diagnostics | DiagnosticsFailure]:
    return read_many(compute, ids, concurrency, request_log)


def sweep_diagnostics(
    store: Store,
    targets: Sequence[CloudTarget],
    settings: UsageSettings,
    *,
    reader: Reader = _default_reader,
    sleep: Callable[[float], None] = time.sleep,
) -> UsageSweep:
    """One diagnostics sweep over `targets` (regions of clouds already collected: the
    servers come from the inventory). At most `settings.budget` servers in all."""
    sweep = UsageSweep("diagnostics", time.time())
    request_log = RequestLog()
    budget = settings.budget
    gap = settings.first_reading_gap.total_seconds()
    for target in targets:
        due, total = servers_due(store, target.cloud, target.region, ATTEMPT_METRIC, budget)
        sweep.active_servers += total
        if not due:
            continue
        budget -= len(due)
        ids = [s.server_id for s in due]
        by_id = {s.server_id: s for s in due}
        previous = newest_values(store, "server", ids, list(COUNTERS))
        compute = target.conn.compute
        readings = reader(compute, ids, settings.concurrency, request_log)
        if gap > 0:
            fresh = [
                r.server_id
                for r in readings
                if isinstance(r, Diagnostics) and r.server_id not in previous
            ]
            if fresh:
                # the first reading of a never-read server becomes its previous counters
                for r in readings:
                    if isinstance(r, Diagnostics) and r.server_id in fresh:
                        previous[r.server_id] = {m: (r.ts, v) for m, v in _counters(r).items()}
                        record_samples(store, _reading_samples(target.cloud, target.region, r, {}))
                sleep(gap)
                again = {
                    r.server_id: r
                    for r in reader(compute, fresh, settings.concurrency, request_log)
                }
                readings = [again.get(r.server_id, r) for r in readings]
        samples: list[Sample] = []
        for reading in readings:
            server = by_id[reading.server_id]
            row = UsageRow(
                "server", reading.server_id, target.cloud, target.region, name=server.name
            )
            sweep.rows.append(row)
            if isinstance(reading, DiagnosticsFailure):
                row.outcome, row.reason = "skipped", reading.reason
                samples.append(
                    Sample(
                        target.cloud,
                        target.region,
                        "server",
                        reading.server_id,
                        ATTEMPT_METRIC,
                        time.time(),
                        0.0,
                    )
                )
                log.info("no diagnostics for server %s: %s", reading.server_id, reading.reason)
                continue
            rates, notes = diagnostics_rates(
                previous.get(reading.server_id, {}), reading, server.vcpus
            )
            samples += _reading_samples(target.cloud, target.region, reading, rates)
            row.values = dict(rates)
            if reading.memory_used_mb is not None:
                row.values["memory_used_mb"] = reading.memory_used_mb
            if reading.memory_max_mb is not None:
                row.values["memory_max_mb"] = reading.memory_max_mb
            if "cpu_util" not in rates:
                row.outcome = "first reading"
                row.reason = "; ".join(notes) or "no previous reading: rates from the next sweep"
            elif notes:
                row.reason = "; ".join(notes)
        sweep.samples += record_samples(store, samples)
        if budget <= 0:
            break
    sweep.requests = request_log.total
    sweep.seconds = time.time() - sweep.started
    return sweep


# -- Prometheus ------------------------------------------------------------------------------


def _prometheus_rows(
    store: Store, client: PrometheusClient, settings: PrometheusSettings, at: float | None
) -> tuple[list[UsageRow], list[Sample]]:
    ts = at if at is not None else time.time()
    sid = settings.server_label
    per_server: dict[str, dict[str, float]] = {}
    for metric, expr in server_queries(settings).items():
        for series in client.query(expr, at):
            server_id = series.labels.get(sid)
            if server_id and series.points:
                per_server.setdefault(server_id, {})[metric] = series.points[-1][1]
    places = resource_places(store, "server", per_server)
    rows: list[UsageRow] = []
    samples: list[Sample] = []
    for server_id, values in sorted(per_server.items()):
        place = places.get(server_id)
        if place is None:
            rows.append(
                UsageRow(
                    "server",
                    server_id,
                    "",
                    "",
                    outcome="skipped",
                    reason="not a server of the inventory (collect first, or another cloud)",
                    values=values,
                )
            )
            continue
        cloud, region, name = place
        rows.append(UsageRow("server", server_id, cloud, region, name=name, values=values))
        samples += [Sample(cloud, region, "server", server_id, m, ts, v) for m, v in values.items()]
    hosts = resources_by_name(store, "hypervisor")
    per_host: dict[str, dict[str, float]] = {}
    for metric, expr in host_queries(settings).items():
        for series in client.query(expr, at):
            name = host_name(settings, series.labels)
            if name and series.points:
                per_host.setdefault(name, {})[metric] = series.points[-1][1]
    for name, values in sorted(per_host.items()):
        matches = hosts.get(name) or hosts.get(name.split(".", 1)[0]) or []
        if len(matches) != 1:
            rows.append(
                UsageRow(
                    "hypervisor",
                    name,
                    "",
                    "",
                    name=name,
                    outcome="skipped",
                    reason="no hypervisor of that name in the inventory"
                    if not matches
                    else "several hypervisors match that name",
                    values=values,
                )
            )
            continue
        cloud, region, rid, hv_name = matches[0]
        rows.append(UsageRow("hypervisor", rid, cloud, region, name=hv_name, values=values))
        samples += [Sample(cloud, region, "hypervisor", rid, m, ts, v) for m, v in values.items()]
    return rows, samples


def sweep_prometheus(
    store: Store, settings: PrometheusSettings, at: float | None = None
) -> UsageSweep:
    """One read of every server's and hypervisor's current usage from Prometheus."""
    sweep = UsageSweep("prometheus", time.time())
    client = PrometheusClient(settings)
    try:
        rows, samples = _prometheus_rows(store, client, settings, at)
    finally:
        client.close()
    sweep.rows = rows
    sweep.samples = record_samples(store, samples)
    sweep.requests = len(server_queries(settings)) + len(host_queries(settings))
    sweep.seconds = time.time() - sweep.started
    return sweep


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill wrote: hourly buckets, and the hours it covered."""

    buckets: int
    start: float
    end: float


def backfill_prometheus(
    store: Store, settings: PrometheusSettings, window: timedelta, now: float | None = None
) -> BackfillResult:
    """Read `window` of history as hourly means (``query_range``, step 1 h, rates over
    1 h) and store them as hourly rollups, for the hours before the store's own data,
    so a fresh StackFleet can answer "mean CPU over 14 days" at once. Hours already
    held are left alone: running it again writes nothing new."""
    moment = time.time() if now is None else now
    limit = backfill_limit(store, moment)
    start = float(int((moment - window.total_seconds()) // HOUR) * HOUR)
    if limit <= start:
        return BackfillResult(0, start, start)
    client = PrometheusClient(settings)
    points: list[HourlyPoint] = []
    try:
        server_series: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for metric, expr in server_queries(settings, window="1h").items():
            # the value at T of a 1 h rate is the mean over the hour before T
            for series in client.query_range(expr, start + HOUR, limit, HOUR):
                server_id = series.labels.get(settings.server_label)
                if server_id:
                    server_series.setdefault(server_id, {})[metric] = series.points
        places = resource_places(store, "server", server_series)
        for server_id, metrics in server_series.items():
            place = places.get(server_id)
            if place is None:
                continue
            cloud, region, _name = place
            for metric, values in metrics.items():
                points += [
                    HourlyPoint(cloud, region, "server", server_id, metric, ts - HOUR, v)
                    for ts, v in values
                ]
        hosts = resources_by_name(store, "hypervisor")
        for metric, expr in host_queries(settings, window="1h").items():
            for series in client.query_range(expr, start + HOUR, limit, HOUR):
                name = host_name(settings, series.labels)
                matches = hosts.get(name or "") or hosts.get((name or "").split(".", 1)[0]) or []
                if len(matches) != 1:
                    continue
                cloud, region, rid, _hv = matches[0]
                points += [
                    HourlyPoint(cloud, region, "hypervisor", rid, metric, ts - HOUR, v)
                    for ts, v in series.points
                ]
    finally:
        client.close()
    return BackfillResult(record_hourly(store, points, limit), start, limit)


# -- reading back ---------------------------------------------------------------------------


def usage_of(
    store: Store,
    kind: str,
    resource_id: str,
    windows: Sequence[timedelta] = (timedelta(hours=1), timedelta(days=1), timedelta(days=14)),
    now: float | None = None,
) -> dict[str, Any]:
    """Latest values and window means of one server's or hypervisor's usage metrics."""
    moment = time.time() if now is None else now
    metrics = SERVER_METRICS if kind == "server" else HOST_METRICS
    newest = newest_values(store, kind, [resource_id], [*metrics, ATTEMPT_METRIC])
    current = newest.get(resource_id, {})
    result: dict[str, Any] = {"kind": kind, "id": resource_id, "metrics": {}}
    means = {
        window: window_means(store, kind, resource_id, metrics, moment - window.total_seconds())
        for window in windows
    }
    for metric in metrics:
        entry: dict[str, Any] = {
            "latest": current[metric][1] if metric in current else None,
            "at": _iso(current[metric][0]) if metric in current else None,
        }
        for window, found in means.items():
            mean = found.get(metric)
            label = _window_label(window)
            entry[f"mean_{label}"] = mean[0] if mean else None
            entry[f"samples_{label}"] = mean[1] if mean else 0
        result["metrics"][metric] = entry
    if ATTEMPT_METRIC in current:
        ts, ok = current[ATTEMPT_METRIC]
        result["last_attempt"] = {"at": _iso(ts), "ok": bool(ok)}
    return result


def _window_label(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def idle_counts(
    store: Store, threshold: float, window: timedelta, now: float
) -> dict[tuple[str, str], tuple[int, int]]:
    """{(cloud, region): (servers with a `cpu_util` reading within `window`, those whose
    newest reading is below `threshold`)}: the aggregate /metrics exports (per-server
    values are too many for a scrape)."""
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for cloud, region, _rid, value in newest_in_window(
        store, "server", "cpu_util", now - window.total_seconds()
    ):
        sampled, idle = counts.get((cloud, region), (0, 0))
        counts[(cloud, region)] = (sampled + 1, idle + (value < threshold))
    return counts


# -- the daemon's job ------------------------------------------------------------------------


@dataclass
class UsageLoop:
    """The daemon's usage job: `run_once` sweeps usage, from diagnostics over the given
    clouds or from Prometheus (after a one-time backfill); the scheduler repeats it
    every `settings.interval`."""

    store: Store
    settings: UsageSettings
    clouds: Sequence[str] = ()
    system_cloud: str | None = None
    config_files: list[str] | None = None
    _targets: list[CloudTarget] | None = None
    _backfilled: bool = False

    def run_once(self) -> UsageSweep | None:
        """One sweep with the configured source (None when the source is `none`),
        logged; after an error the clouds' connections are closed, and connected again
        next time."""
        try:
            sweep = self._sweep()
        except Exception:
            self.close()  # reconnect next time
            raise
        if sweep is not None:
            log.info(
                "usage sweep (%s): %d sampled, %d first readings, %d skipped",
                sweep.source,
                sweep.count("sampled"),
                sweep.count("first reading"),
                sweep.count("skipped"),
            )
        return sweep

    def _sweep(self) -> UsageSweep | None:
        settings = self.settings
        if settings.source == "diagnostics":
            if self._targets is None:
                targets: list[CloudTarget] = []
                try:
                    for cloud in self.clouds:
                        targets += connect(cloud, None, self.system_cloud, self.config_files)
                except Exception:
                    close_targets(targets)  # the clouds connected before the one that failed
                    raise
                self._targets = targets
            return sweep_diagnostics(self.store, self._targets, settings)
        if settings.source == "prometheus":
            if settings.prometheus is None:
                raise ConfigError("usage.source is prometheus but usage.prometheus is not set")
            if not self._backfilled and settings.backfill.total_seconds() > 0:
                result = backfill_prometheus(self.store, settings.prometheus, settings.backfill)
                log.info("backfilled %d hourly usage buckets from Prometheus", result.buckets)
                self._backfilled = True
            return sweep_prometheus(self.store, settings.prometheus)
        return None

    def close(self) -> None:
        """Close the clouds' connections (the next sweep connects again)."""
        targets, self._targets = self._targets, None
        close_targets(targets or [])
