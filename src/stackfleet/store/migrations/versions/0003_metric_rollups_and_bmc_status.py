"""metric rollups and BMC status

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cloud", sa.String(length=255), nullable=False),
        sa.Column("region", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Double(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("minimum", sa.Double(), nullable=False),
        sa.Column("maximum", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("metric_rollups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollups_resolution_bucket", ["resolution", "bucket"], unique=False
        )
        batch_op.create_index(
            "ix_rollups_series",
            ["kind", "resource_id", "metric", "resolution", "bucket"],
            unique=False,
        )

    op.create_table(
        "bmc_status",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cloud", sa.String(length=255), nullable=False),
        sa.Column("region", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=1024), nullable=False),
        sa.Column("system_id", sa.String(length=1024), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.Double(), nullable=True),
        sa.Column("ok_at", sa.Double(), nullable=True),
        sa.Column("changed_at", sa.Double(), nullable=True),
        sa.Column("fingerprint", sa.String(length=32), nullable=True),
        sa.Column("power_budget_watts", sa.Double(), nullable=True),
        sa.Column("reading", JSON_TYPE, nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("cloud", "region", "name", name="uq_bmc_status"),
    )


def downgrade() -> None:
    op.drop_table("bmc_status")
    with op.batch_alter_table("metric_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_rollups_series")
        batch_op.drop_index("ix_rollups_resolution_bucket")
    op.drop_table("metric_rollups")
