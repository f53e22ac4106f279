"""The API's response bodies, as Pydantic models: they are the OpenAPI documentation.

Resource bodies carry each kind's own fields (see ``GET /v1/kinds``), so their models
declare the common keys and allow the rest."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stackfleet.model import KINDS

# Built from the model so /docs offers every kind StackFleet knows, and a new kind needs
# no change here.
ResourceKind = Enum("ResourceKind", {name: name for name in KINDS}, type=str)  # type: ignore[misc]
ResourceKind.__doc__ = "A resource kind StackFleet inventories."


class Health(BaseModel):
    """The API is up and its store answers."""

    status: str = Field(examples=["ok"])
    store: str = Field(examples=["ok"])


class Links(BaseModel):
    """Paging links; `next` is null on the last page."""

    next: str | None = None


class ResourcePage(BaseModel):
    """One page of resources of one kind."""

    kind: str
    total: int = Field(description="Resources matching the filters, before paging.")
    limit: int
    offset: int
    items: list[dict[str, Any]] = Field(
        description="Records with the kind's fields plus cloud, region, kind, first_seen, "
        "last_seen, last_changed and deleted_at."
    )
    links: Links


class RelatedResource(BaseModel):
    """A resource another one points at (or that points at it)."""

    kind: str
    id: str
    name: str | None = None
    status: str | None = None
    project_id: str | None = None


class Change(BaseModel):
    """A recorded change of one history field."""

    field: str
    old: Any = None
    new: Any = None
    changed_at: str | None = None
    pass_id: int


class ResourceDetail(BaseModel):
    """One resource with its relations and its recent changes (newest first)."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    cloud: str
    region: str
    name: str | None = None
    project_id: str | None = None
    status: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    last_changed: str | None = None
    deleted_at: str | None = None
    relations: dict[str, list[RelatedResource]] = Field(
        description="Relation name -> related resources, forward (server -> hypervisor) "
        "and reverse (server -> ports)."
    )
    changes: list[Change]


class FieldInfo(BaseModel):
    """One field of a kind."""

    name: str
    type: str = Field(description="JSON type: string, integer, number, boolean, array, object.")
    history: bool = Field(description="Changes of this field are recorded.")
    doc: str = ""


class RelationInfo(BaseModel):
    """A relation from a kind to another: `field` holds the target's `target_field`."""

    name: str
    target: str
    field: str
    target_field: str
    many: bool
    reverse: str | None = Field(description="The relation's name seen from the target.")


class ReverseRelationInfo(BaseModel):
    """Another kind's relation that points at this one."""

    name: str
    source: str = Field(description="The kind that holds the relation.")
    field: str = Field(description="The source's field that holds this kind's key.")


class KindInfo(BaseModel):
    """A resource kind as StackFleet models it."""

    name: str
    collection: str
    service: str = Field(description="The service (catalog type) that owns the kind.")
    doc: str
    fields: list[FieldInfo]
    relations: list[RelationInfo]
    reverse_relations: list[ReverseRelationInfo]


class KindList(BaseModel):
    """Every kind StackFleet knows."""

    kinds: list[KindInfo]


class Capacity(BaseModel):
    """Placement usage and capacity of one resource class, summed over hypervisors."""

    used: int | float
    capacity: int | float
    percent: float | None = None


class HypervisorCounts(BaseModel):
    """Hypervisors by state."""

    total: int
    up: int
    down: int


class Summary(BaseModel):
    """The fleet at a glance."""

    model_config = ConfigDict(extra="allow")

    clouds: list[str] = Field(description="cloud/region pairs with resources.")
    counts: dict[str, int] = Field(description="Resources by kind.")
    hypervisors: HypervisorCounts
    capacity: dict[str, Capacity] = Field(description="By resource class: vcpu, memory_mb, ...")
    servers_by_status: dict[str, int]
    services: dict[str, dict[str, int]] = Field(
        description="Service kind -> state (up/down) -> count."
    )


class PassKindOutcome(BaseModel):
    """How listing one kind went in one pass."""

    complete: bool
    count: int
    requests: int
    seconds: float
    error: str | None = None


class PassInfo(BaseModel):
    """One collection pass over one cloud region."""

    id: int
    cloud: str
    region: str
    status: str = Field(
        description="running, complete, partial, failed, or interrupted (its collector "
        "stopped mid-pass)."
    )
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    requests: int
    collector: str | None = Field(
        default=None, description="The worker that collected it (None: a lone process)."
    )
    kinds: dict[str, PassKindOutcome]


class PassList(BaseModel):
    """Passes, newest first."""

    passes: list[PassInfo]
