"""Actions on Neutron resources: release a floating IP, delete a security group rule
(compliance remediation), delete a port, tag floating IPs and ports."""

from __future__ import annotations

from typing import Any, Literal

import keystoneauth1.exceptions as ksa_exc
import openstack.exceptions
from pydantic import Field

from stackfleet.actions.base import (
    ACTIONS,
    LIVE_READERS,
    Action,
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Record,
    Skip,
    Stale,
    call,
    gone,
    label,
    wait_for,
)


def _read(ctx: ActionContext, record: Record, getter: str) -> Any | None:
    conn = ctx.connection(record["cloud"], record["region"])
    missing, resource = gone(getattr(conn.network, getter), record["id"])
    return None if missing else resource


def _version(resource: Any) -> dict[str, Any]:
    """How new a Neutron answer is: `updated_at` (compared with the pass by the engine)
    and `revision_number`, which a deletion sends back as `If-Match` so that Neutron
    itself refuses it (412) when the resource changed since this read — the one check
    a stale read (a lagging replica or cache) cannot fool."""
    return {
        "updated_at": getattr(resource, "updated_at", None),
        "revision_number": getattr(resource, "revision_number", None),
    }


def _fip_state(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    ip = _read(ctx, record, "get_ip")
    if ip is None:
        return None
    return {
        "port_id": ip.port_id or None,
        "status": ip.status,
        "tags": list(ip.tags or []),
        **_version(ip),
    }


def _port_state(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    port = _read(ctx, record, "get_port")
    if port is None:
        return None
    return {
        "device_id": port.device_id or None,
        "device_owner": port.device_owner or None,
        "binding_host": port.binding_host_id or None,
        "status": port.status,
        "tags": list(port.tags or []),
        **_version(port),
    }


def _delete_if_unchanged(ctx: ActionContext, record: Record, deleter: Any, what: str) -> None:
    """Delete with `If-Match: revision_number=N` of the re-read the engine checked
    (`ctx.observed`): when Neutron answers 412 the resource changed after that read
    (or the read was stale), and nothing is deleted (Stale: the action is skipped)."""
    revision = (getattr(ctx, "observed", None) or {}).get("revision_number")
    try:
        deleter(record["id"], ignore_missing=False, if_revision=revision)
    except openstack.exceptions.HttpException as exc:
        if exc.status_code == 412:
            raise Stale(
                f"Neutron refused the deletion: {label(record)} changed since it was "
                f"read (revision {revision}); nothing deleted"
            ) from exc
        raise ActionError(f"{what} failed: {exc}") from exc
    except (openstack.exceptions.SDKException, ksa_exc.ClientException) as exc:
        raise ActionError(f"{what} failed: {exc}") from exc


LIVE_READERS["floating_ip"] = _fip_state
LIVE_READERS["port"] = _port_state

# What a floating IP or port the waste lifecycle acts on (marks, reminds about,
# releases or deletes) must still be on the live record: unused by its own fields.
UNUSED = {
    "floating_ip": {"port_id": None},
    "port": {"device_id": None, "device_owner": None},
}


def _wait_gone(ctx: ActionContext, record: Record, getter: str, what: str) -> Outcome:
    def check() -> tuple[bool, dict[str, Any]]:
        resource = _read(ctx, record, getter)
        return resource is None, {"gone": resource is None}

    return wait_for(ctx, check, what)


@ACTIONS.register("release")
class ReleaseFloatingIP(Action):
    """Release a floating IP back to the external network's pool (delete it). A
    floating IP that has been associated with a port since the pass is left alone."""

    kinds = ("floating_ip",)
    destructive = True
    type: Literal["release"] = "release"

    def plan(self, record: Record) -> Plan | Skip | None:
        if record.get("port_id"):
            return Skip(self.type, f"associated with port {record['port_id']}")
        return self.make_plan(
            record,
            f"release floating IP {record.get('floating_ip_address')} ({record['id']})",
            Change("floating_ip", record.get("floating_ip_address"), None),
            expects=dict(UNUSED["floating_ip"]),
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return _fip_state(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        _delete_if_unchanged(ctx, record, conn.network.delete_ip, f"release {label(record)}")
        return {"floating_ip_address": record.get("floating_ip_address")}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        outcome = _wait_gone(ctx, record, "get_ip", f"release {label(record)}")
        outcome.result = result
        return outcome


_RULE_FIELDS = (
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
)
# openstacksdk's attribute for a Neutron field, where it differs
_SDK_NAMES = {"ethertype": "ether_type"}


@ACTIONS.register("delete")
class DeleteSecurityGroupRule(Action):
    """Delete a security group rule (e.g. SSH open to the world)."""

    kinds = ("security_group_rule",)
    destructive = True
    type: Literal["delete"] = "delete"

    def plan(self, record: Record) -> Plan | None:
        rule = (
            f"{record.get('direction')} {record.get('ethertype')} "
            f"{record.get('protocol') or 'any'} "
            f"{record.get('port_range_min') or '*'}-{record.get('port_range_max') or '*'} "
            f"from {record.get('remote_ip_prefix') or record.get('remote_group_id') or 'any'}"
        )
        # the rule as the pass saw it (a rule is immutable in Neutron, but an id is
        # checked against what the policy judged, not trusted)
        return self.make_plan(
            record,
            f"delete rule {record['id']} of security group {record.get('security_group_id')}",
            Change("rule", rule, None),
            expects={f: record.get(f) for f in _RULE_FIELDS if f in record},
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        rule = _read(ctx, record, "get_security_group_rule")
        if rule is None:
            return None
        # openstacksdk names Neutron's `ethertype` attribute `ether_type`
        state = {f: getattr(rule, _SDK_NAMES.get(f, f), None) for f in _RULE_FIELDS}
        tags = getattr(rule, "tags", None)
        if tags is not None:
            state["tags"] = list(tags)
        return {**state, **_version(rule)}

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        _delete_if_unchanged(
            ctx, record, conn.network.delete_security_group_rule, f"delete {label(record)}"
        )
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return _wait_gone(ctx, record, "get_security_group_rule", f"delete {label(record)}")


@ACTIONS.register("delete")
class DeletePort(Action):
    """Delete a port. A port bound to a device or host since the pass is left alone."""

    kinds = ("port",)
    destructive = True
    type: Literal["delete"] = "delete"

    def plan(self, record: Record) -> Plan | Skip | None:
        if record.get("device_id"):
            return Skip(self.type, f"in use by device {record['device_id']}")
        return self.make_plan(
            record,
            f"delete {label(record)}",
            Change("port", f"{record.get('mac_address')} {record.get('fixed_ips') or ''}", None),
            expects={**UNUSED["port"], "binding_host": record.get("binding_host") or None},
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return _port_state(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        _delete_if_unchanged(ctx, record, conn.network.delete_port, f"delete {label(record)}")
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return _wait_gone(ctx, record, "get_port", f"delete {label(record)}")


_GETTERS = {"floating_ip": "get_ip", "port": "get_port"}


class _NeutronTags(Action):
    kinds = ("floating_ip", "port")
    tags: list[str] = Field(min_length=1, description="Tags.")

    def _current(self, ctx: ActionContext, record: Record) -> tuple[Any, list[str]]:
        resource = _read(ctx, record, _GETTERS[record["kind"]])
        if resource is None:
            return None, []
        return resource, list(resource.tags or [])

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return LIVE_READERS[record["kind"]](ctx, record)

    def _set(self, ctx: ActionContext, record: Record, wanted: list[str]) -> None:
        conn = ctx.connection(record["cloud"], record["region"])
        resource, _tags = self._current(ctx, record)
        call(f"{self.type} {label(record)}", conn.network.set_tags, resource, wanted)


@ACTIONS.register("tag")
class TagNeutronResource(_NeutronTags):
    """Add Neutron tags to a floating IP or port."""

    type: Literal["tag"] = "tag"

    def plan(self, record: Record) -> Plan | None:
        return self.make_plan(record, f"tag {label(record)}", Change("tags", None, self.tags))

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        _resource, current = self._current(ctx, record)
        self._set(ctx, record, current + [t for t in self.tags if t not in current])
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        _resource, tags = self._current(ctx, record)
        return Outcome(verified=all(t in tags for t in self.tags), observed={"tags": tags})


@ACTIONS.register("untag")
class UntagNeutronResource(_NeutronTags):
    """Remove Neutron tags from a floating IP or port; a tag `key` also removes tags
    `key=...` (how lifecycles mark Neutron resources)."""

    type: Literal["untag"] = "untag"

    def plan(self, record: Record) -> Plan | None:
        return self.make_plan(record, f"untag {label(record)}", Change("tags", self.tags, None))

    def _removed(self, tag: str) -> bool:
        return any(tag == t or tag.startswith(f"{t}=") for t in self.tags)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        _resource, current = self._current(ctx, record)
        if any(self._removed(t) for t in current):
            self._set(ctx, record, [t for t in current if not self._removed(t)])
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        _resource, tags = self._current(ctx, record)
        return Outcome(verified=not any(self._removed(t) for t in tags), observed={"tags": tags})
