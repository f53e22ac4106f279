"""Infrastructure monitoring over HTTP: ``GET /v1/databases``, ``GET /v1/queues`` and
their gauges on ``/metrics``.

Both answer from the store — the newest recorded probe of each database server and
RabbitMQ cluster (written by ``stackfleet db status`` / ``mq status`` or a monitoring
loop), judged again by the threshold rules in force — so a request never touches the
probed servers. ``install(app)`` adds the routes and the collector to one app.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from stackfleet.api.deps import CloudQuery, RegionQuery, StoreDep
from stackfleet.core.errors import StackFleetError
from stackfleet.engine.infra_monitor import stored_broker_statuses, stored_database_statuses
from stackfleet.sources.infra_config import InfraConfig, load_infra_config
from stackfleet.store import Store

log = logging.getLogger(__name__)

router = APIRouter(tags=["infrastructure"])


class DatabaseList(BaseModel):
    """The newest probe of every database server, with its findings."""

    model_config = ConfigDict(extra="allow")

    databases: list[dict[str, Any]] = Field(
        description="One status per server: up, metrics (connections, rates, Galera "
        "state, ...), per-schema statement load, findings (rule, severity, state, "
        "message, advice) and notes."
    )


class QueueList(BaseModel):
    """The newest probe of every RabbitMQ cluster: brokers, queues and findings."""

    model_config = ConfigDict(extra="allow")

    brokers: list[dict[str, Any]] = Field(
        description="One per cluster: up, totals and rates, nodes (memory, file "
        "descriptors, alarms, partitions)."
    )
    queues: list[dict[str, Any]] = Field(
        description="Queues with depth, consumers, unacknowledged messages, rates and the "
        "OpenStack role read from the name (rpc, notification, reply, fanout, other)."
    )
    findings: list[dict[str, Any]]


def _config() -> InfraConfig:
    # read at each request: threshold changes apply without a restart
    return load_infra_config()


def _wanted(item: Any, cloud: str | None, region: str | None) -> bool:
    return (not cloud or item.cloud == cloud) and (not region or item.region == region)


@router.get("/v1/databases", response_model=DatabaseList)
def list_databases(store: StoreDep, cloud: CloudQuery = None, region: RegionQuery = None) -> Any:
    """Database servers as last probed: load, locks, slow statements, Galera, findings."""
    rules = _config().database_rules
    statuses = [s for s in stored_database_statuses(store, rules) if _wanted(s, cloud, region)]
    return {"databases": [s.as_dict() for s in statuses]}


@router.get("/v1/queues", response_model=QueueList)
def list_queues(
    store: StoreDep,
    cloud: CloudQuery = None,
    region: RegionQuery = None,
    vhost: Annotated[str | None, Query(description="Only queues of this vhost.")] = None,
    role: Annotated[
        str | None,
        Query(description="Only queues of this role: rpc, notification, reply, fanout, other."),
    ] = None,
) -> Any:
    """RabbitMQ clusters as last probed: nodes, queues and findings."""
    rules = _config().rabbitmq_rules
    brokers, queues, findings = [], [], []
    for status in stored_broker_statuses(store, rules):
        if not _wanted(status, cloud, region):
            continue
        body = status.as_dict()
        for queue in body.pop("queues"):
            if (not vhost or queue["vhost"] == vhost) and (not role or queue["role"] == role):
                queues.append({"broker": status.label, **queue})
        findings += body.pop("findings")
        brokers.append(body)
    return {"brokers": brokers, "queues": queues, "findings": findings}


Family = GaugeMetricFamily | CounterMetricFamily


def _family(families: dict[str, Family], name: str, help_text: str, labels: list[str]) -> Family:
    if name not in families:
        if name.endswith("_total"):
            families[name] = CounterMetricFamily(name[: -len("_total")], help_text, labels=labels)
        else:
            families[name] = GaugeMetricFamily(name, help_text, labels=labels)
    return families[name]


class InfraCollector:
    """Gauges of the newest probes, read from the store at each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> Iterable[Metric]:
        # names depend on what was probed; nothing to check at registration
        return []

    def collect(self) -> Iterable[Metric]:
        try:
            config = load_infra_config()
            databases = stored_database_statuses(self.store, config.database_rules)
            brokers = stored_broker_statuses(self.store, config.rabbitmq_rules)
        except (SQLAlchemyError, StackFleetError) as exc:  # the fleet gauges still answer
            log.warning("metrics scrape: infrastructure readings unavailable: %s", exc)
            return []
        families: dict[str, Family] = {}
        finding_labels = ["cloud", "region", "kind", "resource_id", "rule", "severity", "state"]
        findings = GaugeMetricFamily(
            "stackfleet_infra_finding",
            "1 for each threshold rule that holds on a database server, RabbitMQ node or "
            "queue (state pending or firing).",
            labels=finding_labels,
        )
        families["stackfleet_infra_finding"] = findings
        for db in databases:
            base = [db.cloud, db.region, db.resource_id]
            _family(
                families,
                "stackfleet_database_last_probe_timestamp_seconds",
                "When the database server was last probed, as a Unix time.",
                ["cloud", "region", "server"],
            ).add_metric(base, db.ts)
            for metric, value in db.values.items():
                _family(
                    families,
                    f"stackfleet_database_{metric}",
                    f"Database server {metric.replace('_', ' ')}, as last probed.",
                    ["cloud", "region", "server"],
                ).add_metric(base, value)
            for row in db.schemas:
                labels = [*base, row["schema"], row.get("service") or ""]
                for metric, value in row.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        _family(
                            families,
                            f"stackfleet_database_schema_{metric}",
                            f"Statements of one schema: {metric.replace('_', ' ')} "
                            "(performance_schema digests).",
                            ["cloud", "region", "server", "schema", "service"],
                        ).add_metric(labels, float(value))
            for f in db.findings:
                findings.add_metric(
                    [db.cloud, db.region, f.kind, f.resource_id, f.rule, f.severity, f.state], 1
                )
        for broker in brokers:
            base = [broker.cloud, broker.region, broker.resource_id]
            _family(
                families,
                "stackfleet_rabbitmq_last_probe_timestamp_seconds",
                "When the RabbitMQ cluster was last probed, as a Unix time.",
                ["cloud", "region", "broker"],
            ).add_metric(base, broker.ts)
            for metric, value in broker.values.items():
                _family(
                    families,
                    f"stackfleet_rabbitmq_{metric}",
                    f"RabbitMQ cluster {metric.replace('_', ' ')}, as last probed.",
                    ["cloud", "region", "broker"],
                ).add_metric(base, value)
            for node in broker.nodes:
                for metric, value in node.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        _family(
                            families,
                            f"stackfleet_rabbitmq_node_{metric}",
                            f"RabbitMQ node {metric.replace('_', ' ')}, as last probed.",
                            ["cloud", "region", "broker", "node"],
                        ).add_metric([*base, node["name"]], float(value))
            for queue in broker.queues:
                labels = [
                    *base,
                    queue["vhost"],
                    queue["name"],
                    queue["role"],
                    queue.get("service") or "",
                ]
                for metric, value in queue.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        _family(
                            families,
                            f"stackfleet_rabbitmq_queue_{metric}",
                            f"RabbitMQ queue {metric.replace('_', ' ')}, as last probed.",
                            ["cloud", "region", "broker", "vhost", "queue", "role", "service"],
                        ).add_metric(labels, float(value))
            for f in broker.findings:
                findings.add_metric(
                    [
                        broker.cloud,
                        broker.region,
                        f.kind,
                        f.resource_id,
                        f.rule,
                        f.severity,
                        f.state,
                    ],
                    1,
                )
        return list(families.values())


def install(app: FastAPI) -> None:
    """Add the infrastructure routes to `app` and its gauges to the app's registry."""
    app.include_router(router)
    app.state.registry.register(InfraCollector(app.state.store))
