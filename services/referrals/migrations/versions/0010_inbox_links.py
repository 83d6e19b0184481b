"""the partner inbox: a generation per partner email address, bumped to revoke its links

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 01:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No rows: an address without one is at generation 0, so every link issued so far stays good.
    op.create_table(
        "inbox_links",
        sa.Column("email", sa.String(length=320), primary_key=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=36), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("inbox_links")
