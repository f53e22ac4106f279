"""metric samples

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 16:22:16.643691
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cloud", sa.String(length=255), nullable=False),
        sa.Column("region", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("metric_samples", schema=None) as batch_op:
        batch_op.create_index("ix_samples_metric_ts", ["metric", "ts"], unique=False)
        batch_op.create_index(
            "ix_samples_series", ["kind", "resource_id", "metric", "ts"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("metric_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_samples_series")
        batch_op.drop_index("ix_samples_metric_ts")

    op.drop_table("metric_samples")
