"""Workloads as inventory resources: the labels provisioning sets on every member, and
the `workload` records derived from the members a collection pass listed (no I/O).

A member carries both the Nova tag `stackfleet-workload:<name>` and the metadata
`stackfleet-workload: <name>` (a tag alone, which anyone may add, does not make a
server a member). Standalone bare-metal members carry the same keys in their Ironic
allocation's `extra`, containers in their Zun `labels`.

The status words of members are Nova's (ACTIVE, BUILD, SHUTOFF, ERROR, DELETING); the
other backends' states are mapped to them here, once, for the inventory and the
provisioning backends alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TAG_PREFIX = "stackfleet-workload:"
META_WORKLOAD = "stackfleet-workload"
META_MEMBER = "stackfleet-member"
META_SPEC = "stackfleet-spec"
META_LEASE = "stackfleet-lease-expires"

Record = dict[str, Any]


def workload_tag(name: str) -> str:
    return f"{TAG_PREFIX}{name}"


def workload_label(record: Record) -> str | None:
    """The workload a server record is a member of (tag and metadata agree), or None."""
    metadata = record.get("metadata") or {}
    name = metadata.get(META_WORKLOAD) if isinstance(metadata, dict) else None
    if not name or workload_tag(str(name)) not in (record.get("tags") or ()):
        return None
    return str(name)


def workload_id(project_id: str | None, name: str) -> str:
    """A workload's inventory id: its name within its project."""
    return f"{project_id or '-'}/{name}"


def workload_status(statuses: list[str]) -> str:
    """ACTIVE when every member is, ERROR when any is in ERROR, else BUILDING or MIXED."""
    if not statuses:
        return "EMPTY"
    if all(s == "ACTIVE" for s in statuses):
        return "ACTIVE"
    if any(s == "ERROR" for s in statuses):
        return "ERROR"
    if any(s == "BUILD" for s in statuses):
        return "BUILDING"
    return "MIXED"


# Zun container status -> member status
CONTAINER_STATUS = {
    "Running": "ACTIVE",
    "Creating": "BUILD",
    "Created": "BUILD",
    "Restarting": "BUILD",
    "Rebuilding": "BUILD",
    "Stopped": "SHUTOFF",
    "Error": "ERROR",
    "Dead": "ERROR",
    "Deleting": "DELETING",
}
# Ironic provision states of a failed deploy or teardown
FAILED_NODE_STATES = frozenset({"deploy failed", "error", "clean failed"})


def container_status(container: Record) -> tuple[str, str | None]:
    """A Zun container's member status, and its fault when failed."""
    raw = str(container.get("status"))
    status = CONTAINER_STATUS.get(raw, "BUILD")
    if status != "ERROR":
        return status, None
    return status, str(container.get("status_reason") or f"container {raw}")


def allocation_status(allocation_state: str | None, last_error: str | None,
                      node: Record | None) -> tuple[str, str | None]:  # fmt: skip
    """A standalone bare-metal member's status and fault, from its allocation's state
    and its node (None: not allocated yet, or not listed)."""
    if allocation_state == "error":
        return "ERROR", last_error
    if allocation_state == "allocating" or node is None:
        return "BUILD", None
    state = node.get("provision_state")
    if state == "active":
        return ("SHUTOFF" if node.get("power_state") == "power off" else "ACTIVE"), None
    if state in FAILED_NODE_STATES:
        return "ERROR", node.get("last_error") or f"node {state}"
    if state in ("deleting", "cleaning"):
        return "DELETING", None
    return "BUILD", None  # allocated, deploying or not deployed yet


def _member(mid: str, name: object, labels: dict[str, Any], status: str,
            host: object) -> Record:  # fmt: skip
    return {"id": mid, "name": str(name or ""), "labels": labels, "status": status,
            "host": str(host) if host else None}  # fmt: skip


def workloads_from_members(
    servers: Iterable[Record] = (),
    allocations: Iterable[Record] = (),
    nodes: Iterable[Record] = (),
    containers: Iterable[Record] = (),
) -> list[Record]:
    """One `workload` record per (project, workload label) among the members a pass
    listed: servers (Nova), allocations with their nodes (standalone Ironic) and
    containers (Zun). A name a project uses on two backends is Nova's."""
    grouped: dict[tuple[str | None, str], tuple[str, str, list[Record]]] = {}

    def add(project: Any, name: str, backend: str, kind: str, member: Record) -> None:
        key = (project, name)
        found = grouped.setdefault(key, (backend, kind, []))
        if found[0] == backend:
            found[2].append(member)

    for server in servers:
        name = workload_label(server)
        if name is not None:
            add(server.get("project_id"), name, "nova", "server",
                _member(str(server["id"]), server.get("name"), server.get("metadata") or {},
                        str(server.get("status") or ""), server.get("host")))  # fmt: skip
    by_node = {str(n["id"]): n for n in nodes}
    for allocation in allocations:
        extra = allocation.get("extra") or {}
        name = extra.get(META_WORKLOAD) if isinstance(extra, dict) else None
        if not name:
            continue
        node = by_node.get(str(allocation.get("node_uuid") or ""))
        status, _fault = allocation_status(
            allocation.get("status"), allocation.get("last_error"), node
        )
        mid = str(allocation.get("node_uuid") or allocation["id"])
        add(allocation.get("project_id"), str(name), "ironic", "baremetal_node",
            _member(mid, allocation.get("name"), extra, status,
                    (node or {}).get("name") or allocation.get("node_uuid")))  # fmt: skip
    for container in containers:
        labels = container.get("labels") or {}
        name = labels.get(META_WORKLOAD) if isinstance(labels, dict) else None
        if name:
            add(container.get("project_id"), str(name), "zun", "container",
                _member(str(container["id"]), container.get("name"), labels,
                        container_status(container)[0], container.get("host")))  # fmt: skip
    records: list[Record] = []
    for (project_id, name), (backend, kind, members) in sorted(
        grouped.items(), key=lambda item: (str(item[0][0]), item[0][1])
    ):
        members.sort(key=_index)
        statuses = [m["status"] for m in members]
        ids = [m["id"] for m in members]
        hashes = sorted({str(m["labels"].get(META_SPEC) or "") for m in members})
        records.append(
            {
                "id": workload_id(project_id, name),
                "name": name,
                "project_id": project_id,
                "status": workload_status(statuses),
                "backend": backend,
                "member_kind": kind,
                "member_ids": ids,
                "server_ids": ids if kind == "server" else [],
                "node_ids": ids if kind == "baremetal_node" else [],
                "container_ids": ids if kind == "container" else [],
                "member_names": [m["name"] for m in members],
                "member_count": len(members),
                "active_count": statuses.count("ACTIVE"),
                "failed_count": statuses.count("ERROR"),
                "hosts": sorted({str(m["host"]) for m in members if m["host"]}),
                "spec_hashes": [h for h in hashes if h],
            }
        )
    return records


def workloads_from_servers(servers: Iterable[Record]) -> list[Record]:
    """The workloads of server records alone (Nova members)."""
    return workloads_from_members(servers=servers)


def _index(member: Record) -> int:
    try:
        return int(member["labels"].get(META_MEMBER) or 0)
    except ValueError:
        return 0
