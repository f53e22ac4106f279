"""the newest complete listing of each kind, so a pass stops rewriting unchanged rows

Revision ID: 0013_pass_seen
Revises: 0012_health
Create Date: 2026-12-07 20:45:00.000000

`resources.last_seen` / `last_pass_id` keep their names and become what the row itself
was last written with; a live resource's last-seen time is the later of that and its
kind's `kinds_seen.seen_at` (store.schema.Resource.last_seen). An upgraded store starts
with no `kinds_seen` rows, so every row reads as before until its kind's next complete
listing. The downgrade writes each live row's time back before dropping the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_pass_seen"
down_revision = "0012_health"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

_SEEN = (
    "SELECT {column} FROM kinds_seen WHERE kinds_seen.cloud = resources.cloud "
    "AND kinds_seen.region = resources.region AND kinds_seen.kind = resources.kind"
)


def upgrade() -> None:
    op.create_table(
        "kinds_seen",
        sa.Column("cloud", sa.String(255), primary_key=True),
        sa.Column("region", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("pass_id", sa.Integer, nullable=False),
        sa.Column("seen_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_resources_pass_read",
        "resources",
        [
            "cloud",
            "region",
            "kind",
            "resource_id",
            "attrs_hash",
            "deleted_at",
            "last_seen",
            "last_pass_id",
        ],
    )


def downgrade() -> None:
    op.execute(
        f"UPDATE resources SET last_seen = ({_SEEN.format(column='seen_at')}), "
        f"last_pass_id = ({_SEEN.format(column='pass_id')}) "
        f"WHERE deleted_at IS NULL AND ({_SEEN.format(column='seen_at')}) > last_seen"
    )
    op.drop_index("ix_resources_pass_read", "resources")
    op.drop_table("kinds_seen")
