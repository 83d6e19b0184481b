"""The referrals service's migrations build exactly the tables storage.py declares, on SQLite
and PostgreSQL."""

from __future__ import annotations

from services.referrals.storage import MIGRATIONS, metadata
from shared import database
from tests.support.databases import schema


def test_migrations_build_the_declared_schema_and_rerun_harmlessly(db_url: str) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    revision, tables, differences = schema(db_url, metadata)

    assert revision == "0004"
    assert {"referrals", "offers", "email_deliveries", "staff_users", "outbox", "alembic_version"} <= tables
    assert differences == []
