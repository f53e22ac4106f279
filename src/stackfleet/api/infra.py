"""Infrastructure monitoring over HTTP: ``GET /v1/databases``, ``GET /v1/queues`` and
their gauges on ``/metrics``.

Both answer from the store — the newest recorded probe of each database server and
RabbitMQ cluster (written by ``stackfleet db status`` / ``mq status`` or a monitoring
loop), judged again by the policies in force — so a request never touches the
probed servers. ``install(app)`` adds the routes and the collector to one app.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from stackfleet.api.collectors import Families, Gauge, StoreCollector
from stackfleet.api.deps import CloudQuery, RegionQuery, StoreDep
from stackfleet.core.errors import StackFleetError
from stackfleet.engine.infra_monitor import (
    BrokerStatus,
    DatabaseStatus,
    pack_policies,
    stored_broker_statuses,
    stored_database_statuses,
)
from stackfleet.sources.infra_config import InfraConfig, load_infra_config

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
    policies = pack_policies("database", _config().policies)
    statuses = [s for s in stored_database_statuses(store, policies) if _wanted(s, cloud, region)]
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
    policies = pack_policies("rabbitmq", _config().policies)
    brokers, queues, findings = [], [], []
    for status in stored_broker_statuses(store, policies):
        if not _wanted(status, cloud, region):
            continue
        body = status.as_dict()
        for queue in body.pop("queues"):
            if (not vhost or queue["vhost"] == vhost) and (not role or queue["role"] == role):
                queues.append({"broker": status.label, **queue})
        findings += body.pop("findings")
        brokers.append(body)
    return {"brokers": brokers, "queues": queues, "findings": findings}


InfraReading = tuple[list[DatabaseStatus], list[BrokerStatus]]
FINDING_LABELS = ("cloud", "region", "kind", "resource_id", "rule", "severity", "state")


def _numbers(row: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """The numeric fields of a probed row (a schema, node or queue), as floats."""
    for metric, value in row.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield metric, float(value)


class InfraCollector(StoreCollector[InfraReading]):
    """Gauges of the newest probes, read from the store at each scrape. Most names depend
    on what was probed, so they are made as the readings come (only the findings gauge
    is declared)."""

    gauges = {
        "stackfleet_infra_finding": Gauge(
            "1 for each policy of the database and RabbitMQ packs that matches a database "
            "server, RabbitMQ cluster, node or queue (state pending or firing).",
            FINDING_LABELS,
        )
    }
    topic = "infrastructure readings"
    unavailable = (SQLAlchemyError, StackFleetError)

    def read(self) -> InfraReading:
        config = load_infra_config()
        return (
            stored_database_statuses(self.store, pack_policies("database", config.policies)),
            stored_broker_statuses(self.store, pack_policies("rabbitmq", config.policies)),
        )

    def fill(self, families: Families, reading: InfraReading) -> None:
        databases, brokers = reading
        server = ["cloud", "region", "server"]
        for db in databases:
            base = [db.cloud, db.region, db.resource_id]
            families.family(
                "stackfleet_database_last_probe_timestamp_seconds",
                "When the database server was last probed, as a Unix time.",
                server,
            ).add_metric(base, db.ts)
            for metric, value in db.values.items():
                families.family(
                    f"stackfleet_database_{metric}",
                    f"Database server {metric.replace('_', ' ')}, as last probed.",
                    server,
                ).add_metric(base, value)
            for row in db.schemas:
                labels = [*base, row["schema"], row.get("service") or ""]
                for metric, number in _numbers(row):
                    families.family(
                        f"stackfleet_database_schema_{metric}",
                        f"Statements of one schema: {metric.replace('_', ' ')} "
                        "(performance_schema digests).",
                        [*server, "schema", "service"],
                    ).add_metric(labels, number)
            for verdict in db.findings:
                families.add(
                    "stackfleet_infra_finding",
                    [
                        db.cloud,
                        db.region,
                        verdict.kind,
                        verdict.resource_id,
                        verdict.rule,
                        verdict.severity,
                        verdict.state,
                    ],
                    1,
                )
        broker_labels = ["cloud", "region", "broker"]
        for broker in brokers:
            base = [broker.cloud, broker.region, broker.resource_id]
            families.family(
                "stackfleet_rabbitmq_last_probe_timestamp_seconds",
                "When the RabbitMQ cluster was last probed, as a Unix time.",
                broker_labels,
            ).add_metric(base, broker.ts)
            for metric, value in broker.values.items():
                families.family(
                    f"stackfleet_rabbitmq_{metric}",
                    f"RabbitMQ cluster {metric.replace('_', ' ')}, as last probed.",
                    broker_labels,
                ).add_metric(base, value)
            for node in broker.nodes:
                for metric, number in _numbers(node):
                    families.family(
                        f"stackfleet_rabbitmq_node_{metric}",
                        f"RabbitMQ node {metric.replace('_', ' ')}, as last probed.",
                        [*broker_labels, "node"],
                    ).add_metric([*base, node["name"]], number)
            for queue in broker.queues:
                labels = [*base, queue["vhost"], queue["name"], queue["role"]]
                labels.append(queue.get("service") or "")
                for metric, number in _numbers(queue):
                    families.family(
                        f"stackfleet_rabbitmq_queue_{metric}",
                        f"RabbitMQ queue {metric.replace('_', ' ')}, as last probed.",
                        [*broker_labels, "vhost", "queue", "role", "service"],
                    ).add_metric(labels, number)
            for f in broker.findings:
                families.add(
                    "stackfleet_infra_finding",
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


def install(app: FastAPI) -> None:
    """Add the infrastructure routes to `app` and its gauges to the app's registry."""
    app.include_router(router)
    app.state.registry.register(InfraCollector(app.state.store))
