"""referrals sent together (one per group of reasons, under one consent) share a batch

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: every referral made before was sent alone, and adding it rewrites nothing.
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(length=36), nullable=True))
        batch.create_index("ix_referrals_batch_id", ["batch_id"])


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_index("ix_referrals_batch_id")
        batch.drop_column("batch_id")
