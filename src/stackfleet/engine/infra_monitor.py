"""Infrastructure monitoring sweeps: probe database servers and RabbitMQ clusters,
record every reading as metric samples, and judge them.

A sweep records each database server (`database_server`) and each RabbitMQ cluster,
node and queue (`rabbitmq_cluster`, `rabbitmq_node`, `queue`) as a resource (its newest
reading under `metrics`, `reachable` false when the probe failed) beside its samples,
as a collection pass records what it listed; the database and RabbitMQ policy packs
(policy/packs/, or the operator's copies) judge those records with the one policy
engine.

The store is the memory between sweeps: a database's previous counters (for rates) and
each metric's history (for rules that must hold "for 5 min") are read back from the
metric samples. The same samples answer the API and /metrics, so those never touch the
probed servers. A target that fails is reported as such (and recorded as ``up`` = 0);
the sweep goes on for the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from stackfleet.core.errors import StackFleetError
from stackfleet.engine.evaluate import evaluate_policy
from stackfleet.model import kind
from stackfleet.policy.filters.metric import MetricFilter
from stackfleet.policy.loader import load_files
from stackfleet.policy.schema import Policy
from stackfleet.policy.view import FleetView, Record
from stackfleet.sources import database as db
from stackfleet.sources import rabbitmq as mq
from stackfleet.store import Store
from stackfleet.store.inventory import current_attrs
from stackfleet.store.metrics import Sample, latest, record_samples

log = logging.getLogger(__name__)

# Previous counters older than this are no base for a rate: probe twice instead.
MAX_PREVIOUS_AGE = 900.0
MAX_CONCURRENCY = 8

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

T = TypeVar("T")
R = TypeVar("R")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def _parallel(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENCY, len(items))) as pool:
        return list(pool.map(func, items))


def _samples(
    cloud: str, region: str, kind: str, resource_id: str, ts: float, values: dict[str, float]
) -> list[Sample]:
    return [
        Sample(cloud, region, kind, resource_id, metric, ts, value)
        for metric, value in values.items()
    ]


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    """A policy of an infrastructure pack that matches a resource now, as the status
    commands show it (the findings table and alerts are the policy engine's)."""

    rule: str  # the policy's name, e.g. database/connections-high
    severity: str
    kind: str
    resource_id: str
    message: str
    advice: str
    # "pending": the newest reading crosses the line but not yet every reading of the
    # policy's window (its `metric` filters): not a finding yet
    state: str = "firing"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "state": self.state,
            "kind": self.kind,
            "resource_id": self.resource_id,
            "message": self.message,
            "advice": self.advice,
        }


def pack_policies(pack: str, files: Sequence[str | Path] = ()) -> list[Policy]:
    """A built-in infrastructure pack (`database`, ...) as the operator tuned it: the
    policies of `files` (copies of the pack, changed) replace the pack's policies of the
    same name; their other policies over the pack's kinds are added."""
    built_in = load_files([f"pack:{pack}"])
    kinds = {p.kind for p in built_in}
    chosen = {p.name: p for p in built_in}
    if files:
        for policy in load_files(list(files)):
            if policy.kind in kinds:
                chosen[policy.name] = policy
    return list(chosen.values())


def judge(
    store: Store, policies: Sequence[Policy], kind_name: str, now: datetime | None = None
) -> dict[str, list[Verdict]]:
    """What `policies` over `kind_name` match at `now` (default: now), by resource id,
    without recording: firing (every filter holds) or pending (all but the `metric`
    window filters: the condition holds now, not yet for the policy's whole window)."""
    view = FleetView(store, now or datetime.now(UTC))
    found: dict[str, list[Verdict]] = {}
    for policy in policies:
        if policy.kind != kind_name or not policy.spec.enabled:
            continue
        firing = _matched(policy, view)
        pending: dict[str, Record] = {}
        severity_of = policy.severity_rule(view)
        windows = [f for f in policy.filters if isinstance(f, MetricFilter)]
        if windows:
            now_only = Policy(
                policy.spec, [f for f in policy.filters if f not in windows], policy.actions
            )
            pending = {rid: r for rid, r in _matched(now_only, view).items() if rid not in firing}
        for state, matched in (("firing", firing), ("pending", pending)):
            for rid, record in matched.items():
                message = policy.summary_of(record)
                if state == "pending":
                    message += " (pending: not yet in every reading of its window)"
                found.setdefault(rid, []).append(
                    Verdict(
                        rule=policy.name,
                        severity=severity_of(record) if severity_of else policy.spec.severity,
                        kind=kind_name,
                        resource_id=rid,
                        message=message,
                        advice=policy.spec.description.strip(),
                        state=state,
                    )
                )
    return found


