"""the dashboard's figures kept as counters: what each referral counts as, the counts per clinic
day, each acceptance's hours (services.referrals.storage.figure_counters), backfilled from the rows

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 12:00:00
"""

import os

import msgspec
import sqlalchemy as sa
from alembic import op

from services.referrals.storage import figure_counters
from shared.config import Settings

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_figures",
        sa.Column("referral_id", sa.String(36), sa.ForeignKey("referrals.id"), primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("category", sa.String(60), nullable=False),
        sa.Column("stages", sa.Integer, nullable=False),
    )
    op.create_table(
        "daily_figures",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("created_by", sa.String(36), primary_key=True),
        sa.Column("category", sa.String(60), primary_key=True),
        *(sa.Column(name, sa.Integer, nullable=False) for name in figure_counters.COUNTS),
    )
    op.create_table(
        "accept_times",
        sa.Column("offer_id", sa.String(36), primary_key=True),
        sa.Column("referral_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("partner_id", sa.String(36), nullable=False),
        sa.Column("hours", sa.Float, nullable=False),
    )
    # The rows first, the indexes after: built once rather than kept up row by row.
    figure_counters.backfill(op.get_bind(), zone=_clinic_timezone())
    op.create_index("ix_accept_times_referral_id", "accept_times", ["referral_id"])
    op.create_index("ix_accept_times_partner_day", "accept_times", ["partner_id", "day", "hours"])
    op.create_index(
        "ix_accept_times_created_by_partner_day", "accept_times", ["created_by", "partner_id", "day", "hours"]
    )


def _clinic_timezone() -> str:
    """The clinic's time zone the days are counted in: HANDOFF_CLINIC_TIMEZONE, or its default."""
    default = next(f.default for f in msgspec.structs.fields(Settings) if f.name == "clinic_timezone")
    return os.environ.get("HANDOFF_CLINIC_TIMEZONE") or str(default)


def downgrade() -> None:
    op.drop_table("accept_times")
    op.drop_table("daily_figures")
    op.drop_table("referral_figures")
