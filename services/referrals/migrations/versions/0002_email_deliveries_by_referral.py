"""index email deliveries by referral, for "needs attention"

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:30:00
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("email_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_email_deliveries_referral_outcome", ["referral_id", "outcome"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("email_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_email_deliveries_referral_outcome")
