"""The referrals service's migrations build exactly the tables storage.py declares, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from services.referrals.storage import MIGRATIONS, metadata
from shared import database


def _schema(url: str) -> tuple[str | None, set[str], list]:
    async def read() -> tuple[str | None, set[str], list]:
        engine = database.create_engine(url)
        try:
            async with engine.connect() as connection:

                def inspect_sync(sync_connection):
                    context = MigrationContext.configure(sync_connection)
                    return (
                        context.get_current_revision(),
                        set(inspect(sync_connection).get_table_names()),
                        compare_metadata(context, metadata),
                    )

                return await connection.run_sync(inspect_sync)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_migrations_build_the_declared_schema_and_rerun_harmlessly(db_url: str) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    revision, tables, differences = _schema(db_url)

    assert revision == "0004"
    assert {"referrals", "offers", "email_deliveries", "staff_users", "outbox", "alembic_version"} <= tables
    assert differences == []
