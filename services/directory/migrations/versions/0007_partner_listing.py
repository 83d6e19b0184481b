"""A directory partners keep true: capacity until a day, licence expiry, the confirmation cycle's
flags; each change's history with who made it; changes waiting for the admin's review; used
manage-link submissions; and the sweep's sent notices.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("accepting_until", sa.Date(), nullable=True))
        batch.add_column(sa.Column("licence_expires_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("needs_review_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("hidden_until_confirmed", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "partner_history",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("partner_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_partner_history_partner", "partner_history", ["partner_id", "at"])
    op.create_table(
        "listing_reviews",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("partner_id", sa.String(36), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(320), nullable=True),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_listing_reviews_status", "listing_reviews", ["status", "requested_at"])
    op.create_index("ix_listing_reviews_partner", "listing_reviews", ["partner_id", "requested_at"])
    op.create_table(
        "manage_link_uses",
        sa.Column("jti", sa.String(36), primary_key=True),
        sa.Column("partner_id", sa.String(36), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "listing_notices",
        sa.Column("partner_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(30), primary_key=True),
        sa.Column("cycle", sa.String(40), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("listing_notices")
    op.drop_table("manage_link_uses")
    op.drop_index("ix_listing_reviews_partner", table_name="listing_reviews")
    op.drop_index("ix_listing_reviews_status", table_name="listing_reviews")
    op.drop_table("listing_reviews")
    op.drop_index("ix_partner_history_partner", table_name="partner_history")
    op.drop_table("partner_history")
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("hidden_until_confirmed")
        batch.drop_column("needs_review_since")
        batch.drop_column("licence_expires_on")
        batch.drop_column("accepting_until")
