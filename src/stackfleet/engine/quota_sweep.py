"""The quota sweep: reads project quota limits from Nova, Cinder and Neutron, apart from
the collection passes.

Quotas cost one request per project and service, so they are read at most every
`quota_interval` (default one hour), only for projects that own resources in the
inventory, with bounded concurrency. The limits are kept as metric samples on the
project resource:

- ``quota.<resource>`` — the limit (-1 = unlimited), e.g. ``quota.cores``;
- ``quota.<service>.read`` — 1 when the service's quota set was read, 0 when reading it
  failed (403 for a non-admin token, a service missing from the catalog ...).

A limit counts only when it was written by the newest successful read of its service
and no failed read came after it: otherwise it is unknown. Raw samples are kept six
hours (store/metrics.py), so `quota_interval` must stay below that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from stackfleet.core.errors import ConfigError, StackFleetError
from stackfleet.engine.loop import CloudSpec
from stackfleet.sources.openstack.capacity import DEFAULT_AGENT_INTERVAL
from stackfleet.sources.openstack.connection import CloudTarget, connected
from stackfleet.sources.openstack.listing import RequestLog
from stackfleet.sources.openstack.quotas import QUOTA_SOURCES, QuotaReading, read_quota
from stackfleet.store import Store
from stackfleet.store.metrics import Sample, latest, record_samples

log = logging.getLogger(__name__)

DEFAULT_QUOTA_INTERVAL = 3600.0
# raw samples live six hours (store.metrics.Retention); a limit must be re-read before
MAX_QUOTA_INTERVAL = 5 * 3600.0
# seconds between looks while no pass has recorded projects with resources yet
FIRST_PASS_WAIT = 15.0
# kinds whose records say which projects own resources
OWNING_KINDS = ("server", "volume", "floating_ip", "port")

Limits = dict[tuple[str, str, str], dict[str, tuple[int | None, str | None]]]


def read_metric(service: str) -> str:
    return f"quota.{service}.read"


def stored_limits(store: Store, cloud: str | None = None, region: str | None = None) -> Limits:
    """(cloud, region, project) -> resource -> (limit, error): the newest quota readings.
    A resource whose service's newest read failed has limit None and an error."""
    services = {s.service: tuple(s.keys.values()) for s in QUOTA_SOURCES}
    newest = latest(store, "project")
    result: Limits = {}
    for (c, r, project), metrics in newest.items():
        if (cloud and c != cloud) or (region and r != region):
            continue
        limits: dict[str, tuple[int | None, str | None]] = {}
        for service, resources in services.items():
            read = metrics.get(read_metric(service))
            if read is None:
                continue
            read_at, ok = read
            for resource in resources:
                sample = metrics.get(f"quota.{resource}")
                if ok and sample is not None and sample[0] >= read_at:
                    limits[resource] = (int(sample[1]), None)
                elif ok:
                    limits[resource] = (None, f"{service} did not report a {resource} quota")
                else:
                    when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(read_at))
                    limits[resource] = (None, f"reading the {service} quota failed at {when}")
        if limits:
            result[(c, r, project)] = limits
    return result


def owning_projects(store: Store, cloud: str, region: str) -> set[str]:
    """Projects that own servers, volumes, floating IPs or ports in one cloud region."""
    projects: set[str] = set()
    for kind in OWNING_KINDS:
        records, _ = store.list_resources(kind, cloud=cloud, region=region)
        projects.update(str(r["project_id"]) for r in records if r.get("project_id"))
    return projects


def last_read(store: Store, cloud: str, region: str) -> dict[str, float]:
    """project -> when its quotas were last read (the oldest of its services)."""
    newest = latest(store, "project", [read_metric(s.service) for s in QUOTA_SOURCES])
    result: dict[str, float] = {}
    for (c, r, project), metrics in newest.items():
        if c == cloud and r == region and len(metrics) == len(QUOTA_SOURCES):
            result[project] = min(ts for ts, _value in metrics.values())
    return result


@dataclass
class SweepResult:
    """What one quota sweep of one cloud region did."""

    cloud: str
    region: str
    projects: int = 0
    skipped: int = 0  # read less than quota_interval ago
    failed: list[str] = field(default_factory=list)  # "<project> <service>: <error>"
    requests: int = 0


