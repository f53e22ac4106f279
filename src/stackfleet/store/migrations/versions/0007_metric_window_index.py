"""metric window indexes (daily rollups need no new table: resolution 86400)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 19:40:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_rollups_metric_window",
        "metric_rollups",
        ["metric", "resolution", "kind", "bucket"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_rollups_metric_window", table_name="metric_rollups")
