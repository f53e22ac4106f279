"""OpenStack notifications: which resource an event is about, and a listener on the
cloud's message bus (oslo.messaging, as Ceilometer listens).

Services publish notifications on their transport (`[oslo_messaging_notifications]
driver = messagingv2`): Nova its versioned ones (`instance.create.end`, payload
`nova_object.data`) on topic `versioned_notifications`, every service its unversioned
ones (`compute.instance.*`, `port.create.end`, `volume.delete.end`, `image.update`) on
topic `notifications`, each in its own exchange (`nova`, `neutron`, `cinder`,
`glance`, ...). The listener subscribes through a *pool* (one queue of ours, named
after the pool, bound to those topics): a notification is then delivered both to
StackFleet and to the other consumers (Ceilometer reads `notifications.info` itself),
instead of StackFleet taking turns with them.

An event only says *which* resource changed; the engine re-reads that resource through
the API (engine/event_processor.py), so a late, duplicated or partial payload never becomes
inventory.

oslo.messaging is imported only when a listener starts: mapping events (policy
validation, the API) does not need it.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stackfleet.core.errors import ConfigError
from stackfleet.core.redaction import redact_url

log = logging.getLogger(__name__)

DEFAULT_TOPICS = ("versioned_notifications", "notifications")
# control_exchange of each service (their defaults); `openstack` is oslo.messaging's own
DEFAULT_EXCHANGES = ("nova", "neutron", "cinder", "glance", "openstack")
DEFAULT_POOL = "stackfleet"
PRIORITIES = ("audit", "critical", "debug", "error", "info", "sample", "warn")

Payload = Mapping[str, Any]


# --------------------------------------------------------------------- event mapping
def _nova_object(payload: Payload) -> Payload:
    data = payload.get("nova_object.data")
    return data if isinstance(data, Mapping) else {}


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None


def _neutron_id(collection: str) -> Callable[[Payload], str | None]:
    """Neutron: `{"port": {...}}` after create/update, `{"port_id": ...}` (and since
    Queens also the object) after delete, `{"id": ..., "port": {changes}}` before an
    update."""

    def resource_id(payload: Payload) -> str | None:
        body = payload.get(collection)
        if isinstance(body, Mapping) and _text(body.get("id")):
            return _text(body.get("id"))
        return _text(payload.get(f"{collection}_id")) or _text(payload.get("id"))

    return resource_id


def _neutron_project(collection: str) -> Callable[[Payload], str | None]:
    def project_id(payload: Payload) -> str | None:
        body = payload.get(collection)
        if isinstance(body, Mapping):
            return _text(body.get("project_id")) or _text(body.get("tenant_id"))
        return None

    return project_id


@dataclass(frozen=True)
class EventRule:
    """Event types (an fnmatch pattern) about one resource kind, and where the
    resource id is in their payload."""

    pattern: str
    kind: str
    resource_id: Callable[[Payload], str | None]
    project_id: Callable[[Payload], str | None]
    # concrete event types the services send (documentation and policy validation)
    examples: tuple[str, ...]
    source: str


RULES: tuple[EventRule, ...] = (
    EventRule(
        "instance.*",
        "server",
        lambda p: _text(_nova_object(p).get("uuid")),
        lambda p: _text(_nova_object(p).get("tenant_id")),
        (
            "instance.create.start",
            "instance.create.end",
            "instance.update",
            "instance.power_on.end",
            "instance.power_off.end",
            "instance.reboot.end",
            "instance.pause.end",
            "instance.unpause.end",
            "instance.suspend.end",
            "instance.resume.end",
            "instance.shutdown.end",
            "instance.rebuild.end",
            "instance.resize_finish.end",
            "instance.live_migration_post.end",
            "instance.evacuate",
            "instance.lock",
            "instance.unlock",
            "instance.volume_attach.end",
            "instance.volume_detach.end",
            "instance.interface_attach.end",
            "instance.interface_detach.end",
            "instance.shelve_offload.end",
            "instance.unshelve.end",
            "instance.soft_delete.end",
            "instance.restore.end",
            "instance.delete.start",
            "instance.delete.end",
        ),
        "Nova (versioned)",
    ),
    EventRule(
        "compute.instance.*",
        "server",
        lambda p: _text(p.get("instance_id")),
        lambda p: _text(p.get("tenant_id")),
        (
            "compute.instance.create.end",
            "compute.instance.update",
            "compute.instance.power_off.end",
            "compute.instance.power_on.end",
            "compute.instance.delete.end",
        ),
        "Nova (unversioned)",
    ),
    *(
        EventRule(
            f"{collection}.*",
            kind,
            _neutron_id(collection),
            _neutron_project(collection),
            (
                f"{collection}.create.end",
                f"{collection}.update.end",
                f"{collection}.delete.end",
            ),
            "Neutron",
        )
        for collection, kind in (
            ("port", "port"),
            ("floatingip", "floating_ip"),
            ("network", "network"),
            ("subnet", "subnet"),
            ("router", "router"),
            ("security_group", "security_group"),
        )
    ),
    EventRule(
        "volume.*",
        "volume",
        lambda p: _text(p.get("volume_id")),
        lambda p: _text(p.get("tenant_id")),
        (
            "volume.create.end",
            "volume.update.end",
            "volume.attach.end",
            "volume.detach.end",
            "volume.resize.end",
            "volume.retype",
            "volume.delete.end",
        ),
        "Cinder",
    ),
    EventRule(
        "image.*",
        "image",
        lambda p: _text(p.get("id")) or _text(p.get("image_id")),
        lambda p: _text(p.get("owner")) or _text(p.get("owner_id")),
        (
            "image.create",
            "image.update",
            "image.upload",
            "image.activate",
            "image.delete",
        ),
        "Glance",
    ),
)


def rule_for(event_type: str) -> EventRule | None:
    """The rule an event type falls under (the first that matches)."""
    for rule in RULES:
        if fnmatch.fnmatchcase(event_type, rule.pattern):
            return rule
    return None


def kinds_for_pattern(pattern: str) -> set[str]:
    """The kinds an event pattern of a policy (`instance.*`, `port.create.end`) can
    ever concern: the kinds of the rules it falls under, and of every example it
    matches (so `*.delete.end` concerns every kind)."""
    kinds = {rule.kind for rule in RULES if fnmatch.fnmatchcase(pattern, rule.pattern)}
    for rule in RULES:
        if any(fnmatch.fnmatchcase(example, pattern) for example in rule.examples):
            kinds.add(rule.kind)
    return kinds


def event_patterns_for(kind: str) -> list[str]:
    """The event patterns that concern `kind` (for error messages and docs)."""
    return [rule.pattern for rule in RULES if rule.kind == kind]


def is_deletion(event_type: str) -> bool:
    """Whether the event says its resource was deleted: `*.delete.end`, and the
    one-shot `image.delete` (Glance sends no start/end pair)."""
    parts = event_type.split(".")
    return parts[-2:] == ["delete", "end"] or (parts[-1] == "delete" and len(parts) == 2)


@dataclass(frozen=True)
class ResourceEvent:
    """A notification reduced to what StackFleet acts on: which resource of which
    kind, in which cloud region, changed how. `region` may be "" when the transport
    serves several regions and the event does not say (the engine then looks the
    resource up)."""

    event_type: str
    kind: str
    resource_id: str
    cloud: str
    region: str
    project_id: str | None = None
    deleted: bool = False
    publisher_id: str = ""
    timestamp: str | None = None


@dataclass(frozen=True)
class Notification:
    """One notification as it arrived (from the bus or pushed to the API)."""

    event_type: str
    payload: Any
    publisher_id: str = ""
    priority: str = "info"
    timestamp: str | None = None
    message_id: str | None = None
    cloud: str = ""
    region: str = ""

    def resource_event(self) -> ResourceEvent | None:
        """The resource this notification is about (None: not one StackFleet keeps,
        or a payload without an id, such as Neutron's `port.create.start`)."""
        rule = rule_for(self.event_type)
        if rule is None or not isinstance(self.payload, Mapping):
            return None
        resource_id = rule.resource_id(self.payload)
        if not resource_id:
            return None
        return ResourceEvent(
            event_type=self.event_type,
            kind=rule.kind,
            resource_id=resource_id,
            cloud=self.cloud,
            region=self.region,
            project_id=rule.project_id(self.payload),
            deleted=is_deletion(self.event_type),
            publisher_id=self.publisher_id,
            timestamp=self.timestamp,
        )


class NotificationFormatError(ValueError):
    """A pushed notification body is not a notification; the message names the field."""


def parse_notification(body: Any, cloud: str = "", region: str = "") -> Notification:
    """A notification from a JSON body: the oslo.messaging envelope
    (`{"oslo.version": "2.0", "oslo.message": "<json>"}`), or the message itself
    (`event_type`, `payload`, optional `publisher_id`, `priority`, `timestamp`,
    `message_id`)."""
    if not isinstance(body, Mapping):
        raise NotificationFormatError("a notification is a JSON object")
    if "oslo.message" in body:
        inner = body["oslo.message"]
        try:
            body = json.loads(inner) if isinstance(inner, str) else inner
        except ValueError as exc:
            raise NotificationFormatError(f"oslo.message is not JSON: {exc}") from exc
        if not isinstance(body, Mapping):
            raise NotificationFormatError("oslo.message is not a JSON object")
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise NotificationFormatError("event_type: required, a string such as instance.update")
    if "payload" not in body:
        raise NotificationFormatError("payload: required (the notification's payload object)")
    return Notification(
        event_type=event_type,
        payload=body["payload"],
        publisher_id=str(body.get("publisher_id") or ""),
        priority=str(body.get("priority") or "info").lower(),
        timestamp=_text(body.get("timestamp")),
        message_id=_text(body.get("message_id")),
        cloud=cloud,
        region=region,
    )


# --------------------------------------------------------------------- settings
class CloudNotifications(BaseModel):
    """Where one cloud's services publish their notifications."""

    model_config = ConfigDict(extra="forbid")

    transport_url: str | list[str] = Field(
        description="oslo.messaging transport URL(s), e.g. "
        "rabbit://user:password@rabbit1:5672/nova (one per vhost the services use)."
    )
    region: str = Field(
        default="",
        description="Region of the events (default: the cloud's only region, or looked "
        "up from the inventory).",
    )
    topics: list[str] = Field(default_factory=lambda: list(DEFAULT_TOPICS))
    exchanges: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCHANGES),
        description="Exchanges (the services' control_exchange) to bind to.",
    )

    @property
    def urls(self) -> list[str]:
        return [self.transport_url] if isinstance(self.transport_url, str) else self.transport_url


