"""Tables of the store (SQLAlchemy 2 typed ORM). Changes go through an Alembic migration
in store/migrations/versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from stackfleet.store.tables import KINDS_SEEN, METADATA, RESOURCES, JSONType, last_seen_of


class Base(DeclarativeBase):
    metadata = METADATA


class Pass(Base):
    """One collection run over one cloud region."""

    __tablename__ = "passes"
    __table_args__ = (Index("ix_passes_cloud_region", "cloud", "region", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # running | complete | partial | failed | interrupted (its collector died mid-pass:
    # a later pass of the same region found it still running)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    # which process collected it (a worker's member id; None for a lone process)
    collector: Mapped[str | None] = mapped_column(String(255), nullable=True)


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


class KindSeen(Base):
    """The newest complete listing of one kind in one cloud region (tables.KINDS_SEEN)."""

    __table__ = KINDS_SEEN

    cloud: Mapped[str]
    region: Mapped[str]
    kind: Mapped[str]
    pass_id: Mapped[int]
    seen_at: Mapped[datetime]


class Resource(Base):
    """Current state of one resource, as last seen (columns: tables.RESOURCES)."""

    __table__ = RESOURCES

    pk: Mapped[int]
    cloud: Mapped[str]
    region: Mapped[str]
    kind: Mapped[str]
    resource_id: Mapped[str]
    name: Mapped[str | None]
    project_id: Mapped[str | None]
    status: Mapped[str | None]
    attrs: Mapped[dict[str, Any]]
    attrs_hash: Mapped[str]
    first_seen: Mapped[datetime]
    # the column `last_seen`: when this row itself was last written as seen (tables.py)
    row_seen: Mapped[datetime] = column_property(RESOURCES.c.last_seen)
    last_changed: Mapped[datetime]
    raw_hash: Mapped[str | None]
    # the pass that last wrote the row as seen (0: an event)
    last_pass_id: Mapped[int]
    # set when a complete pass no longer saw it; cleared if it comes back
    deleted_at: Mapped[datetime | None]
    # When the resource was last seen (tables.last_seen_of). Read-only.
    last_seen: Mapped[datetime] = column_property(last_seen_of().label("last_seen"))


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
        # (metric, ts), not (metric, kind, ..., resource_id, ts): the per-resource order
        # would spare a fleet window its sort (20,000 servers x 14 days: 2.8 s -> 1.3 s)
        # but scatters inserts over the index and halves ingest into a large table
        # (below the 100,000 samples/s target); ingest runs far more often than windows.
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
    the 5-minute rollup of raw samples, 3600 for the hourly rollup of those, 86400 for
    the daily rollup of hours)."""

    __tablename__ = "metric_rollups"
    __table_args__ = (
        Index("ix_rollups_series", "kind", "resource_id", "metric", "resolution", "bucket"),
        Index("ix_rollups_resolution_bucket", "resolution", "bucket"),
        # a window over every series of a metric: one range scan per resolution
        Index("ix_rollups_metric_window", "metric", "resolution", "kind", "bucket"),
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


class Finding(Base):
    """A policy matched a resource. Open while it matches; resolved when a later pass,
    complete for every kind the policy reads, no longer matches it."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_policy_status", "policy", "status"),
        Index("ix_findings_resource", "cloud", "region", "kind", "resource_id"),
        # at most one open finding per policy and resource, enforced by the database so
        # that two workers (or a stalled leader and its successor) cannot open two and
        # act twice under two idempotency keys
        Index(
            "uq_findings_open",
            "policy",
            "cloud",
            "region",
            "kind",
            "resource_id",
            unique=True,
            # PostgreSQL's index has the same WHERE (migration 0008); naming it here too
            # would load SQLAlchemy's PostgreSQL dialect in every process, SQLite ones
            # included (it validates the keyword), for metadata no query reads
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy: Mapped[str] = mapped_column(String(128))
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    resource_name: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(16))
    # open | resolved
    status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_matched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


class ActionRecord(Base):
    """One action on one resource, by its idempotency key: planned, waiting for
    approval, executed, verified or failed."""

    __tablename__ = "actions"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_actions_idempotency_key"),
        Index("ix_actions_status", "status"),
        Index("ix_actions_policy_updated", "policy", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    resource_name: Mapped[str | None] = mapped_column(String(255))
    finding_id: Mapped[int | None] = mapped_column(Integer)
    # awaiting-approval | approved | rejected | running | succeeded | failed | unverified
    status: Mapped[str] = mapped_column(String(24))
    destructive: Mapped[bool]
    plan: Mapped[dict[str, Any]] = mapped_column(JSONType)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    executed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(String(255))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One entry of the audit log. Append-only: each entry's hash covers its content and
    the previous entry's hash, so editing or deleting an entry breaks the chain."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_action", "action_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str | None] = mapped_column(String(128))
    target: Mapped[str | None] = mapped_column(String(768))
    action_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # id of the key whose HMAC `hash` is (None: a plain SHA-256 entry written before
    # the log was keyed)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)


class AuditHead(Base):
    """The newest audit entry's number and hash (one row): appends lock it, and verify
    compares it with the log, so removing the newest entries is detected too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class Lease(Base):
    """Where one resource is in a reclamation lease (mark -> stop -> delete), and
    when its next step is due. Owners may extend it, up to the policy's cap."""

    __tablename__ = "lifecycles"
    __table_args__ = (
        Index("ix_lifecycles_resource", "cloud", "region", "kind", "resource_id"),
        Index("ix_lifecycles_policy_stage", "policy", "stage"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy: Mapped[str] = mapped_column(String(128))
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    resource_name: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    # marked | stopped | done | cancelled
    stage: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    extended_seconds: Mapped[float] = mapped_column(default=0.0)
    max_extension_seconds: Mapped[float] = mapped_column(default=0.0)
    reminded: Mapped[list[str]] = mapped_column(JSONType)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)


class StateEvidence(Base):
    """Since when a field of a resource has held its current value, as first estimated
    when no change of it was recorded yet (the service's last-save stamp, or first
    sight). Kept so that a later save that changes nothing in the field (StackFleet's
    own mark, a metadata edit) does not make the state look younger."""

    __tablename__ = "state_evidence"
    __table_args__ = (
        UniqueConstraint(
            "cloud", "region", "kind", "resource_id", "field", name="uq_state_evidence"
        ),
        Index("ix_state_evidence_kind_field", "kind", "field"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    field: Mapped[str] = mapped_column(String(64))
    # the value, as compact JSON text (cut at 255 characters)
    value: Mapped[str] = mapped_column(String(255))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Alert(Base):
    """An alert: a label set with a stable fingerprint (Alertmanager's model), from a
    finding or received from outside. One row per firing episode: an alert that fires
    again after resolving gets a new row with the same fingerprint."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_fingerprint_status", "fingerprint", "status"),
        Index("ix_alerts_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    alertname: Mapped[str] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(32))
    labels: Mapped[dict[str, str]] = mapped_column(JSONType)
    annotations: Mapped[dict[str, str]] = mapped_column(JSONType)
    # policy | alertmanager | api
    source: Mapped[str] = mapped_column(String(32))
    # firing | resolved
    status: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finding_id: Mapped[int | None] = mapped_column(Integer)
    generator_url: Mapped[str | None] = mapped_column(Text)
    acked_by: Mapped[str | None] = mapped_column(String(255))
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the status the receivers were last told about
    notified_status: Mapped[str | None] = mapped_column(String(16))


class Silence(Base):
    """Alerts whose labels match every matcher are not routed while the silence is
    active (starts_at <= now < ends_at)."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # [{"name": ..., "value": ..., "op": "=" | "!=" | "=~" | "!~"}]
    matchers: Mapped[list[dict[str, str]]] = mapped_column(JSONType)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertNotification(Base):
    """The notification log of one alert group at one receiver (Alertmanager's nflog):
    which alerts the receiver was last told were firing and resolved, when, and when
    the group is next due. Keeps grouping and repeat intervals across restarts."""

    __tablename__ = "alert_notifications"
    __table_args__ = (UniqueConstraint("receiver", "group_id", name="uq_alert_notifications"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receiver: Mapped[str] = mapped_column(String(255))
    # a hash of group_key (indexable on every backend; keys can be long)
    group_id: Mapped[str] = mapped_column(String(64))
    group_key: Mapped[str] = mapped_column(Text)
    group_labels: Mapped[dict[str, str]] = mapped_column(JSONType)
    # when the group appeared (its first notification waits group_wait from here)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # when the group is next looked at (group_wait, then every group_interval)
    next_flush_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the newest successful notification
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # fingerprints in that notification
    firing: Mapped[list[str]] = mapped_column(JSONType)
    resolved: Mapped[list[str]] = mapped_column(JSONType)


class ConfigRevision(Base):
    """What defines one service on one host at one moment (its configuration files,
    package versions and container image tags), content-addressed: `digest` is the
    SHA-256 of the content's canonical form, so the same content is one revision.
    `tested_at` is set when a campaign's health gate passed on a host running it."""

    __tablename__ = "config_revisions"
    __table_args__ = (
        UniqueConstraint("host", "service", "digest", name="uq_config_revisions_digest"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    service: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    tested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tested_by: Mapped[str | None] = mapped_column(String(128))


class ConfigEvent(Base):
    """The history of a host's service: a revision captured (seen running), applied (a
    campaign put it there), tested (its gate passed) or rolled back to."""

    __tablename__ = "config_events"
    __table_args__ = (Index("ix_config_events_host_service", "host", "service", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    service: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(64))
    # captured | applied | tested | rolled-back
    event: Mapped[str] = mapped_column(String(16))
    campaign: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Campaign(Base):
    """A rolling campaign (patching, host maintenance): its validated spec, its plan
    (batches of hosts), where it stands, and which process carries it out now (a
    lease: `owner` renews `heartbeat_at`; another process takes over a stale lease)."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("name", name="uq_campaigns_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    # planned | running | paused | awaiting-approval | halted | aborted | completed
    status: Mapped[str] = mapped_column(String(24))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    plan: Mapped[dict[str, Any]] = mapped_column(JSONType)
    source: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    approved_batches: Mapped[list[int]] = mapped_column(JSONType)
    owner: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CampaignStep(Base):
    """One step of a campaign on one host: pending, running (started, outcome not yet
    recorded: a crash in between is resolved by observing the host), done, failed or
    skipped, with what it found (`detail`: revisions before and after, migrations...)."""

    __tablename__ = "campaign_steps"
    __table_args__ = (
        UniqueConstraint("campaign_id", "host", "step", name="uq_campaign_steps"),
        Index("ix_campaign_steps_campaign", "campaign_id", "batch"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(String(255))
    batch: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float | None] = mapped_column(Float)


class HealthStateRecord(Base):
    """The newest health verdict on one subject (host, service, instance, workload)."""

    __tablename__ = "health_states"
    __table_args__ = (
        UniqueConstraint("cloud", "region", "kind", "subject", name="uq_health_states"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    # host | service | instance | workload
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    # healthy | degraded | down | unknown
    state: Mapped[str] = mapped_column(String(16))
    failure: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HealthChange(Base):
    """A subject's health changed: the record availability is computed from."""

    __tablename__ = "health_changes"
    __table_args__ = (Index("ix_health_changes_subject", "kind", "subject", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    before: Mapped[str | None] = mapped_column(String(16))
    after: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecoveryRecord(Base):
    """One automatic recovery (a failed host, an instance, a dead service) and how far
    it got: its steps are `recovery_steps`."""

    __tablename__ = "recoveries"
    __table_args__ = (Index("ix_recoveries_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cloud: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(255))
    # host | instance | service
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    trigger: Mapped[str] = mapped_column(String(64))
    # planned | running | succeeded | failed | stopped
    status: Mapped[str] = mapped_column(String(24))
    execute: Mapped[bool]
    owner: Mapped[str | None] = mapped_column(String(255))
    evidence: Mapped[list[Any] | None] = mapped_column(JSONType, nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecoveryStep(Base):
    """One step of a recovery on one target, done at most once."""

    __tablename__ = "recovery_steps"
    __table_args__ = (UniqueConstraint("recovery_id", "name", "target", name="uq_recovery_steps"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recovery_id: Mapped[int] = mapped_column(Integer, ForeignKey("recoveries.id"))
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    # pending | running | done | failed | skipped | planned
    status: Mapped[str] = mapped_column(String(16))
    action_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
