"""Incidents: one failure, one alert. A firing alert whose resource others depend on is
the *cause* of the firing alerts of those others, its *consequences*: they are listed
with it and not notified on their own (inhibited, linked to the cause), so an operator
paged for a dead host gets one page naming the forty servers on it, not forty-one.

What depends on what comes from the relations already in the store, never from alert
names, so any policy's alert on a dependent resource is grouped:

- a compute host down — its hypervisor `state: down`, or its nova-compute service down —
  causes the alerts of everything on that host: its servers, its Nova, Neutron and
  Cinder services and agents, its hardware readings (the `host` label), and the other
  one of the hypervisor / nova-compute pair (the hypervisor's alert is the cause when
  both fire);
- an L3 agent down causes the alerts of the routers it hosts, a DHCP agent down those
  of the networks it serves (`hosted_router_ids`, `hosted_network_ids`);
- a cinder-volume back end down (`host@backend`) causes the alerts of its volumes
  (`backend_host` `host@backend#pool`) and pools.

Causes nest: the routers of an L3 agent on a dead host belong to the host's incident.
An alert belongs to one incident at most; a cause with no consequence firing is an
ordinary alert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stackfleet.store.db import Store
from stackfleet.store.lookup import ResourceKey, attrs_by_key

# kinds whose records say where they run (their `host`), or what they depend on
RELATED_KINDS = frozenset(
    {
        "hypervisor",
        "compute_service",
        "network_agent",
        "block_storage_service",
        "server",
        "volume",
        "storage_pool",
    }
)
HOSTED = {
    "L3 agent": ("hosted_router_ids", "router"),
    "DHCP agent": ("hosted_network_ids", "network"),
}
MAX_LISTED = 20  # consequences named in the cause's annotation; the API lists them all


@dataclass
class Incident:
    """A cause and the alerts it explains."""

    cause: dict[str, Any]
    reason: str
    consequences: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": _brief(self.cause),
            "reason": self.reason,
            "consequences": [_brief(a) for a in self.consequences],
        }

    def annotation(self) -> str:
        """The consequences in one line, for the cause's notification."""
        names = [_name(a) for a in self.consequences]
        shown = ", ".join(names[:MAX_LISTED])
        more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
        return f"{self.reason}; explains {len(names)} other alert(s): {shown}{more}"


def _brief(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": alert.get("id"),
        "fingerprint": alert.get("fingerprint"),
        "alertname": alert.get("alertname"),
        "severity": alert.get("severity"),
        "labels": alert.get("labels") or {},
    }


def _name(alert: dict[str, Any]) -> str:
    labels = alert.get("labels") or {}
    what = " ".join(
        str(v) for v in (labels.get("kind"), labels.get("resource_id") or labels.get("host")) if v
    )
    return f"{alert.get('alertname')} ({what})" if what else str(alert.get("alertname"))


def _key(alert: dict[str, Any]) -> ResourceKey | None:
    labels = alert.get("labels") or {}
    kind, resource_id = labels.get("kind"), labels.get("resource_id")
    if not kind or not resource_id:
        return None
    return (labels.get("cloud", ""), labels.get("region", ""), kind, resource_id)


def _down(kind: str, attrs: dict[str, Any]) -> bool:
    if kind in ("hypervisor", "compute_service", "block_storage_service"):
        return attrs.get("state") == "down"
    if kind == "network_agent":
        return attrs.get("alive") is False
    return False