class NotificationSettings(BaseModel):
    """`notifications:` in the settings file: event-driven refresh."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False, description="Listen when `stackfleet serve` starts (as --notifications)."
    )
    pool: str = Field(
        default=DEFAULT_POOL,
        min_length=1,
        description="Listener pool: StackFleet's own queue, so Ceilometer and other "
        "consumers still get every notification.",
    )
    debounce: float = Field(
        default=2.0, ge=0, description="Seconds of quiet before a resource is re-read."
    )
    max_delay: float = Field(
        default=10.0, gt=0, description="Most seconds a busy resource waits to be re-read."
    )
    queue_size: int = Field(
        default=10_000, ge=1, description="Most resources waiting to be re-read."
    )
    clouds: dict[str, CloudNotifications] = Field(default_factory=dict)


# --------------------------------------------------------------------- listener
Receive = Callable[[Notification], object]


def import_oslo_messaging() -> Any:
    """oslo.messaging, imported on first use (it imports eventlet, which warns)."""
    with warnings.catch_warnings():
        # eventlet, which oslo.messaging imports, warns that it is deprecated
        warnings.simplefilter("ignore")
        import oslo_messaging
        import oslo_messaging.opts  # noqa: F401  (list_opts, for a private config)

    return oslo_messaging


def oslo_config(control_exchange: str | None = None) -> Any:
    """A private oslo.config instance (never the process-wide CONF, which services
    embedding StackFleet may own), with oslo.messaging's options registered."""
    from oslo_config import cfg

    oslo_messaging = import_oslo_messaging()
    conf = cfg.ConfigOpts()
    conf([], project="stackfleet", default_config_files=[], default_config_dirs=[])
    for group, options in oslo_messaging.opts.list_opts():
        conf.register_opts(list(options), group=group)
    if control_exchange:
        conf.set_override("control_exchange", control_exchange)
    return conf


