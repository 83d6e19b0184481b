"""Each partner's practice id, derived on every write, and the index the standards APIs read
practices through.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The rule of services.directory.identifiers.practice_id, written out so this revision means the
# same thing whatever that module becomes (the ids are public and never change).
NAMESPACE = uuid.UUID("5f0c8f3e-2a41-4f7e-9d38-6b1c0e52a9d4")


def _practice_id(practice: str, partner_id: str) -> str:
    name = " ".join(practice.split()).casefold()
    key = f"practice:{name}" if name else f"practice-of:{partner_id}"
    return str(uuid.uuid5(NAMESPACE, key))


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("practice_id", sa.String(36), nullable=False, server_default=""))

    connection = op.get_bind()
    partners = sa.table(
        "partners", sa.column("id", sa.String), sa.column("practice", sa.String), sa.column("practice_id", sa.String)
    )
    for row in connection.execute(sa.select(partners.c.id, partners.c.practice)).all():
        connection.execute(
            sa.update(partners)
            .where(partners.c.id == row.id)
            .values(practice_id=_practice_id(row.practice or "", row.id))
        )

    with op.batch_alter_table("partners") as batch:
        batch.alter_column("practice_id", server_default=None)
    op.create_index("ix_partners_practice", "partners", ["status", "listed", "practice_id"])


def downgrade() -> None:
    op.drop_index("ix_partners_practice", table_name="partners")
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("practice_id")
