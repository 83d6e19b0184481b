"""clients as records of their own; a referral names its client and who makes the next call

Every existing referral gets a client record of its own, made from the client details it was
issued with: never one record for two referrals, even with the same name, because nothing tells
two people of the same name apart (issue 12: clearances followed the name to the wrong person).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 23:50:00
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Written into the migration (not imported) so that it keeps meaning what it meant when it ran.
_LANGUAGE_CODES = {
    "english": "en",
    "spanish": "es",
    "español": "es",
    "haitian creole": "ht",
    "portuguese": "pt",
    "french": "fr",
    "vietnamese": "vi",
    "chinese": "zh",
    "arabic": "ar",
    "russian": "ru",
    "tagalog": "tl",
    "korean": "ko",
    "german": "de",
    "italian": "it",
    "polish": "pl",
    "ukrainian": "uk",
}


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("phone_digits", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("preferred_contact", sa.String(length=10), nullable=True),
        sa.Column("language", sa.String(length=40), nullable=False),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("email_consent", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("clients") as batch:
        batch.create_index("ix_clients_phone_digits", ["phone_digits"], unique=False)
        batch.create_index("ix_clients_date_of_birth", ["date_of_birth"], unique=False)
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("client_id", sa.String(length=36), nullable=True))
        batch.add_column(
            sa.Column("next_step", sa.String(length=30), nullable=False, server_default="partner_contacts_client")
        )

    connection = op.get_bind()
    referrals = sa.table(
        "referrals",
        sa.column("id", sa.String),
        sa.column("client", sa.JSON),
        sa.column("client_id", sa.String),
        sa.column("created_by", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    clients = sa.table(
        "clients",
        *(
            sa.column(name)
            for name in (
                "id",
                "name",
                "phone",
                "phone_digits",
                "email",
                "preferred_contact",
                "language",
                "postal_code",
                "email_consent",
                "created_by",
                "created_at",
            )
        ),
    )
    existing = connection.execute(
        sa.select(referrals.c.id, referrals.c.client, referrals.c.created_by, referrals.c.created_at)
    ).all()
    for referral in existing:
        client = dict(referral.client or {})
        client_id = str(uuid.uuid4())
        phone = _text(client.get("phone"), 40)
        email = _text(client.get("email"), 320)
        language = _text(client.get("language"), 40) or "en"
        connection.execute(
            sa.insert(clients).values(
                id=client_id,
                name=_text(client.get("name"), 200) or "(no name recorded)",
                phone=phone,
                phone_digits="".join(ch for ch in phone or "" if ch.isdigit())[:20] or None,
                email=email,
                preferred_contact="phone" if phone else "email" if email else None,
                language=_LANGUAGE_CODES.get(language.casefold(), language),
                postal_code=_text(client.get("postal_code"), 20),
                email_consent=False,
                created_by=referral.created_by,
                created_at=referral.created_at,
            )
        )
        connection.execute(sa.update(referrals).where(referrals.c.id == referral.id).values(client_id=client_id))

    with op.batch_alter_table("referrals") as batch:
        batch.alter_column("client_id", existing_type=sa.String(length=36), nullable=False)
        batch.create_foreign_key("fk_referrals_client_id_clients", "clients", ["client_id"], ["id"])
        batch.create_index("ix_referrals_client_id", ["client_id"], unique=False)
        batch.drop_column("client")


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("client", sa.JSON(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT r.id, c.name, c.email, c.phone, c.postal_code, c.language "
            "FROM referrals r JOIN clients c ON c.id = r.client_id"
        )
    ).all()
    referrals = sa.table("referrals", sa.column("id", sa.String), sa.column("client", sa.JSON))
    for row in rows:
        client = {"name": row.name, "email": row.email, "phone": row.phone, "postal_code": row.postal_code}
        client["language"] = row.language
        connection.execute(sa.update(referrals).where(referrals.c.id == row.id).values(client=client))
    with op.batch_alter_table("referrals") as batch:
        batch.alter_column("client", existing_type=sa.JSON(), nullable=False)
        batch.drop_index("ix_referrals_client_id")
        batch.drop_constraint("fk_referrals_client_id_clients", type_="foreignkey")
        batch.drop_column("next_step")
        batch.drop_column("client_id")
    with op.batch_alter_table("clients") as batch:
        batch.drop_index("ix_clients_date_of_birth")
        batch.drop_index("ix_clients_phone_digits")
    op.drop_table("clients")


def _text(value: object, limit: int) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text[:limit] or None