def samples_of(target: CloudTarget, readings: Iterable[QuotaReading], ts: float) -> list[Sample]:
    """Metric samples of quota readings (limits, and one read marker per service)."""
    samples = []
    for reading in readings:
        base = (target.cloud, target.region, "project", reading.project_id)
        samples.append(Sample(*base, read_metric(reading.service), ts, 0 if reading.error else 1))
        for resource, limit in reading.limits.items():
            samples.append(Sample(*base, f"quota.{resource}", ts, float(limit)))
    return samples


def sweep_target(
    store: Store,
    target: CloudTarget,
    interval: float = DEFAULT_QUOTA_INTERVAL,
    concurrency: int = 4,
    force: bool = False,
    projects: Sequence[str] | None = None,
) -> SweepResult:
    """Read the quotas of the projects of one cloud region that are due (or all, with
    `force`), and record them."""
    now = time.time()
    wanted = (
        sorted(projects)
        if projects is not None
        else sorted(owning_projects(store, target.cloud, target.region))
    )
    result = SweepResult(target.cloud, target.region)
    if not force:
        read_at = last_read(store, target.cloud, target.region)
        due = [p for p in wanted if now - read_at.get(p, 0.0) >= interval]
        result.skipped = len(wanted) - len(due)
        wanted = due
    request_log = RequestLog()
    jobs = [(source, project) for project in wanted for source in QUOTA_SOURCES]
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="quota") as pool:
        readings = list(pool.map(lambda job: read_quota(target, job[0], job[1], request_log), jobs))
    for reading in readings:
        if reading.error:
            result.failed.append(f"{reading.project_id} {reading.service}: {reading.error}")
    record_samples(store, samples_of(target, readings, now))
    result.projects = len(wanted)
    result.requests = request_log.total
    if result.failed:
        log.warning(
            "%s/%s: %d quota reads failed, first: %s",
            target.cloud, target.region, len(result.failed), result.failed[0],
        )  # fmt: skip
    return result


def sweep_cloud(
    store: Store,
    cloud: CloudSpec,
    interval: float = DEFAULT_QUOTA_INTERVAL,
    concurrency: int = 4,
    force: bool = False,
    region: str | None = None,
    projects: Sequence[str] | None = None,
) -> list[SweepResult]:
    """A quota sweep over every region of one cloud (its connections closed after)."""
    with connected(cloud.name, region, cloud.system_cloud, cloud.config_files) as targets:
        return [sweep_target(store, t, interval, concurrency, force, projects) for t in targets]


def sweep_agent_hosting(
    store: Store,
    cloud: CloudSpec,
    interval: float = DEFAULT_AGENT_INTERVAL,
    force: bool = False,
    region: str | None = None,
) -> dict[tuple[str, str], int]:
    """Read the hosting of the L3/DHCP agents that are due (all, with `force`) in a pass
    of the network_agent kind alone; (cloud, region) -> agents read."""
    # imported here: engine.collect imports the listers, which this module need not
    from stackfleet.engine.collect import collect

    results = collect(
        store,
        cloud.name,
        region,
        cloud.system_cloud,
        cloud.config_files,
        kinds=["network_agent"],
        agent_interval=0.0 if force else interval,
        keep_records=False,
    )
    return {
        (r.cloud, r.region): sum(n for label, n in r.requests.items() if "/agents/{uuid}/" in label)
        for r in results
    }


def check_interval(interval: float) -> float:
    """`quota_interval` in seconds, refused when its samples would expire before it."""
    if not 0 < interval <= MAX_QUOTA_INTERVAL:
        raise ConfigError(
            f"quota_interval: {interval:g} s is outside 1 s .. {MAX_QUOTA_INTERVAL:g} s "
            "(raw metric samples are kept six hours)"
        )
    return interval


@dataclass
class QuotaSweepLoop:
    """The daemon's quota job: each `run_once` reads the projects of `clouds` whose
    quotas are older than `interval`; the scheduler repeats it every few minutes
    (sooner, FIRST_PASS_WAIT, while no pass has seen a project yet)."""

    store: Store
    clouds: Sequence[CloudSpec]
    interval: float = DEFAULT_QUOTA_INTERVAL
    concurrency: int = 4
    # why the clouds that could not be swept failed, in the newest run_once
    errors: list[str] = field(default_factory=list)

    def run_once(self) -> list[SweepResult]:
        results: list[SweepResult] = []
        self.errors = []
        for cloud in self.clouds:
            try:
                results.extend(sweep_cloud(self.store, cloud, self.interval, self.concurrency))
            except StackFleetError as exc:
                log.error("quota sweep of %s failed: %s", cloud.name, exc)
                self.errors.append(f"{cloud.name}: {exc}")
        return results