class _Endpoint:
    """oslo.messaging calls one method per priority; each hands the notification on.
    Returning None acknowledges it: a notification StackFleet cannot use is dropped,
    never requeued (requeueing would loop)."""

    def __init__(self, receive: Receive, cloud: str, region: str) -> None:
        self._receive = receive
        self._cloud = cloud
        self._region = region
        for priority in PRIORITIES:
            setattr(self, priority, self._method(priority))

    def _method(self, priority: str) -> Callable[..., None]:
        def handle(
            ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any
        ) -> None:
            meta = metadata if isinstance(metadata, Mapping) else {}
            notification = Notification(
                event_type=str(event_type),
                payload=payload,
                publisher_id=str(publisher_id or ""),
                priority=priority,
                timestamp=_text(meta.get("timestamp")),
                message_id=_text(meta.get("message_id")),
                cloud=self._cloud,
                region=self._region,
            )
            try:
                self._receive(notification)
            except Exception:  # a consumer bug must not kill the listener thread
                log.exception("handling %s from %s failed", event_type, publisher_id)

        return handle


class NotificationListener:
    """Listens to one cloud's notifications on each of its transport URLs and hands
    every one to `receive` (called from the listener's threads: it must not block)."""

    def __init__(
        self,
        cloud: str,
        config: CloudNotifications,
        receive: Receive,
        pool: str | None = DEFAULT_POOL,
    ) -> None:
        self.cloud = cloud
        self.config = config
        self.receive = receive
        self.pool = pool
        self._running: list[tuple[Any, Any]] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Connect and start consuming; ConfigError names the URL that failed."""
        oslo_messaging = import_oslo_messaging()
        endpoint = _Endpoint(self.receive, self.cloud, self.config.region)
        targets = [
            oslo_messaging.Target(topic=topic, exchange=exchange)
            for topic in self.config.topics
            for exchange in self.config.exchanges
        ]
        with self._lock:
            for url in self.config.urls:
                whose = f"notifications of cloud {self.cloud!r}" if self.cloud else "notifications"
                try:
                    check_transport(url)
                except ConfigError as exc:
                    self._stop_locked()
                    raise ConfigError(f"{whose}: {exc}") from exc
                try:
                    transport = oslo_messaging.get_notification_transport(oslo_config(), url=url)
                    listener = oslo_messaging.get_notification_listener(
                        transport,
                        targets,
                        [endpoint],
                        executor="threading",
                        pool=self.pool,
                    )
                    listener.start()
                except Exception as exc:
                    self._stop_locked()
                    raise ConfigError(
                        f"{whose}: cannot listen on {redact_url(url)}: {type(exc).__name__}: {exc}"
                    ) from exc
                self._running.append((listener, transport))
                log.info(
                    "listening to %s notifications on %s (pool %s)",
                    self.cloud,
                    redact_url(url),
                    self.pool,
                )

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        for listener, transport in self._running:
            try:
                listener.stop()
                listener.wait()
            finally:
                transport.cleanup()
        self._running = []


def _broker_connections(url: str) -> list[Any]:
    """A kombu connection per host of a transport URL (not connected yet)."""
    import kombu

    parsed = import_oslo_messaging().TransportURL.parse(oslo_config(), url)
    return [
        kombu.Connection(
            hostname=host.hostname or "127.0.0.1",
            port=host.port or 5672,
            userid=host.username or "guest",
            password=host.password or "guest",
            virtual_host=parsed.virtual_host or "/",
            connect_timeout=5,
        )
        for host in parsed.hosts or [None]
        if host is not None
    ]


def check_transport(url: str) -> None:
    """Connect once to the broker of a transport URL; ConfigError saying why not
    (oslo.messaging itself would retry for ever, silently to the caller)."""
    errors: list[str] = []
    connections = _broker_connections(url)
    if not connections:
        raise ConfigError(f"transport URL {redact_url(url)} names no broker host")
    for connection in connections:
        try:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5)
            return
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.release()
    raise ConfigError(f"cannot connect to {redact_url(url)}: {'; '.join(errors)}")


def delete_pool_queue(url: str, pool: str) -> None:
    """Delete a listener pool's queue (it outlives its listener by design, so that a
    restarted daemon catches up: a one-off listener must remove it, or the queue
    fills up with every notification of the cloud)."""
    for connection in _broker_connections(url)[:1]:
        try:
            connection.channel().queue_delete(pool)
        except Exception as exc:  # gone already, or the broker is away: nothing to do
            log.warning("queue %s on %s not deleted: %s", pool, redact_url(url), exc)
        finally:
            connection.release()


def listeners_for(
    settings: NotificationSettings,
    receive: Receive,
    clouds: Sequence[str] | None = None,
) -> list[NotificationListener]:
    """A listener per configured cloud (only `clouds`, when given)."""
    missing = [c for c in clouds or () if c not in settings.clouds]
    if missing:
        raise ConfigError(
            f"no notifications configured for cloud(s) {', '.join(missing)}: add "
            "notifications.clouds.<cloud>.transport_url to the settings file"
        )
    return [
        NotificationListener(name, config, receive, settings.pool)
        for name, config in settings.clouds.items()
        if clouds is None or name in clouds
    ]