def correlate(store: Store, firing: Sequence[dict[str, Any]]) -> list[Incident]:
    """The incidents among `firing` alerts (see the module doc)."""
    keyed = [(a, _key(a)) for a in firing]
    records = attrs_by_key(store, (k for _, k in keyed if k and k[2] in RELATED_KINDS))

    def attrs(key: ResourceKey | None) -> dict[str, Any]:
        return records.get(key, {}) if key else {}

    taken: set[int] = set()
    incidents: list[Incident] = []

    # 1. hosts: the hypervisor's alert first, then nova-compute's, names the host
    hosts: dict[tuple[str, str, str], Incident] = {}
    for rank_kind in ("hypervisor", "compute_service"):
        for alert, key in keyed:
            if key is None or key[2] != rank_kind or not _down(key[2], attrs(key)):
                continue
            record = attrs(key)
            if rank_kind == "compute_service" and record.get("binary") != "nova-compute":
                continue
            host = str(record.get("host") or "")
            place = (key[0], key[1], host)
            if host and place not in hosts:
                hosts[place] = Incident(alert, f"compute host {host} is down")
                taken.add(id(alert))
    for alert, key in keyed:
        if id(alert) in taken:
            continue
        labels = alert.get("labels") or {}
        if key is not None and key[2] in RELATED_KINDS:
            place = (key[0], key[1], str(attrs(key).get("host") or ""))
        else:
            # hardware readings and other host-level alerts name the host by label
            place = (labels.get("cloud", ""), labels.get("region", ""), labels.get("host", ""))
        incident = hosts.get(place) or _by_host_only(hosts, place)
        if incident is not None and place[2]:
            incident.consequences.append(alert)
            taken.add(id(alert))

    # 2. agents and back ends: their own incident, or the host's when on a dead host
    owner: dict[int, Incident] = {}
    for incident in hosts.values():
        owner[id(incident.cause)] = incident
        for alert in incident.consequences:
            owner[id(alert)] = incident
    dependents: list[
        tuple[Incident, set[tuple[str, str, str, str]], tuple[str, str, str] | None]
    ] = []
    for alert, key in keyed:
        if key is None or not _down(key[2], attrs(key)):
            continue
        record = attrs(key)
        ids: set[tuple[str, str, str, str]] = set()
        backend: tuple[str, str, str] | None = None
        if key[2] == "network_agent" and record.get("agent_type") in HOSTED:
            field_name, kind = HOSTED[str(record["agent_type"])]
            ids = {(key[0], key[1], kind, str(i)) for i in record.get(field_name) or []}
            reason = f"{record.get('agent_type')} {record.get('host')} is down"
        elif key[2] == "block_storage_service" and record.get("binary") == "cinder-volume":
            backend = (key[0], key[1], str(record.get("host") or ""))
            reason = f"Cinder back end {record.get('host')} is down"
        else:
            continue
        incident = owner.get(id(alert)) or Incident(alert, reason)
        if id(alert) not in owner:
            taken.add(id(alert))
            owner[id(alert)] = incident
        dependents.append((incident, ids, backend))
    for alert, key in keyed:
        if id(alert) in taken or key is None:
            continue
        for incident, ids, backend in dependents:
            if key in ids or (backend is not None and _on_backend(key, attrs(key), backend)):
                incident.consequences.append(alert)
                taken.add(id(alert))
                break

    seen: set[int] = set()
    for incident in [*hosts.values(), *(d[0] for d in dependents)]:
        if id(incident) not in seen and incident.consequences:
            seen.add(id(incident))
            incidents.append(incident)
    return incidents


def _by_host_only(
    hosts: dict[tuple[str, str, str], Incident], place: tuple[str, str, str]
) -> Incident | None:
    """A hardware alert carries no cloud or region: match the host name alone, when only
    one cloud region has a dead host of that name."""
    if place[0] or place[1] or not place[2]:
        return None
    found = [i for (_, _, host), i in hosts.items() if host == place[2]]
    return found[0] if len(found) == 1 else None


def _on_backend(key: ResourceKey, attrs: dict[str, Any], backend: tuple[str, str, str]) -> bool:
    cloud, region, host = backend
    if (key[0], key[1]) != (cloud, region) or not host:
        return False
    if key[2] == "volume":
        where = str(attrs.get("backend_host") or "")
    elif key[2] == "storage_pool":
        where = key[3]
    else:
        return False
    return where == host or where.startswith(host + "#")


def caused_by(incidents: Sequence[Incident]) -> dict[int, Incident]:
    """Each consequence's incident, by alert id."""
    return {a["id"]: i for i in incidents for a in i.consequences}
