"""Workloads as inventory resources: the labels provisioning sets on every member, and
the `workload` records derived from the members a collection pass listed (no I/O).

A member carries both the Nova tag `stackfleet-workload:<name>` and the metadata
`stackfleet-workload: <name>` (a tag alone, which anyone may add, does not make a
server a member). Bare-metal nodes carry the same keys in their `extra`."""

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


def workloads_from_servers(servers: Iterable[Record]) -> list[Record]:
    """One `workload` record per (project, workload label) among server records, its
    members as the relation `members` (their ids)."""
    grouped: dict[tuple[str | None, str], list[Record]] = {}
    for server in servers:
        name = workload_label(server)
        if name is None:
            continue
        grouped.setdefault((server.get("project_id"), name), []).append(server)
    records: list[Record] = []
    for (project_id, name), members in sorted(
        grouped.items(), key=lambda item: (str(item[0][0]), item[0][1])
    ):
        members.sort(key=lambda s: _index(s))
        statuses = [str(s.get("status") or "") for s in members]
        hashes = sorted({str((s.get("metadata") or {}).get(META_SPEC) or "") for s in members})
        records.append(
            {
                "id": workload_id(project_id, name),
                "name": name,
                "project_id": project_id,
                "status": workload_status(statuses),
                "backend": "nova",
                "member_ids": [str(s["id"]) for s in members],
                "member_names": [str(s.get("name") or "") for s in members],
                "member_count": len(members),
                "active_count": statuses.count("ACTIVE"),
                "failed_count": statuses.count("ERROR"),
                "hosts": sorted({str(s["host"]) for s in members if s.get("host")}),
                "spec_hashes": [h for h in hashes if h],
            }
        )
    return records


def _index(server: Record) -> int:
    try:
        return int((server.get("metadata") or {}).get(META_MEMBER) or 0)
    except ValueError:
        return 0
