"""Probe a RabbitMQ cluster through its management HTTP API: nodes, queues, rates.

The management plugin must be on (``rabbitmq-plugins enable rabbitmq_management``); the
user needs the ``monitoring`` tag (or ``administrator``). Three reads per sweep:
``/api/overview``, ``/api/nodes`` and ``/api/queues`` (paged, only the columns used).

OpenStack's services talk over oslo.messaging, whose queue names say who should be
consuming them: ``compute.<host>`` is nova-compute on that host, ``conductor`` the shared
topic of every nova-conductor, ``cinder-volume.<host>@<backend>`` one Cinder backend,
``reply_<uuid>`` and ``<topic>_fanout_<uuid>`` belong to one process, and
``<topic>.<priority>`` (``versioned_notifications.info``) are notifications. An RPC
queue with no consumer therefore means a dead service, and the findings say which.

Two quirks of the management API: statistics lag by the collection interval (5 s by
default), and queues that were idle when the plugin was enabled report no statistics
at all until they next change. Such queues are shown as "no statistics", never as zero.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

from stackfleet.core.errors import CloudError, ConfigError
from stackfleet.core.redaction import redact_url

log = logging.getLogger(__name__)

CLUSTER_KIND = "rabbitmq_cluster"
NODE_KIND = "rabbitmq_node"
QUEUE_KIND = "queue"
DEFAULT_URL = "http://guest:guest@127.0.0.1:15672"
PAGE_SIZE = 500

QUEUE_COLUMNS = (
    "name",
    "vhost",
    "type",
    "state",
    "durable",
    "auto_delete",
    "exclusive",
    "consumers",
    "messages",
    "messages_ready",
    "messages_unacknowledged",
    "memory",
    "idle_since",
    "message_stats.publish_details.rate",
    "message_stats.deliver_get_details.rate",
    "message_stats.ack_details.rate",
)
NODE_COLUMNS = (
    "name",
    "running",
    "type",
    "mem_used",
    "mem_limit",
    "mem_alarm",
    "fd_used",
    "fd_total",
    "sockets_used",
    "sockets_total",
    "proc_used",
    "proc_total",
    "disk_free",
    "disk_free_limit",
    "disk_free_alarm",
    "partitions",
    "uptime",
)

# oslo.messaging RPC topics of OpenStack services -> the service that consumes them.
RPC_TOPICS: dict[str, str] = {
    "compute": "nova-compute",
    "conductor": "nova-conductor",
    "scheduler": "nova-scheduler",
    "consoleauth": "nova-consoleauth",
    "q-plugin": "neutron-server",
    "q-l3-plugin": "neutron-server",
    "q-reports-plugin": "neutron-server",
    "q-server-resource-versions": "neutron-server",
    "dhcp_agent": "neutron-dhcp-agent",
    "l3_agent": "neutron-l3-agent",
    "metering_agent": "neutron-metering-agent",
    "cinder-scheduler": "cinder-scheduler",
    "cinder-volume": "cinder-volume",
    "cinder-backup": "cinder-backup",
    "ironic.conductor_manager": "ironic-conductor",
    "engine": "heat-engine",
    "manila-scheduler": "manila-scheduler",
    "manila-share": "manila-share",
    "manila-data": "manila-data",
    "magnum-conductor": "magnum-conductor",
    "octavia_prov": "octavia-driver-agent",
    "central": "designate-central",
    "worker": "designate-worker",
    "trove-conductor": "trove-conductor",
    "trove-taskmanager": "trove-taskmanager",
}
# Neutron's agent notification topics (q-agent-notifier-port-update, ...)
AGENT_NOTIFIER = "q-agent-notifier-"
NOTIFICATION = re.compile(
    r"^(?:.*_)?(?:versioned_)?notifications\.(?:audit|critical|debug|info|warn|warning|error|sample)$"
)
REPLY = re.compile(r"^reply_[0-9a-f]{32}$")
FANOUT = re.compile(r"_fanout_[0-9a-f]{32}$")


class BrokerProbeError(CloudError):
    """The management API could not be read (unreachable, refused, not RabbitMQ)."""


@dataclass(frozen=True)
class BrokerTarget:
    """A RabbitMQ cluster's management API."""

    url: str = "http://127.0.0.1:15672"
    user: str = "guest"
    # never in a repr: targets end up in logs and error messages
    password: str = field(default="guest", repr=False)
    name: str | None = None
    cloud: str = ""
    region: str = ""
    timeout: float = 10.0

    @property
    def resource_id(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"

    @property
    def label(self) -> str:
        return self.name or self.resource_id

    @classmethod
    def from_url(cls, url: str, **extra: Any) -> BrokerTarget:
        """A target from ``http://user:password@host:15672`` (credentials default to
        guest/guest, which RabbitMQ accepts only from localhost)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"RabbitMQ management URL {redact_url(url)!r} is not of the form "
                "http://user:password@host:15672"
            )
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"RabbitMQ management URL {redact_url(url)!r}: bad port") from exc
        netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
        if ":" in parts.hostname:
            netloc = f"[{parts.hostname}]" + (f":{port}" if port else "")
        clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        return cls(
            url=clean,
            user=unquote(parts.username) if parts.username else "guest",
            password=unquote(parts.password) if parts.password else "guest",
            **extra,
        )


@dataclass(frozen=True)
class QueueRole:
    """What a queue is for, read from its oslo.messaging name."""

    role: str  # rpc, notification, reply, fanout, other
    service: str = ""
    host: str = ""


def classify_queue(name: str) -> QueueRole:
    """The role of a queue by its name: compute.cmp1 -> rpc of nova-compute on cmp1."""
    if REPLY.match(name):
        return QueueRole("reply")
    if FANOUT.search(name):
        return QueueRole("fanout")
    if NOTIFICATION.match(name):
        return QueueRole("notification")
    for topic in sorted(RPC_TOPICS, key=len, reverse=True):
        if name == topic:
            return QueueRole("rpc", RPC_TOPICS[topic])
        if name.startswith(topic + "."):
            return QueueRole("rpc", RPC_TOPICS[topic], name[len(topic) + 1 :])
    if name.startswith(AGENT_NOTIFIER):
        return QueueRole("rpc", "neutron agents")
    return QueueRole("other")


def queue_resource_id(broker: str, vhost: str, name: str) -> str:
    """``<host:port>/<vhost, %-encoded>/<queue>``: the default vhost "/" is "%2F"."""
    return f"{broker}/{quote(vhost, safe='')}/{name}"


def split_queue_resource_id(resource_id: str) -> tuple[str, str, str]:
    """(broker, vhost, queue) of a queue resource id."""
    broker, vhost, name = resource_id.split("/", 2)
    return broker, unquote(vhost), name


@dataclass
class QueueReading:
    """One queue as the management API reports it."""

    vhost: str
    name: str
    role: QueueRole
    type: str
    state: str
    durable: bool
    auto_delete: bool
    exclusive: bool
    # None when the management API has no statistics for the queue yet
    values: dict[str, float] | None

    def labels(self) -> dict[str, str]:
        return {
            "vhost": self.vhost,
            "queue": self.name,
            "role": self.role.role,
            "service": self.role.service,
            "host": self.role.host,
            "where": f" on {self.role.host}" if self.role.host else "",
        }


@dataclass
class NodeReading:
    """One RabbitMQ node."""

    name: str
    values: dict[str, float]
    partitions: list[str] = field(default_factory=list)

    def labels(self) -> dict[str, str]:
        return {"node": self.name, "partitions_with": ", ".join(self.partitions)}


@dataclass
class BrokerReading:
    """What one sweep of one RabbitMQ cluster saw."""

    target: BrokerTarget
    ts: float
    cluster_name: str
    version: str
    values: dict[str, float]
    nodes: list[NodeReading]
    queues: list[QueueReading]
    notes: list[str] = field(default_factory=list)
    probe_seconds: float = 0.0

    def node_id(self, node: NodeReading) -> str:
        return f"{self.target.resource_id}/{node.name}"

    def queue_id(self, queue: QueueReading) -> str:
        return queue_resource_id(self.target.resource_id, queue.vhost, queue.name)


def _get(session: requests.Session, target: BrokerTarget, path: str, **params: Any) -> Any:
    url = f"{target.url}{path}"
    try:
        response = session.get(url, params=params, timeout=target.timeout)
    except requests.RequestException as exc:
        raise BrokerProbeError(
            f"{target.resource_id}: the RabbitMQ management API at {target.url} does not "
            f"answer ({type(exc).__name__}); is the plugin on? "
            "(rabbitmq-plugins enable rabbitmq_management)"
        ) from exc
    if response.status_code == 401:
        raise BrokerProbeError(
            f"{target.resource_id}: RabbitMQ refused user {target.user!r}: check the user and "
            "password (the guest user may log in from localhost only)"
        )
    if response.status_code == 403:
        raise BrokerProbeError(
            f"{target.resource_id}: user {target.user!r} may not read {path}: give it the "
            f"monitoring tag (rabbitmqctl set_user_tags {target.user} monitoring)"
        )
    if response.status_code != 200:
        raise BrokerProbeError(
            f"{target.resource_id}: {path} answered HTTP {response.status_code}: "
            f"{response.text[:200]}"
        )
    try:
        return response.json()
    except ValueError as exc:
        raise BrokerProbeError(
            f"{target.resource_id}: {target.url}{path} did not answer JSON: is this the "
            "RabbitMQ management API?"
        ) from exc


def _rate(stats: Any, key: str) -> float | None:
    if not isinstance(stats, dict):
        return None
    details = stats.get(key)
    if isinstance(details, dict) and isinstance(details.get("rate"), int | float):
        return float(details["rate"])
    return None


def _ratio(used: Any, total: Any) -> float | None:
    if isinstance(used, int | float) and isinstance(total, int | float) and total > 0:
        return float(used) / float(total)
    return None


def _node(raw: dict[str, Any]) -> NodeReading:
    values: dict[str, float] = {"running": 1.0 if raw.get("running") else 0.0}
    numbers = {
        "mem_used": "mem_used_bytes",
        "mem_limit": "mem_limit_bytes",
        "fd_used": "fd_used",
        "fd_total": "fd_total",
        "sockets_used": "sockets_used",
        "sockets_total": "sockets_total",
        "proc_used": "proc_used",
        "proc_total": "proc_total",
        "disk_free": "disk_free_bytes",
        "disk_free_limit": "disk_free_limit_bytes",
    }
    for key, metric in numbers.items():
        if isinstance(raw.get(key), int | float):
            values[metric] = float(raw[key])
    if isinstance(raw.get("uptime"), int | float):
        values["uptime_seconds"] = raw["uptime"] / 1000  # milliseconds in the API
    for key in ("mem_alarm", "disk_free_alarm"):
        if key in raw:
            values[key] = 1.0 if raw[key] else 0.0
    for metric, used, total in (
        ("mem_used_ratio", "mem_used", "mem_limit"),
        ("fd_used_ratio", "fd_used", "fd_total"),
        ("sockets_used_ratio", "sockets_used", "sockets_total"),
    ):
        ratio = _ratio(raw.get(used), raw.get(total))
        if ratio is not None:
            values[metric] = ratio
    partitions = [str(p) for p in raw.get("partitions") or []]
    if raw.get("running"):
        values["partitions"] = float(len(partitions))
    return NodeReading(name=str(raw.get("name", "")), values=values, partitions=partitions)


def _queue(raw: dict[str, Any]) -> QueueReading:
    name = str(raw.get("name", ""))
    values: dict[str, float] | None = None
    if isinstance(raw.get("consumers"), int):
        values = {"consumers": float(raw["consumers"])}
        for key in ("messages", "messages_ready", "messages_unacknowledged"):
            if isinstance(raw.get(key), int | float):
                values[key] = float(raw[key])
        if isinstance(raw.get("memory"), int | float):
            values["memory_bytes"] = float(raw["memory"])
        stats = raw.get("message_stats")
        for key, metric in (
            ("publish_details", "publish_per_second"),
            ("deliver_get_details", "deliver_per_second"),
            ("ack_details", "ack_per_second"),
        ):
            rate = _rate(stats, key)
            if rate is not None:
                values[metric] = rate
    return QueueReading(
        vhost=str(raw.get("vhost", "")),
        name=name,
        role=classify_queue(name),
        type=str(raw.get("type", "")),
        state=str(raw.get("state", "")),
        durable=bool(raw.get("durable")),
        auto_delete=bool(raw.get("auto_delete")),
        exclusive=bool(raw.get("exclusive")),
        values=values,
    )


def probe_broker(
    target: BrokerTarget, *, vhost: str | None = None, now: float | None = None
) -> BrokerReading:
    """One sweep of a RabbitMQ cluster (only the queues of `vhost` when given)."""
    started = time.perf_counter()
    ts = time.time() if now is None else now
    with requests.Session() as session:
        session.auth = (target.user, target.password)
        overview = _get(session, target, "/api/overview")
        if not isinstance(overview, dict) or "rabbitmq_version" not in overview:
            raise BrokerProbeError(
                f"{target.resource_id}: {target.url}/api/overview is not a RabbitMQ overview"
            )
        nodes = _get(session, target, "/api/nodes", columns=",".join(NODE_COLUMNS))
        path = f"/api/queues/{quote(vhost, safe='')}" if vhost else "/api/queues"
        raw_queues: list[dict[str, Any]] = []
        page = 1
        while True:
            body = _get(
                session,
                target,
                path,
                page=page,
                page_size=PAGE_SIZE,
                columns=",".join(QUEUE_COLUMNS),
            )
            raw_queues.extend(body.get("items", []))
            if page >= int(body.get("page_count", 1)):
                break
            page += 1
    totals = overview.get("queue_totals") or {}
    objects = overview.get("object_totals") or {}
    stats = overview.get("message_stats") or {}
    values: dict[str, float] = {}
    for key in ("messages", "messages_ready", "messages_unacknowledged"):
        if isinstance(totals.get(key), int | float):
            values[key] = float(totals[key])
    for key in ("connections", "channels", "consumers", "queues"):
        if isinstance(objects.get(key), int | float):
            values[key] = float(objects[key])
    for key, metric in (
        ("publish_details", "publish_per_second"),
        ("deliver_get_details", "deliver_per_second"),
    ):
        rate = _rate(stats, key)
        if rate is not None:
            values[metric] = rate
    queues = [_queue(raw) for raw in raw_queues]
    reading = BrokerReading(
        target=target,
        ts=ts,
        cluster_name=str(overview.get("cluster_name", "")),
        version=str(overview.get("rabbitmq_version", "")),
        values=values,
        nodes=[_node(raw) for raw in nodes],
        queues=queues,
    )
    silent = [q for q in queues if q.values is None]
    if silent:
        reading.notes.append(
            f"{target.resource_id}: {len(silent)} queue(s) have no statistics yet (idle since "
            "the management plugin started); they are not judged until they report"
        )
    reading.probe_seconds = time.perf_counter() - started
    values["probe_duration_seconds"] = reading.probe_seconds
    return reading


def rpc_consumers(target: BrokerTarget, vhost: str = "/", topic: str = "compute") -> dict[str, int]:
    """host -> consumers of each `<topic>.<host>` RPC queue (nova-compute's is
    `compute.<host>`): a queue losing its consumer means the service's process is gone
    (at once when the process dies on a live host; after the AMQP heartbeat timeout when
    the whole host dies). A host without a consumer is absent. One request;
    BrokerProbeError when it cannot be read.

    Read from the vhost's consumer list, not from the queues' `consumers` column: that
    column comes from periodic statistics (every 5 s), so it still counts a consumer
    whose connection closed (measured here: the list drops it within 0.1 s), and it
    stays empty for a queue idle since the plugin started, which read as "no
    consumer" would judge a live compute service silent."""
    with requests.Session() as session:
        session.auth = (target.user, target.password)
        body = _get(session, target, f"/api/consumers/{quote(vhost, safe='')}")
    consumers: dict[str, int] = {}
    for item in body if isinstance(body, list) else []:
        queue = item.get("queue") if isinstance(item, dict) else None
        name = str((queue or {}).get("name") or "")
        if name.startswith(f"{topic}."):
            host = name[len(topic) + 1 :]
            consumers[host] = consumers.get(host, 0) + 1
    return consumers