def _matched(policy: Policy, view: FleetView) -> dict[str, Record]:
    matches = evaluate_policy(policy, view)
    return {
        record["id"]: record
        for record in matches.matches
        if (record["cloud"], record["region"], record["id"]) not in matches.unread
    }


def _verdict_order(verdict: Verdict) -> tuple[int, str]:
    return (SEVERITY_ORDER.get(verdict.severity, 9), verdict.rule)


# --------------------------------------------------------------------------- databases

SERVER_RECORD = kind(db.KIND).record_builder()


@dataclass
class DatabaseStatus:
    """One database server: its reading (or why there is none) and its findings."""

    resource_id: str
    label: str
    cloud: str
    region: str
    ts: float
    values: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    reading: db.DatabaseReading | None = None
    schemas: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def up(self) -> bool:
        return self.error is None and bool(self.values.get("up", 1.0))

    def as_dict(self) -> dict[str, Any]:
        """The status as plain data: the CLI's json/yaml output and the API's body."""
        reading = self.reading
        galera = None
        if self.values.get("galera"):
            state = self.values.get("wsrep_local_state")
            galera = {
                "cluster_size": self.values.get("wsrep_cluster_size"),
                "local_state": (reading.wsrep_state if reading else None)
                or db.WSREP_STATES.get(int(state) if state is not None else 0, ""),
                "ready": bool(self.values.get("wsrep_ready")),
                "primary": bool(self.values.get("wsrep_primary")),
                "flow_control_paused_ratio": self.values.get("wsrep_flow_control_paused_ratio"),
                "recv_queue": self.values.get("wsrep_recv_queue"),
                "recv_queue_avg": self.values.get("wsrep_recv_queue_avg"),
                "send_queue": self.values.get("wsrep_send_queue"),
                "send_queue_avg": self.values.get("wsrep_send_queue_avg"),
            }
        total = sum(s.get("statement_latency_seconds_total", 0.0) for s in self.schemas)
        result: dict[str, Any] = {
            "server": self.label,
            "resource_id": self.resource_id,
            "cloud": self.cloud,
            "region": self.region,
            "up": self.up,
            "error": self.error,
            "probed_at": _iso(self.ts),
            "version": reading.version if reading else None,
            "performance_schema": bool(self.values.get("performance_schema_enabled"))
            if "performance_schema_enabled" in self.values
            else None,
            "galera": galera,
            "metrics": dict(sorted(self.values.items())),
            "schemas": self.schemas,
            "top_statements": [d.as_dict(total) for d in reading.top_statements] if reading else [],
            "lock_blockers": [b.__dict__ for b in reading.blockers] if reading else [],
            "findings": [f.as_dict() for f in self.findings],
            "notes": self.notes,
            "missing_grants": reading.missing_grants if reading else [],
        }
        if reading:
            result["probe"] = {
                "statements": reading.statements,
                "client_seconds": round(reading.probe_seconds, 6),
                "server_seconds": round(reading.server_seconds, 6)
                if reading.server_seconds is not None
                else None,
            }
        return result


def _stored_counters(
    store: Store, target: db.DatabaseTarget, now: float
) -> tuple[float, dict[str, float]] | None:
    newest = latest(store, db.KIND, [*db.COUNTERS, "uptime_seconds"]).get(
        (target.cloud, target.region, target.resource_id)
    )
    if not newest:
        return None
    ts = max(t for t, _ in newest.values())
    if now - ts > MAX_PREVIOUS_AGE or now <= ts:
        return None
    return ts, {metric: value for metric, (t, value) in newest.items() if t == ts}


def _stored_schema_counters(
    store: Store, target: db.DatabaseTarget, ts: float
) -> dict[str, dict[str, float]]:
    prefix = target.resource_id + "/"
    result: dict[str, dict[str, float]] = {}
    for (cloud, region, rid), metrics in latest(store, db.SCHEMA_KIND).items():
        if (cloud, region) != (target.cloud, target.region) or not rid.startswith(prefix):
            continue
        result[rid[len(prefix) :]] = {m: v for m, (t, v) in metrics.items() if t == ts}
    return result


