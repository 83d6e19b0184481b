"""indexes the staff's reads need at a million referrals: a therapist's own newest, the FHIR
API's last-changed order, what needs attention (offers past half their deadline, no-shows), the
admin's count of emergency stops

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 12:00:00
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_referrals_created_by_created_at", "referrals", ["created_by", "created_at"]),
    ("ix_referrals_updated_at", "referrals", ["updated_at"]),
    ("ix_offers_status_reminded", "offers", ["status", "reminded_at"]),
    ("ix_outcomes_outcome_referral", "outcomes", ["outcome", "referral_id"]),
    ("ix_audit_log_action_at", "audit_log", ["action", "at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
