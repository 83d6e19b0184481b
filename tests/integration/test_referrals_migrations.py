"""The referrals service's migrations build exactly the tables storage.py declares, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import insert, select

from services.referrals.storage import MIGRATIONS, emails, metadata, outbox
from services.referrals.storage.tables import aware
from shared import codec, database
from shared.messages import EmailContext, PartnerChanged, PartnerSnapshot, SendEmail
from tests.support.databases import schema


def test_migrations_build_the_declared_schema_and_rerun_harmlessly(db_url: str) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    revision, tables, differences = schema(db_url, metadata)

    assert revision == "0010"
    assert {"referrals", "offers", "email_deliveries", "staff_users", "outbox", "alembic_version"} <= tables
    assert differences == []


def test_emails_staged_before_the_emails_table_are_recorded_from_their_outbox_rows(db_url: str) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url, revision="0004")
    staged_at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    email = SendEmail(
        notification_id="n-1",
        kind="offer_reminder",
        to="gp1@partners.example",
        context=EmailContext(reference="HX-ABCD2345"),
        referral_id="r-1",
    )
    partner = PartnerSnapshot(id="p", slug="p", name="P", category="primary_care", email="p@x.example", status="active")
    other = PartnerChanged(partner=partner, version=1, changed_at=staged_at)

    async def run() -> list:
        engine = database.create_engine(db_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(outbox),
                    [
                        {
                            "id": "n-1",
                            "queue": "notifications",
                            "payload": codec.encode(email),
                            "created_at": staged_at,
                        },
                        {"id": "m-2", "queue": "referrals", "payload": codec.encode(other), "created_at": staged_at},
                    ],
                )
            await asyncio.to_thread(database.upgrade, migrations=MIGRATIONS, url=db_url)
            async with engine.connect() as connection:
                return list((await connection.execute(select(emails))).all())
        finally:
            await engine.dispose()

    [row] = asyncio.run(run())
    assert (row.notification_id, row.referral_id, row.kind, row.recipient) == (
        "n-1",
        "r-1",
        "offer_reminder",
        "gp1@partners.example",
    )
    assert aware(row.staged_at) == staged_at
