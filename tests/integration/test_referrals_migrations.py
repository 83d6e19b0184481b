"""The referrals service's migrations build exactly the tables storage.py declares, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select, text

from services.referrals.storage import MIGRATIONS, clients, emails, metadata, outbox, referrals, staff_users
from services.referrals.storage.tables import aware
from shared import codec, database
from shared.messages import EmailContext, PartnerChanged, PartnerSnapshot, SendEmail
from tests.support.databases import schema


def test_migrations_build_the_declared_schema_and_rerun_harmlessly(db_url: str) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    revision, tables, differences = schema(db_url, metadata)

    assert revision == "0013"
    assert {
        "clients",
        "referrals",
        "offers",
        "email_deliveries",
        "staff_users",
        "outbox",
        "alembic_version",
        "inbox_links",
        "referral_figures",
        "daily_figures",
        "accept_times",
    } <= tables
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


def test_each_existing_referral_becomes_a_client_of_its_own(db_url: str) -> None:
    """Issue 12: clients were matched by name. The migration makes one client record per referral,
    so two referrals for people of the same name become two clients, never one."""
    database.upgrade(migrations=MIGRATIONS, url=db_url, revision="0006")
    at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    people = [
        ("r-1", {"name": "Sam Rivera", "phone": "727-555-0101", "postal_code": "33701", "language": "Spanish"}),
        ("r-2", {"name": "Sam Rivera", "email": "sam@example.com"}),
        ("r-3", {"name": "Jo Park"}),
    ]

    async def run() -> tuple[list, list]:
        engine = database.create_engine(db_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(staff_users).values(
                        id="s-1",
                        email="tess@clinic.example",
                        password_hash="x",
                        role="therapist",
                        active=True,
                        created_at=at,
                    )
                )
                for index, (rid, client) in enumerate(people):
                    await connection.execute(
                        text(
                            "INSERT INTO referrals (id, reference, status, urgency, reasons, note, client, consent,"
                            " created_by, created_at, updated_at) VALUES (:id, :ref, 'requested', 'routine',"
                            " :reasons, '', :client, :consent, 's-1', :at, :at)"
                        ),
                        {
                            "id": rid,
                            "ref": f"HX-MIGRATE{index}",
                            "reasons": json.dumps(["rehab_exercise_needed"]),
                            "client": json.dumps(client),
                            "consent": json.dumps({"given": True}),
                            "at": at,
                        },
                    )
            await asyncio.to_thread(database.upgrade, migrations=MIGRATIONS, url=db_url)
            async with engine.connect() as connection:
                found = (await connection.execute(select(referrals).order_by(referrals.c.id))).mappings().all()
                made = (await connection.execute(select(clients))).mappings().all()
            return list(found), list(made)
        finally:
            await engine.dispose()

    found, made = asyncio.run(run())
    assert len(made) == 3
    assert len({r["client_id"] for r in found}) == 3
    by_id = {c["id"]: c for c in made}
    first, second, third = (by_id[r["client_id"]] for r in found)
    assert (first["name"], second["name"]) == ("Sam Rivera", "Sam Rivera")
    assert (first["phone"], first["postal_code"], first["language"], first["preferred_contact"]) == (
        "727-555-0101",
        "33701",
        "es",
        "phone",
    )
    assert (second["email"], second["phone"], second["preferred_contact"]) == ("sam@example.com", None, "email")
    assert (third["language"], third["email_consent"], third["created_by"]) == ("en", False, "s-1")
    assert {r["next_step"] for r in found} == {"partner_contacts_client"}
    assert "client" not in found[0]

    # And back: the referrals' inline clients are rebuilt from their records.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.downgrade(config, "0006")

    async def inline() -> dict:
        engine = database.create_engine(db_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(text("SELECT id, client FROM referrals"))
                return {row.id: row.client for row in rows}
        finally:
            await engine.dispose()

    restored = {rid: json.loads(c) if isinstance(c, str) else c for rid, c in asyncio.run(inline()).items()}
    assert restored["r-2"]["name"] == "Sam Rivera" and restored["r-2"]["email"] == "sam@example.com"
    database.upgrade(migrations=MIGRATIONS, url=db_url)
