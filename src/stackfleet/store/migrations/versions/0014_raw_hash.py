"""the raw hash of each resource's item as listed, so a pass skips building unchanged ones

Revision ID: 0014_raw_hash
Revises: 0013_pass_seen
Create Date: 2026-12-07 21:30:00.000000

`resources.raw_hash`: the hash of the item's JSON as the service sent it (keyed by the
version of the kind's record builder), written by a pass that built the row's record
from it and cleared by any other writer. Upgraded rows have none: each is built once
more by the next pass. The pass-read index covers the column too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_raw_hash"
down_revision = "0013_pass_seen"
branch_labels = None
depends_on = None

_PASS_READ = [
    "cloud",
    "region",
    "kind",
    "resource_id",
    "attrs_hash",
    "deleted_at",
    "last_seen",
    "last_pass_id",
]


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("raw_hash", sa.String(32), nullable=True))
    op.drop_index("ix_resources_pass_read", table_name="resources")
    op.create_index("ix_resources_pass_read", "resources", [*_PASS_READ, "raw_hash"])


def downgrade() -> None:
    op.drop_index("ix_resources_pass_read", table_name="resources")
    op.create_index("ix_resources_pass_read", "resources", _PASS_READ)
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("raw_hash")
