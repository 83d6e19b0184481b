"""what each email was, recorded when it is staged (read instead of outbox payloads)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:00:00
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 500


def upgrade() -> None:
    emails = op.create_table(
        "emails",
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.Column("referral_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("notification_id"),
    )
    # Every email staged so far, read once from its outbox payload (JSON as shared.codec wrote it).
    outbox = sa.table(
        "outbox",
        sa.column("id", sa.String),
        sa.column("payload", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    rows = op.get_bind().execute(sa.select(outbox.c.id, outbox.c.payload, outbox.c.created_at).order_by(outbox.c.id))
    staged = []
    for row in rows:
        message = json.loads(row.payload)
        if message.get("type") != "send_email":
            continue
        staged.append(
            {
                "notification_id": row.id,
                "referral_id": message.get("referral_id"),
                "kind": message["kind"],
                "recipient": message["to"],
                "staged_at": row.created_at,
            }
        )
    for start in range(0, len(staged), BATCH):
        op.bulk_insert(emails, staged[start : start + BATCH])


def downgrade() -> None:
    op.drop_table("emails")
