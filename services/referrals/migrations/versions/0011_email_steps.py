"""each email names the timeline step that sent it, so the referral's page shows it there

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Emails staged before this stay without a step: the page places them by their time.
    with op.batch_alter_table("emails") as batch:
        batch.add_column(sa.Column("event_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("emails") as batch:
        batch.drop_column("event_id")
