"""health states and their changes, recoveries and their steps

Revision ID: 0012_health
Revises: 0011_patching
Create Date: 2026-12-07 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012_health"
down_revision = "0011_patching"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "health_states",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cloud", sa.String(255), nullable=False),
        sa.Column("region", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failure", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("details", JSONType, nullable=True),
        sa.Column("checked_at", TZ, nullable=False),
        sa.Column("changed_at", TZ, nullable=False),
        sa.UniqueConstraint("cloud", "region", "kind", "subject", name="uq_health_states"),
    )
    op.create_table(
        "health_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cloud", sa.String(255), nullable=False),
        sa.Column("region", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("before", sa.String(16), nullable=True),
        sa.Column("after", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index("ix_health_changes_subject", "health_changes", ["kind", "subject", "at"])
    op.create_table(
        "recoveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cloud", sa.String(255), nullable=False),
        sa.Column("region", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("execute", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("evidence", JSONType, nullable=True),
        sa.Column("details", JSONType, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
    )
    op.create_index("ix_recoveries_status", "recoveries", ["status"])
    op.create_table(
        "recovery_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recovery_id", sa.Integer, sa.ForeignKey("recoveries.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("action_id", sa.Integer, nullable=True),
        sa.Column("details", JSONType, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("finished_at", TZ, nullable=True),
        sa.UniqueConstraint("recovery_id", "name", "target", name="uq_recovery_steps"),
    )


def downgrade() -> None:
    op.drop_table("recovery_steps")
    op.drop_index("ix_recoveries_status", "recoveries")
    op.drop_table("recoveries")
    op.drop_index("ix_health_changes_subject", "health_changes")
    op.drop_table("health_changes")
    op.drop_table("health_states")
