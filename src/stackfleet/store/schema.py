"""Tables of the store (SQLAlchemy 2 typed ORM). Changes go through an Alembic migration
in store/migrations/versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class Pass(Base):
    """One collection run over one cloud region."""

    __tablename__ = "passes"
    __table_args__ = (Index("ix_passes_cloud_region", "cloud", "region", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # running | complete | partial | failed
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    requests: Mapped[int] = mapped_column(Integer, default=0)


class PassKind(Base):
    """How the listing of one kind went in one pass. Only a complete listing may mark
    resources of that kind as gone."""

    __tablename__ = "pass_kinds"

    pass_id: Mapped[int] = mapped_column(
        ForeignKey("passes.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    complete: Mapped[bool]
    count: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(default=0.0)
    error: Mapped[str | None] = mapped_column(Text)


class Resource(Base):
    """Current state of one resource, as last seen."""

    __tablename__ = "resources"
    __table_args__ = (
        UniqueConstraint("cloud", "region", "kind", "resource_id", name="uq_resource"),
        Index("ix_resources_kind_status", "kind", "status"),
        Index("ix_resources_kind_project", "kind", "project_id"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(64))
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONType)
    attrs_hash: Mapped[str] = mapped_column(String(32))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_changed: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_pass_id: Mapped[int] = mapped_column(Integer)
    # set when a complete pass no longer saw it; cleared if it comes back
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResourceChange(Base):
    """A change of one key field (status, host, power state, ...) of one resource."""

    __tablename__ = "resource_changes"
    __table_args__ = (Index("ix_changes_resource", "cloud", "region", "kind", "resource_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    field: Mapped[str] = mapped_column(String(64))
    old: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new: Mapped[Any] = mapped_column(JSONType, nullable=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pass_id: Mapped[int] = mapped_column(Integer)


class MetricSample(Base):
    """One reading of one metric on one resource (raw resolution; rollups are derived).

    Resources are named as in `resources` (cloud, region, kind, resource_id) but not
    joined: a BMC or a database server may be sampled before any pass has seen it."""

    __tablename__ = "metric_samples"
    __table_args__ = (
        Index("ix_samples_series", "kind", "resource_id", "metric", "ts"),
        Index("ix_samples_metric_ts", "metric", "ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    metric: Mapped[str] = mapped_column(String(128))
    # seconds since the epoch (UTC): cheap to store, compare and aggregate
    ts: Mapped[float]
    value: Mapped[float]


class MetricRollup(Base):
    """Samples of one series aggregated over a bucket of `resolution` seconds (300 for
    the 5-minute rollup of raw samples, 3600 for the hourly rollup of those)."""

    __tablename__ = "metric_rollups"
    __table_args__ = (
        Index("ix_rollups_series", "kind", "resource_id", "metric", "resolution", "bucket"),
        Index("ix_rollups_resolution_bucket", "resolution", "bucket"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    metric: Mapped[str] = mapped_column(String(128))
    resolution: Mapped[int] = mapped_column(Integer)
    # start of the bucket, seconds since the epoch (a multiple of `resolution`)
    bucket: Mapped[float]
    count: Mapped[int] = mapped_column(Integer)
    total: Mapped[float]
    minimum: Mapped[float]
    maximum: Mapped[float]


class BmcStatusRecord(Base):
    """The newest outcome of reading one host's BMC, and its last good reading."""

    __tablename__ = "bmc_status"
    __table_args__ = (UniqueConstraint("cloud", "region", "name", name="uq_bmc_status"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(1024))
    system_id: Mapped[str | None] = mapped_column(String(1024))
    source: Mapped[str] = mapped_column(Text)
    # stackfleet.model.hardware.STATUSES
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    # seconds since the epoch: newest attempt, newest success, last change of values
    checked_at: Mapped[float | None]
    ok_at: Mapped[float | None]
    changed_at: Mapped[float | None]
    fingerprint: Mapped[str | None] = mapped_column(String(32))
    power_budget_watts: Mapped[float | None]
    reading: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
