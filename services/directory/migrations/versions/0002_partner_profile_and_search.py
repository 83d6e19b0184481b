"""Every partner field of the brief, search helpers and indexes, and the catalogue revision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_COLUMNS: list[sa.Column] = [
    sa.Column("specialties", sa.JSON(), nullable=False, server_default="[]"),
    sa.Column("bio", sa.Text(), nullable=False, server_default=""),
    sa.Column("hours", sa.String(500), nullable=False, server_default=""),
    sa.Column("insurance_notes", sa.Text(), nullable=False, server_default=""),
    sa.Column("accessibility_notes", sa.Text(), nullable=False, server_default=""),
    sa.Column("npi", sa.String(10), nullable=True),
    sa.Column("license_number", sa.String(40), nullable=False, server_default=""),
    sa.Column("license_state", sa.String(20), nullable=False, server_default=""),
    sa.Column("accepts_referrals_from", sa.JSON(), nullable=False, server_default="[]"),
    sa.Column("response_window_days", sa.Integer(), nullable=True),
    sa.Column("search_text", sa.Text(), nullable=False, server_default=""),
    sa.Column("language_keys", sa.String(1000), nullable=False, server_default="|"),
]


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        for column in NEW_COLUMNS:
            batch.add_column(column)
        batch.create_unique_constraint("uq_partners_npi", ["npi"])
    op.create_index("ix_partners_category_lat_lon", "partners", ["category", "lat", "lon"])
    op.create_index("ix_partners_lat_lon", "partners", ["lat", "lon"])

    # Fill the derived search columns of partners stored before this revision (same rules as
    # services.directory.search: lower-cased text, "|english|spanish|").
    connection = op.get_bind()
    partners = sa.table(
        "partners",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("credentials", sa.String),
        sa.column("practice", sa.String),
        sa.column("address_city", sa.String),
        sa.column("address_postal_code", sa.String),
        sa.column("languages", sa.JSON),
        sa.column("search_text", sa.Text),
        sa.column("language_keys", sa.String),
    )
    for row in connection.execute(sa.select(partners)).all():
        languages = row.languages if isinstance(row.languages, list) else json.loads(row.languages or "[]")
        text = " ".join(
            " ".join(part.split())
            for part in (row.name, row.credentials, row.practice, row.address_city, row.address_postal_code)
            if part
        ).casefold()
        keys = "|" + "".join(f"{language.casefold()}|" for language in languages)
        connection.execute(
            sa.update(partners).where(partners.c.id == row.id).values(search_text=text, language_keys=keys)
        )

    catalogue = op.create_table(
        "catalogue",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.bulk_insert(catalogue, [{"id": 1, "revision": 0}])


def downgrade() -> None:
    op.drop_table("catalogue")
    op.drop_index("ix_partners_lat_lon", table_name="partners")
    op.drop_index("ix_partners_category_lat_lon", table_name="partners")
    with op.batch_alter_table("partners") as batch:
        batch.drop_constraint("uq_partners_npi", type_="unique")
        for column in reversed(NEW_COLUMNS):
            batch.drop_column(column.name)
