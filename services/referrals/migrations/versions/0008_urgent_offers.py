"""each offering of an offer carries its own nonce, so a link from an earlier offering is refused;
each offer remembers when its partner said they had seen it (an urgent referral has several)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: offers made before this revision have none, and their links (which carry none
    # either) keep working until the offer is next withdrawn or made again.
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("offer_nonce", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("acknowledged_at")
        batch.drop_column("offer_nonce")
