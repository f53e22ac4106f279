"""Members and the plan: which servers belong to a workload (by the labels StackFleet
set on them, never by name alone), and what apply would change — a pure comparison of
the spec with what exists, so a plan of thousands of members costs no API call beyond
the one listing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from stackfleet.core.times import parse_time
from stackfleet.model.workloads import (  # noqa: F401 - the labels, re-exported
    META_LEASE,
    META_MEMBER,
    META_SPEC,
    META_WORKLOAD,
    TAG_PREFIX,
    workload_tag,
)
from stackfleet.provision.resolve import Resolved

# statuses of members that are gone or going
GONE_STATUSES = frozenset({"DELETED", "SOFT_DELETED"})
FAILED_STATUSES = frozenset({"ERROR"})

Record = dict[str, Any]


def group_name(name: str) -> str:
    """The server group made for a workload's placement policy."""
    return f"stackfleet-{name}"


@dataclass
class Member:
    """One server of a workload, as the listing showed it."""

    id: str
    name: str
    index: int
    status: str
    spec_hash: str
    created: datetime | None
    host: str | None = None
    fault: str | None = None
    task_state: str | None = None
    raw: Record = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


def member_of(server: Record, workload: str, project_id: str | None) -> Member | None:
    """The server as a member of `workload`, or None when it is not one: it must carry
    both the workload's tag and its metadata label, in the workload's project."""
    metadata = server.get("metadata") or {}
    if workload_tag(workload) not in (server.get("tags") or []):
        return None
    if metadata.get(META_WORKLOAD) != workload:
        return None
    if project_id and server.get("tenant_id") not in (None, project_id):
        return None
    try:
        index = int(metadata.get(META_MEMBER) or 0)
    except ValueError:
        index = 0
    fault = server.get("fault") or {}
    created = server.get("created")
    return Member(
        id=str(server["id"]),
        name=str(server.get("name") or ""),
        index=index,
        status=str(server.get("status") or ""),
        spec_hash=str(metadata.get(META_SPEC) or ""),
        created=parse_time(created),
        host=server.get("OS-EXT-SRV-ATTR:host"),
        fault=fault.get("message") if isinstance(fault, dict) else None,
        task_state=server.get("OS-EXT-STS:task_state"),
        raw=server,
    )


def spec_hash(resolved: Resolved) -> str:
    """A fingerprint of what a member is built from: a member built from another one is
    replaced. Metadata, tags and owner are not part of it (they do not need a rebuild)."""
    w = resolved.workload
    basis = {
        "kind": w.kind,
        "image": resolved.image_id,
        "flavor": (resolved.flavor or {}).get("id"),
        "networks": resolved.networks,
        "security_groups": resolved.security_groups,
        "key_pair": w.key_pair,
        "volumes": w.volumes.model_dump(mode="json") if w.volumes else None,
        "zone": w.placement.availability_zone,
        "group": w.placement.server_group,
        "baremetal": w.baremetal.model_dump(mode="json") if w.baremetal else None,
    }
    if w.container is not None:  # (absent for other kinds: their fingerprints stay)
        basis["container"] = w.container.model_dump(mode="json")
    text = json.dumps(basis, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


StepKind = Literal["create", "replace", "delete", "keep"]


@dataclass
class Step:
    """One line of a plan."""

    kind: StepKind
    index: int
    name: str
    reason: str
    member: Member | None = None


@dataclass
class WorkloadPlan:
    """What apply would do to one workload."""

    resolved: Resolved
    members: list[Member]
    steps: list[Step]
    spec_hash: str
    group_needed: bool = False  # the workload's server group does not exist yet
    group_id: str | None = None
    destroy: bool = False

    @property
    def name(self) -> str:
        return self.resolved.workload.name

    def of(self, kind: StepKind) -> list[Step]:
        return [s for s in self.steps if s.kind == kind]

    @property
    def changes(self) -> bool:
        return any(s.kind != "keep" for s in self.steps) or self.group_needed

    def counts(self) -> dict[str, int]:
        return {k: len(self.of(k)) for k in ("create", "replace", "delete", "keep")}


def plan_workload(
    resolved: Resolved,
    members: list[Member],
    group_id: str | None = None,
    destroy: bool = False,
) -> WorkloadPlan:
    """Compare the spec with its members: keep healthy ones built from this spec,
    replace failed or outdated ones, delete beyond `count` (newest first unless the
    spec says oldest), create what is missing (the lowest free member numbers)."""
    workload = resolved.workload
    digest = spec_hash(resolved)
    live = [m for m in members if m.status not in GONE_STATUSES]
    wanted = 0 if destroy else workload.count
    steps: list[Step] = []
    # when shrinking, failed members go first, then by age as the spec says
    newest_first = workload.scale_down == "newest"
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def age_key(m: Member) -> tuple[int, float, int]:
        stamp = (m.created or epoch).timestamp()
        return (0 if m.failed else 1, -stamp if newest_first else stamp, -m.index)

    ordered = sorted(live, key=age_key)
    surplus = max(0, len(live) - wanted)
    removed = ordered[:surplus]
    for member in removed:
        reason = "destroy" if destroy else f"count is {wanted}"
        steps.append(Step("delete", member.index, member.name, reason, member))
    kept = [m for m in live if m not in removed]
    used: set[int] = set()
    for member in sorted(kept, key=lambda m: m.index):
        if member.index in used or member.index < 1:
            # a duplicate number (a member copied by hand?) is replaced under a free one
            steps.append(
                Step("delete", member.index, member.name, "duplicate member number", member)
            )
            continue
        used.add(member.index)
        if member.failed:
            reason = f"in ERROR: {member.fault}" if member.fault else "in ERROR"
            steps.append(Step("replace", member.index, member.name, reason, member))
        elif member.spec_hash != digest:
            steps.append(
                Step("replace", member.index, member.name, "built from an older spec", member)
            )
        else:
            steps.append(Step("keep", member.index, member.name, member.status, member))
    missing = wanted - len(used)
    number = 1
    while missing > 0:
        if number not in used:
            used.add(number)
            steps.append(Step("create", number, member_name(workload.name, number), "missing"))
            missing -= 1
        number += 1
    needs_group = bool(
        workload.placement.server_group and group_id is None and not destroy and wanted > 0
    )
    return WorkloadPlan(resolved, live, steps, digest, needs_group, group_id, destroy)


def member_name(workload: str, index: int) -> str:
    return f"{workload}-{index}"


def lease_expiry(lease: timedelta | None, now: datetime) -> str | None:
    if lease is None:
        return None
    return (now + lease).strftime("%Y-%m-%dT%H:%M:%SZ")