def _schema_id(target: db.DatabaseTarget, schema: str) -> str:
    return f"{target.resource_id}/{schema or '(none)'}"


def _schema_rows(
    reading: db.DatabaseReading,
    previous: dict[str, dict[str, float]] | None,
    interval: float,
) -> list[dict[str, Any]]:
    total = sum(load.latency_seconds for load in reading.schemas)
    rows = []
    for load in reading.schemas:
        row: dict[str, Any] = {
            "schema": load.schema or "(none)",
            "service": load.service,
            **load.metrics(),
            "statement_latency_share": load.latency_seconds / total if total else 0.0,
        }
        before = (previous or {}).get(load.schema or "(none)")
        if before:
            row.update(db.schema_rates(load, before, interval))
        rows.append(row)
    return rows


def _probe_or_error(
    target: db.DatabaseTarget, top: int, schema: str | None, measure: bool
) -> db.DatabaseReading | str:
    try:
        return db.probe_database(target, top=top, schema=schema, measure_server_time=measure)
    except StackFleetError as exc:
        log.warning("database probe failed: %s", exc)
        return str(exc)


def sweep_databases(
    store: Store,
    targets: Sequence[db.DatabaseTarget],
    policies: Sequence[Policy] | None = None,
    *,
    rate_wait: float = 2.0,
    top: int = 10,
    schema: str | None = None,
    measure_server_time: bool = False,
    judged: bool = True,
) -> list[DatabaseStatus]:
    """Probe every target (in parallel), record the readings (samples and a
    `database_server` record each) and judge them with `policies` (default: the
    database pack).

    Rates need a previous reading: the newest stored counters of the server when they
    are recent enough, else a first probe `rate_wait` seconds before the second (0: no
    rates on a first sweep). Without `judged` the statuses carry no verdicts: the
    daemon's pack run after the sweep judges the records (once)."""

    def probe(target: db.DatabaseTarget) -> db.DatabaseReading | str:
        return _probe_or_error(target, top, schema, measure_server_time)

    now = time.time()
    previous: dict[str, tuple[float, dict[str, float], dict[str, dict[str, float]]]] = {}
    for target in targets:
        stored = _stored_counters(store, target, now)
        if stored:
            ts, counters = stored
            previous[target.resource_id] = (
                ts,
                counters,
                _stored_schema_counters(store, target, ts),
            )
    readings = _parallel(probe, list(targets))
    again = [
        i
        for i, (target, reading) in enumerate(zip(targets, readings, strict=True))
        if rate_wait > 0
        and target.resource_id not in previous
        and isinstance(reading, db.DatabaseReading)
    ]
    if again:
        for i in again:
            first = readings[i]
            assert isinstance(first, db.DatabaseReading)
            previous[targets[i].resource_id] = (
                first.ts,
                dict(first.values),
                {load.schema or "(none)": load.metrics() for load in first.schemas},
            )
            _record_database(store, first, [])
        time.sleep(rate_wait)
        for i, reading in zip(again, _parallel(probe, [targets[i] for i in again]), strict=True):
            readings[i] = reading
    statuses = []
    for target, reading in zip(targets, readings, strict=True):
        if isinstance(reading, str):
            ts = time.time()
            record_samples(
                store,
                [Sample(target.cloud, target.region, db.KIND, target.resource_id, "up", ts, 0.0)],
            )
            record_server(store, target, ts, error=reading)
            statuses.append(
                DatabaseStatus(
                    target.resource_id,
                    target.label,
                    target.cloud,
                    target.region,
                    ts,
                    values={"up": 0.0},
                    error=reading,
                )
            )
            continue
        interval = 0.0
        before = previous.get(target.resource_id)
        if before:
            interval = reading.ts - before[0]
            db.derive_rates(reading.values, before[1], interval)
        rows = _schema_rows(reading, before[2] if before else None, interval)
        _record_database(store, reading, rows)
        record_server(store, target, reading.ts, reading=reading)
        notes = list(reading.notes)
        if not before:
            notes.append(
                f"{target.resource_id}: no earlier reading, so no rates (slow queries/s, "
                "lock waits/s, ...) in this sweep"
            )
        statuses.append(
            DatabaseStatus(
                target.resource_id,
                target.label,
                target.cloud,
                target.region,
                reading.ts,
                values=reading.values,
                reading=reading,
                schemas=rows,
                notes=notes,
            )
        )
    if judged:
        _judge_databases(store, statuses, policies)
    return statuses


