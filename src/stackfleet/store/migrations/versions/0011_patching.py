"""configuration revisions and their history, campaigns and their per-host steps

Revision ID: 0011_patching
Revises: 0010
Create Date: 2026-12-07 17:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011_patching"
down_revision = "0010"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "config_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("content", JSONType, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tested_by", sa.String(128), nullable=True),
        sa.UniqueConstraint("host", "service", "digest", name="uq_config_revisions_digest"),
    )
    op.create_table(
        "config_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("campaign", sa.String(128), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_config_events_host_service", "config_events", ["host", "service", "id"])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("spec", JSONType, nullable=False),
        sa.Column("plan", JSONType, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("approved_batches", JSONType, nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )
    op.create_table(
        "campaign_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "campaign_id",
            sa.Integer,
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("batch", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", JSONType, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.UniqueConstraint("campaign_id", "host", "step", name="uq_campaign_steps"),
    )
    op.create_index("ix_campaign_steps_campaign", "campaign_steps", ["campaign_id", "batch"])


def downgrade() -> None:
    op.drop_index("ix_campaign_steps_campaign", table_name="campaign_steps")
    op.drop_table("campaign_steps")
    op.drop_table("campaigns")
    op.drop_index("ix_config_events_host_service", table_name="config_events")
    op.drop_table("config_events")
    op.drop_table("config_revisions")
