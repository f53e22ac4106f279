"""Notifications from the simulated cloud, as the real services send them over
oslo.messaging (`driver = messagingv2`) when changes are made through the API:

- Nova: versioned notifications (topic `versioned_notifications`, exchange `nova`,
  publisher `nova-compute:<host>` or `nova-api:<host>`), payload
  `{"nova_object.name": "InstanceActionPayload", "nova_object.data": {...}}`, for
  server actions (`instance.<action>.start` / `.end`), lock and unlock;
- Neutron: unversioned (topic `notifications`, exchange `neutron`, publisher
  `network.<host>`), `floatingip.create.end` `{"floatingip": {...}}`,
  `floatingip.delete.end` `{"floatingip_id": ..., "floatingip": {...}}`, ports alike;
- Cinder: unversioned (exchange `cinder`, publisher `volume.<host>`),
  `volume.delete.start` / `.end` with `volume_id`, `tenant_id`, `status`, ...

The services call the `notify_*` hooks; they do nothing unless the simulator was
started with a transport URL. Messages are published from a background thread, so an
API request never waits for the broker.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import uuid
from typing import Any

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Nova's task state while an action runs -> the action in its notification names
TASK_ACTIONS = {
    "powering-off": "power_off",
    "powering-on": "power_on",
    "pausing": "pause",
    "unpausing": "unpause",
    "suspending": "suspend",
    "resuming": "resume",
    "rebooting": "reboot",
    "reboot_started": "reboot",
    "rebooting_hard": "reboot",
    "reboot_started_hard": "reboot",
    "deleting": "delete",
    "rebuilding": "rebuild",
    "resize_prep": "resize_prep",
    "resize_finish": "resize_finish",
    "migrating": "live_migration_pre",
    "rebuild_spawning": "evacuate",
    "image_snapshot": "snapshot",
    "shelving": "shelve",
    "unshelving": "unshelve",
}
POWER_STATES = {
    0: "pending",
    1: "running",
    3: "paused",
    4: "shutdown",
    6: "crashed",
    7: "suspended",
}

_SERVICES = {
    # service -> (exchange, topic, publisher prefix)
    "nova": ("nova", "versioned_notifications", "nova-compute"),
    "neutron": ("neutron", "notifications", "network"),
    "cinder": ("cinder", "notifications", "volume"),
}


class SimulatorNotifier:
    """Publishes the simulator's notifications on one transport URL."""

    def __init__(self, transport_url: str, host: str = "sim-control") -> None:
        from stackfleet.sources.notifications import import_oslo_messaging, oslo_config

        oslo_messaging = import_oslo_messaging()
        self.transport_url = transport_url
        self.host = host
        self.sent = 0
        self._transports: list[Any] = []
        self._notifiers: dict[str, Any] = {}
        for service, (exchange, topic, _prefix) in _SERVICES.items():
            transport = oslo_messaging.get_notification_transport(
                oslo_config(control_exchange=exchange), url=transport_url
            )
            self._transports.append(transport)
            self._notifiers[service] = oslo_messaging.Notifier(
                transport, driver="messagingv2", topics=[topic]
            )
        self._queue: queue.Queue[tuple[str, str, str, Obj] | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._publish, name="simulator-notifier", daemon=True
        )
        self._thread.start()

    def emit(self, service: str, event_type: str, payload: Obj, host: str | None = None) -> None:
        """Queue one notification (the payload is copied now)."""
        prefix = _SERVICES[service][2]
        publisher = (
            f"{prefix}:{host or self.host}"
            if service == "nova"
            else (f"{prefix}.{host or self.host}")
        )
        self._queue.put((service, publisher, event_type, copy.deepcopy(payload)))

    def _publish(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            service, publisher, event_type, payload = item
            try:
                notifier = self._notifiers[service].prepare(publisher_id=publisher)
                notifier.info({"request_id": f"req-{uuid.uuid4()}"}, event_type, payload)
                self.sent += 1
            except Exception:  # the simulated cloud keeps serving when the broker is away
                log.exception("publishing %s failed", event_type)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until everything queued has been published."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)
        for transport in self._transports:
            transport.cleanup()


# ------------------------------------------------------------------ payloads
def server_payload(server: Obj) -> Obj:
    """Nova's InstanceActionPayload (the fields StackFleet and most consumers read)."""
    flavor = server.get("flavor") or {}
    image = server.get("image")
    power = server.get("OS-EXT-STS:power_state")
    data = {
        "uuid": server.get("id"),
        "display_name": server.get("name"),
        "tenant_id": server.get("tenant_id"),
        "user_id": server.get("user_id"),
        "host": server.get("OS-EXT-SRV-ATTR:host"),
        "node": server.get("OS-EXT-SRV-ATTR:hypervisor_hostname"),
        "availability_zone": server.get("OS-EXT-AZ:availability_zone"),
        "state": server.get("OS-EXT-STS:vm_state"),
        "task_state": server.get("OS-EXT-STS:task_state"),
        "power_state": POWER_STATES.get(power, "nostate") if isinstance(power, int) else None,
        "image_uuid": image.get("id") if isinstance(image, dict) else None,
        "metadata": dict(server.get("metadata") or {}),
        "locked": bool(server.get("locked")),
        "locked_reason": server.get("locked_reason"),
        "created_at": server.get("created"),
        "updated_at": server.get("updated"),
        "flavor": {
            "nova_object.name": "FlavorPayload",
            "nova_object.namespace": "nova",
            "nova_object.version": "1.4",
            "nova_object.data": {
                "name": flavor.get("original_name"),
                "vcpus": flavor.get("vcpus"),
                "memory_mb": flavor.get("ram"),
                "root_gb": flavor.get("disk"),
            },
        },
    }
    return {
        "nova_object.name": "InstanceActionPayload",
        "nova_object.namespace": "nova",
        "nova_object.version": "1.8",
        "nova_object.data": data,
    }


def volume_payload(volume: Obj) -> Obj:
    """Cinder's unversioned volume usage payload."""
    return {
        "volume_id": volume.get("id"),
        "tenant_id": volume.get("os-vol-tenant-attr:tenant_id"),
        "user_id": volume.get("user_id"),
        "display_name": volume.get("name"),
        "size": volume.get("size"),
        "status": volume.get("status"),
        "volume_type": volume.get("volume_type"),
        "host": volume.get("os-vol-host-attr:host"),
        "availability_zone": volume.get("availability_zone"),
        "created_at": volume.get("created_at"),
        "metadata": dict(volume.get("metadata") or {}),
    }


# ------------------------------------------------------------------ hooks
def _notifier(sim: Any) -> SimulatorNotifier | None:
    notifier = getattr(sim, "notifier", None)
    return notifier if isinstance(notifier, SimulatorNotifier) else None


def notify_server_task(sim: Any, server: Obj, task_state: str | None, phase: str) -> None:
    """`instance.<action>.start|end` for an action Nova runs under `task_state`, each
    after the `instance.update` a Nova with `[notifications] notify_on_state_change =
    vm_and_task_state` sends for the task state change (as the testbed does: a
    power-off is update, power_off.start, update, power_off.end)."""
    notifier = _notifier(sim)
    action = TASK_ACTIONS.get(task_state or "")
    if notifier is None or action is None:
        return
    payload = server_payload(server)
    data = payload["nova_object.data"]
    if action == "delete" and phase == "end":
        data.update(state="deleted", task_state=None)
    update = {
        **payload,
        "nova_object.name": "InstanceUpdatePayload",
        "nova_object.version": "2.0",
        "nova_object.data": {
            **data,
            "state_update": {
                "nova_object.name": "InstanceStateUpdatePayload",
                "nova_object.namespace": "nova",
                "nova_object.version": "1.0",
                "nova_object.data": {
                    "state": data.get("state"),
                    "old_state": data.get("state"),
                    "new_task_state": task_state if phase == "start" else None,
                    "old_task_state": None if phase == "start" else task_state,
                },
            },
        },
    }
    host = server.get("OS-EXT-SRV-ATTR:host")
    notifier.emit("nova", "instance.update", update, host)
    notifier.emit("nova", f"instance.{action}.{phase}", payload, host)


def notify_server(sim: Any, event_type: str, server: Obj) -> None:
    """A one-shot versioned server notification (`instance.lock`, `instance.unlock`)."""
    notifier = _notifier(sim)
    if notifier is not None:
        notifier.emit("nova", event_type, server_payload(server), "sim-api")


def notify_network(sim: Any, resource: str, action: str, obj: Obj) -> None:
    """Neutron's `<resource>.<action>` (`floatingip`, `create.end`): the object, and
    its id as `<resource>_id` after a delete."""
    notifier = _notifier(sim)
    if notifier is None:
        return
    payload: Obj = {resource: obj}
    if action.startswith("delete"):
        payload[f"{resource}_id"] = obj.get("id")
    notifier.emit("neutron", f"{resource}.{action}", payload)


def notify_volume(sim: Any, action: str, volume: Obj) -> None:
    """Cinder's `volume.<action>` (`delete.start`, `delete.end`)."""
    notifier = _notifier(sim)
    if notifier is not None:
        notifier.emit("cinder", f"volume.{action}", volume_payload(volume))


def start_notifier(transport_url: str) -> SimulatorNotifier:
    """A notifier on `transport_url`; SimulatorError-like RuntimeError names the URL."""
    from stackfleet.core.redaction import redact_url

    try:
        return SimulatorNotifier(transport_url)
    except Exception as exc:
        raise RuntimeError(
            f"cannot publish notifications on {redact_url(transport_url)}: {exc}"
        ) from exc


def stop_notifier(sim: Any) -> None:
    """Publish what is queued, then close the simulator's notifier (if any)."""
    notifier = _notifier(sim)
    if notifier is not None:
        sim.notifier = None
        notifier.close()