def _judge_databases(
    store: Store, statuses: Sequence[DatabaseStatus], policies: Sequence[Policy] | None
) -> None:
    if not any(status.up for status in statuses):
        return
    verdicts = judge(store, pack_policies("database") if policies is None else policies, db.KIND)
    for status in statuses:
        if status.up:
            status.findings = sorted(verdicts.get(status.resource_id, []), key=_verdict_order)


def record_server(
    store: Store,
    target: db.DatabaseTarget,
    ts: float,
    reading: db.DatabaseReading | None = None,
    error: str | None = None,
) -> None:
    """Record a database server as the sweep saw it: a `database_server` resource with
    its newest reading, or, when the probe failed, unreachable with its last reading
    kept (the policies other than `database/unreachable` leave it alone)."""
    known: dict[str, Any] = {}
    if reading is None:
        known = current_attrs(store, target.cloud, target.region, db.KIND).get(
            target.resource_id, {}
        )
    obj: dict[str, Any] = {
        **known,
        "id": target.resource_id,
        "name": target.label,
        "project_id": None,
        "host": target.host,
        "port": target.port,
        "probed_at": _iso(ts),
    }
    if reading is not None:
        obj.update(
            status="up",
            reachable=True,
            error=None,
            metrics={**reading.values, "up": 1.0},
            version=reading.version,
            galera=reading.galera,
            wsrep_state=reading.wsrep_state,
            long_query_time=reading.long_query_time,
        )
    else:
        obj.update(
            status="unreachable",
            reachable=False,
            error=error or "the probe failed",
            metrics={**(known.get("metrics") or {}), "up": 0.0},
        )
    store.upsert_resource(target.cloud, target.region, db.KIND, SERVER_RECORD(obj))


