"""The directory's migrations build exactly the tables storage.py declares, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio

from services.directory.storage import MIGRATIONS, metadata
from shared import database
from tests.support.databases import schema


def test_migrations_build_the_declared_schema(db_url: str) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    revision, tables, differences = schema(db_url, metadata)

    assert revision == "0007"
    assert {"partners", "outbox", "catalogue", "alembic_version", "partner_history", "listing_reviews"} <= tables
    assert differences == []


def test_upgrading_an_up_to_date_database_changes_nothing(db_url: str) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    assert schema(db_url, metadata)[0] == "0007"


def test_partners_stored_before_0002_survive_it_and_become_searchable(db_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from services.directory.search import PartnerQuery
    from services.directory.service import PartnerService

    database.upgrade(migrations=MIGRATIONS, url=db_url, revision="0001")

    async def scenario() -> None:
        engine = database.create_engine(db_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO partners (id, slug, name, category, email, phone, credentials, practice,"
                        " website, address_line1, address_line2, address_city, address_state,"
                        " address_postal_code, lat, lon, languages, telehealth, accepting_new_clients, listed,"
                        " status, version, created_at, updated_at) VALUES ('p1', 'old-pt', 'Old PT',"
                        " 'physical_therapy', 'old@pt.example', NULL, 'DPT', 'Old Practice', NULL, '', '',"
                        " 'Clearwater', 'FL', '33755', 27.97, -82.78, :languages, :false, 'yes', :true, 'active',"
                        " 3, :now, :now)"
                    ),
                    {"languages": '["English", "Greek"]', "false": False, "true": True, "now": datetime.now(UTC)},
                )
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    async def search() -> None:
        engine = database.create_engine(db_url)
        try:
            directory = PartnerService(sessions=database.sessions(engine))
            [found] = (await directory.search(PartnerQuery(q="clearwater", language="greek"))).partners
            assert (found.id, found.version, found.details.specialties, found.details.npi) == ("p1", 3, (), None)
            assert await directory.catalogue_revision() == 0
        finally:
            await engine.dispose()

    asyncio.run(search())
    assert schema(db_url, metadata)[2] == []


def test_partners_stored_before_0005_get_the_practice_id_the_app_derives(db_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from services.directory.identifiers import practice_id
    from services.directory.service import PartnerService

    database.upgrade(migrations=MIGRATIONS, url=db_url, revision="0004")
    rows = {"p1": "Bay  Physical Therapy", "p2": "bay physical therapy", "p3": ""}

    async def scenario() -> None:
        engine = database.create_engine(db_url)
        try:
            async with engine.begin() as connection:
                for partner_id, practice in rows.items():
                    await connection.execute(
                        text(
                            "INSERT INTO partners (id, slug, name, category, email, credentials, practice,"
                            " address_line1, address_line2, address_city, address_state, address_postal_code,"
                            " languages, telehealth, accepting_new_clients, listed, status, version, created_at,"
                            " updated_at, specialties, bio, hours, insurance_notes, accessibility_notes,"
                            " license_number, license_state, accepts_referrals_from, search_text, language_keys)"
                            " VALUES (:id, :id, :id, 'physical_therapy', 'x@pt.example', '', :practice, '', '', '',"
                            " '', '', '[]', :false, 'yes', :true, 'active', 1, :now, :now, '[]', '', '', '', '', '',"
                            " '', '[]', '', '|')"
                        ),
                        {
                            "id": partner_id,
                            "practice": practice,
                            "false": False,
                            "true": True,
                            "now": datetime.now(UTC),
                        },
                    )
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    async def read() -> None:
        engine = database.create_engine(db_url)
        try:
            catalogue = PartnerService(sessions=database.sessions(engine)).catalogue
            shared = await catalogue.practice(practice_id=practice_id(practice="Bay Physical Therapy", partner_id="-"))
            assert sorted(p.id for p in shared.partners) == ["p1", "p2"]
            alone = await catalogue.practice(practice_id=practice_id(practice="", partner_id="p3"))
            assert [(p.id, p.last_confirmed_at) for p in alone.partners] == [("p3", None)]
        finally:
            await engine.dispose()

    asyncio.run(read())
    assert schema(db_url, metadata)[2] == []
