"""passes record which process collected them (scale-out workers)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 14:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("passes") as batch:
        batch.add_column(sa.Column("collector", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("passes") as batch:
        batch.drop_column("collector")