def _record_database(
    store: Store, reading: db.DatabaseReading, schema_rows: list[dict[str, Any]]
) -> None:
    target = reading.target
    values = {**reading.values, "up": 1.0}
    samples = _samples(target.cloud, target.region, db.KIND, target.resource_id, reading.ts, values)
    rows = schema_rows or [
        {"schema": load.schema or "(none)", **load.metrics()} for load in reading.schemas
    ]
    for row in rows:
        numbers = {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
        samples += _samples(
            target.cloud,
            target.region,
            db.SCHEMA_KIND,
            _schema_id(target, row["schema"]),
            reading.ts,
            numbers,
        )
    record_samples(store, samples)


def _newest_sweep(
    metrics: dict[str, tuple[float, float]],
) -> tuple[float, dict[str, float]]:
    ts = max(t for t, _ in metrics.values())
    return ts, {m: v for m, (t, v) in metrics.items() if abs(t - ts) < 1e-6}


def stored_database_statuses(
    store: Store, policies: Sequence[Policy] | None = None
) -> list[DatabaseStatus]:
    """The newest recorded state of every probed database server, judged again by
    `policies` (default: the database pack) over the recorded servers (no probe): what
    the API and /metrics show."""
    servers = latest(store, db.KIND)
    schemas = latest(store, db.SCHEMA_KIND)
    statuses = []
    for (cloud, region, rid), metrics in sorted(servers.items()):
        ts, values = _newest_sweep(metrics)
        rows: list[dict[str, Any]] = []
        for (s_cloud, s_region, s_rid), s_metrics in schemas.items():
            if (s_cloud, s_region) != (cloud, region) or not s_rid.startswith(rid + "/"):
                continue
            s_ts, s_values = _newest_sweep(s_metrics)
            if abs(s_ts - ts) < 1e-6:
                name = s_rid[len(rid) + 1 :]
                rows.append({"schema": name, "service": db.schema_service(name), **s_values})
        rows.sort(
            key=lambda row: float(row.get("statement_latency_seconds_total", 0.0)), reverse=True
        )
        up = bool(values.get("up", 1.0))
        statuses.append(
            DatabaseStatus(
                rid,
                rid,
                cloud,
                region,
                ts,
                values=values,
                error=None if up else "the newest probe of this server failed",
                schemas=rows,
            )
        )
    _judge_databases(store, statuses, policies)
    return statuses


# --------------------------------------------------------------------------- RabbitMQ


@dataclass
class BrokerStatus:
    """One RabbitMQ cluster: nodes, queues and findings (or why there are none)."""

    resource_id: str
    label: str
    cloud: str
    region: str
    ts: float
    values: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    cluster_name: str = ""
    version: str = ""
    nodes: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def up(self) -> bool:
        return self.error is None and bool(self.values.get("up", 1.0))

    def as_dict(self) -> dict[str, Any]:
        """The status as plain data: the CLI's json/yaml output and the API's body."""
        return {
            "broker": self.label,
            "resource_id": self.resource_id,
            "cloud": self.cloud,
            "region": self.region,
            "up": self.up,
            "error": self.error,
            "probed_at": _iso(self.ts),
            "cluster_name": self.cluster_name or None,
            "version": self.version or None,
            "metrics": dict(sorted(self.values.items())),
            "nodes": self.nodes,
            "queues": self.queues,
            "findings": [f.as_dict() for f in self.findings],
            "notes": self.notes,
        }


def _queue_row(rid: str, vhost: str, name: str, values: dict[str, float] | None) -> dict[str, Any]:
    role = mq.classify_queue(name)
    return {
        "resource_id": rid,
        "vhost": vhost,
        "name": name,
        "role": role.role,
        "service": role.service or None,
        "host": role.host or None,
        "statistics": values is not None,
        **(values or {}),
    }


CLUSTER_RECORD = kind(mq.CLUSTER_KIND).record_builder()
NODE_RECORD = kind(mq.NODE_KIND).record_builder()
QUEUE_RECORD = kind(mq.QUEUE_KIND).record_builder()
BROKER_KINDS = (mq.CLUSTER_KIND, mq.NODE_KIND, mq.QUEUE_KIND)


def sweep_brokers(
    store: Store,
    targets: Sequence[mq.BrokerTarget],
    policies: Sequence[Policy] | None = None,
    *,
    vhost: str | None = None,
    judged: bool = True,
) -> list[BrokerStatus]:
    """Probe every RabbitMQ cluster, record it, its nodes and queues (samples and
    resources), and judge them with `policies` (default: the RabbitMQ pack; not without
    `judged`: the daemon's pack run after the sweep judges the records)."""

    def probe(target: mq.BrokerTarget) -> mq.BrokerReading | str:
        try:
            return mq.probe_broker(target, vhost=vhost)
        except StackFleetError as exc:
            log.warning("RabbitMQ probe failed: %s", exc)
            return str(exc)

    statuses = []
    for target, reading in zip(targets, _parallel(probe, list(targets)), strict=True):
        if isinstance(reading, str):
            ts = time.time()
            record_samples(
                store,
                [
                    Sample(
                        target.cloud,
                        target.region,
                        mq.CLUSTER_KIND,
                        target.resource_id,
                        "up",
                        ts,
                        0.0,
                    )
                ],
            )
            record_broker_unreachable(store, target, ts, reading)
            statuses.append(
                BrokerStatus(
                    target.resource_id,
                    target.label,
                    target.cloud,
                    target.region,
                    ts,
                    values={"up": 0.0},
                    error=reading,
                )
            )
            continue
        statuses.append(record_broker(store, reading, vhost))
    if judged:
        _judge_brokers(store, statuses, policies)
    return statuses


def _judge_brokers(
    store: Store, statuses: Sequence[BrokerStatus], policies: Sequence[Policy] | None
) -> None:
    if not any(status.up for status in statuses):
        return
    chosen = pack_policies("rabbitmq") if policies is None else policies
    verdicts: dict[str, list[Verdict]] = {}
    for kind_name in BROKER_KINDS:
        verdicts.update(judge(store, chosen, kind_name))
    for status in statuses:
        if not status.up:
            continue
        mine = [status.resource_id]
        mine += [node["resource_id"] for node in status.nodes]
        mine += [queue["resource_id"] for queue in status.queues if queue["statistics"]]
        status.findings = sorted(
            (v for rid in mine for v in verdicts.get(rid, [])),
            key=lambda v: (SEVERITY_ORDER.get(v.severity, 9), v.resource_id, v.rule),
        )


def _broker_fields(target: mq.BrokerTarget, ts: float) -> dict[str, Any]:
    return {"project_id": None, "probed_at": _iso(ts), "reachable": True, "error": None}


def record_broker_unreachable(store: Store, target: mq.BrokerTarget, ts: float, error: str) -> None:
    """The cluster did not answer: it, its nodes and its queues are recorded unread
    (`reachable` false, their last readings kept), so only `rabbitmq/unreachable` judges
    them until a sweep reads them again."""
    cloud, region, rid = target.cloud, target.region, target.resource_id
    known = current_attrs(store, cloud, region, mq.CLUSTER_KIND).get(rid, {})
    cluster = {
        **known,
        "id": rid,
        "name": target.label,
        "project_id": None,
        "status": "unreachable",
        "probed_at": _iso(ts),
        "reachable": False,
        "error": error,
        "metrics": {**(known.get("metrics") or {}), "up": 0.0},
    }
    store.upsert_resource(cloud, region, mq.CLUSTER_KIND, CLUSTER_RECORD(cluster))
    for kind_name, build in ((mq.NODE_KIND, NODE_RECORD), (mq.QUEUE_KIND, QUEUE_RECORD)):
        for child_id, attrs in current_attrs(store, cloud, region, kind_name).items():
            if child_id.startswith(rid + "/") and attrs.get("reachable") is not False:
                unread = {**attrs, "reachable": False, "error": error, "status": "unreachable"}
                store.upsert_resource(cloud, region, kind_name, build(unread))


def record_broker(
    store: Store, reading: mq.BrokerReading, vhost: str | None = None
) -> BrokerStatus:
    """Record one cluster's reading: samples, and the cluster, its nodes and its queues
    as resources. Nodes and queues of the cluster (of `vhost`, for a vhost sweep) that
    the reading no longer has are gone."""
    target, ts = reading.target, reading.ts
    cloud, region, rid = target.cloud, target.region, target.resource_id
    samples = _samples(cloud, region, mq.CLUSTER_KIND, rid, ts, {**reading.values, "up": 1.0})
    for node in reading.nodes:
        samples += _samples(cloud, region, mq.NODE_KIND, reading.node_id(node), ts, node.values)
    for queue in reading.queues:
        if queue.values is not None:
            samples += _samples(
                cloud, region, mq.QUEUE_KIND, reading.queue_id(queue), ts, queue.values
            )
    record_samples(store, samples)
    common = _broker_fields(target, ts)
    cluster = {
        **common,
        "id": rid,
        "name": target.label,
        "status": "up",
        "metrics": {**reading.values, "up": 1.0},
        "cluster_name": reading.cluster_name,
        "version": reading.version,
    }
    store.upsert_resource(cloud, region, mq.CLUSTER_KIND, CLUSTER_RECORD(cluster))
    nodes = []
    seen_nodes = set()
    for node in reading.nodes:
        node_id = reading.node_id(node)
        seen_nodes.add(node_id)
        record = {
            **common,
            "id": node_id,
            "name": node.name,
            "status": "running" if node.values.get("running", 1.0) else "down",
            "broker_id": rid,
            "broker_name": target.label,
            "partitions_with": list(node.partitions),
            "partitions_text": ", ".join(node.partitions) or "another node",
            "metrics": dict(node.values),
        }
        store.upsert_resource(cloud, region, mq.NODE_KIND, NODE_RECORD(record))
        nodes.append(
            {
                "name": node.name,
                "resource_id": node_id,
                **node.values,
                "partitions_with": node.partitions,
            }
        )
    queues = []
    seen_queues = set()
    for queue in reading.queues:
        queue_id = reading.queue_id(queue)
        seen_queues.add(queue_id)
        role = queue.role
        record = {
            **common,
            "id": queue_id,
            "name": queue.name,
            "status": queue.state or None,
            "broker_id": rid,
            "broker_name": target.label,
            "vhost": queue.vhost,
            "role": role.role,
            "service": role.service or None,
            "host": role.host or None,
            "where": f" on {role.host}" if role.host else "",
            "statistics": queue.values is not None,
            "metrics": dict(queue.values or {}),
        }
        store.upsert_resource(cloud, region, mq.QUEUE_KIND, QUEUE_RECORD(record))
        queues.append(_queue_row(queue_id, queue.vhost, queue.name, queue.values))
    _mark_gone(store, cloud, region, mq.NODE_KIND, rid + "/", seen_nodes)
    prefix = rid + "/" if vhost is None else mq.queue_resource_id(rid, vhost, "")
    _mark_gone(store, cloud, region, mq.QUEUE_KIND, prefix, seen_queues)
    return BrokerStatus(
        rid,
        target.label,
        cloud,
        region,
        ts,
        values={**reading.values, "up": 1.0},
        cluster_name=reading.cluster_name,
        version=reading.version,
        nodes=nodes,
        queues=queues,
        notes=list(reading.notes),
    )


def _mark_gone(
    store: Store, cloud: str, region: str, kind_name: str, prefix: str, seen: set[str]
) -> None:
    """Resources under `prefix` a successful reading no longer has are gone (their
    findings resolve at the next evaluation)."""
    for rid in current_attrs(store, cloud, region, kind_name):
        if rid.startswith(prefix) and rid not in seen:
            store.mark_resource_gone(cloud, region, kind_name, rid)


def stored_broker_statuses(
    store: Store, policies: Sequence[Policy] | None = None
) -> list[BrokerStatus]:
    """The newest recorded state of every probed RabbitMQ cluster, judged again by
    `policies` (default: the RabbitMQ pack) over the recorded resources."""
    clusters = latest(store, mq.CLUSTER_KIND)
    node_samples = latest(store, mq.NODE_KIND)
    queue_samples = latest(store, mq.QUEUE_KIND)
    statuses = []
    for (cloud, region, rid), metrics in sorted(clusters.items()):
        ts, values = _newest_sweep(metrics)
        up = bool(values.get("up", 1.0))
        status = BrokerStatus(
            rid,
            rid,
            cloud,
            region,
            ts,
            values=values,
            error=None if up else "the newest probe of this broker failed",
        )
        statuses.append(status)
        if not up:
            continue
        for (n_cloud, n_region, n_rid), n_metrics in sorted(node_samples.items()):
            if (n_cloud, n_region) != (cloud, region) or not n_rid.startswith(rid + "/"):
                continue
            n_ts, n_values = _newest_sweep(n_metrics)
            if abs(n_ts - ts) > 1e-6:
                continue
            name = n_rid[len(rid) + 1 :]
            status.nodes.append({"name": name, "resource_id": n_rid, **n_values})
        for (q_cloud, q_region, q_rid), q_metrics in sorted(queue_samples.items()):
            if (q_cloud, q_region) != (cloud, region) or not q_rid.startswith(rid + "/"):
                continue
            q_ts, q_values = _newest_sweep(q_metrics)
            if abs(q_ts - ts) > 1e-6:
                continue  # gone since, or not in the newest sweep
            _broker, vhost, name = mq.split_queue_resource_id(q_rid)
            status.queues.append(_queue_row(q_rid, vhost, name, q_values))
    _judge_brokers(store, statuses, policies)
    return statuses


# --------------------------------------------------------------------------- loop


@dataclass
class InfraMonitorLoop:
    """The daemon's infrastructure job: `run_once` sweeps the configured database
    servers and RabbitMQ clusters; the scheduler repeats it. Rates come from the
    previous sweep's stored counters, so a sweep never probes twice."""

    store: Store
    databases: Sequence[db.DatabaseTarget]
    brokers: Sequence[mq.BrokerTarget]
    # the policies judging the database servers (None: the database pack)
    database_policies: Sequence[Policy] | None = None
    # the policies judging the RabbitMQ clusters, nodes and queues (None: the pack)
    rabbitmq_policies: Sequence[Policy] | None = None
    # called with each sweep's statuses (serve records findings and alerts there)
    after_sweep: Callable[[list[DatabaseStatus], list[BrokerStatus]], Any] | None = None

    def run_once(self) -> tuple[list[DatabaseStatus], list[BrokerStatus]]:
        """One sweep of every target. The statuses carry verdicts only without an
        `after_sweep` hook: with one, the hook's pack run judges the records, and
        judging them here too would evaluate every pack policy twice per sweep."""
        judged = self.after_sweep is None
        databases = (
            sweep_databases(
                self.store, self.databases, self.database_policies, rate_wait=0, judged=judged
            )
            if self.databases
            else []
        )
        brokers = (
            sweep_brokers(self.store, self.brokers, self.rabbitmq_policies, judged=judged)
            if self.brokers
            else []
        )
        if self.after_sweep is not None:
            self.after_sweep(databases, brokers)
        return databases, brokers
