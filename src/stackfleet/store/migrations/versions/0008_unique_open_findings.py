"""at most one open finding per policy and resource (database-enforced)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Resolve duplicates a race may have left (keep the oldest open finding of each
    # policy and resource) before the index can be built.
    op.execute(
        sa.text(
            "UPDATE findings SET status = 'resolved', resolved_at = last_matched_at "
            "WHERE status = 'open' AND id NOT IN ("
            " SELECT keep FROM (SELECT MIN(id) AS keep FROM findings WHERE status = 'open'"
            " GROUP BY policy, cloud, region, kind, resource_id) AS oldest)"
        )
    )
    op.create_index(
        "uq_findings_open",
        "findings",
        ["policy", "cloud", "region", "kind", "resource_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("uq_findings_open", table_name="findings")
