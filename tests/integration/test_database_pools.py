"""Each engine holds at most pool size + overflow PostgreSQL connections, and an engine for
PgBouncer's transaction mode works without asyncpg's prepared-statement cache. On the real
database (PostgreSQL when HANDOFF_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import text

from shared import database
from shared.database import Pool


async def _hold(engine, count: int, stack: contextlib.AsyncExitStack) -> None:
    for _ in range(count):
        connection = await stack.enter_async_context(engine.connect())
        await connection.execute(text("SELECT 1"))


def test_an_engine_opens_no_more_than_pool_size_plus_overflow(postgres_url: str) -> None:
    async def run() -> None:
        engine = database.create_engine(postgres_url, pool=Pool(size=1, overflow=1))
        try:
            async with contextlib.AsyncExitStack() as stack:
                await _hold(engine, 2, stack)
                with pytest.raises(TimeoutError):
                    # The pool would wait 30 s for a connection to come back: it opens no third one.
                    await asyncio.wait_for(_hold(engine, 1, stack), timeout=1)
            async with engine.connect() as connection:  # returned connections serve again
                assert (await connection.execute(text("SELECT 2"))).scalar_one() == 2
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_pgbouncer_mode_runs_statements_without_a_prepared_statement_cache(postgres_url: str) -> None:
    async def run() -> None:
        engine = database.create_engine(postgres_url, pool=Pool(size=1, overflow=0, pgbouncer=True))
        try:
            async with engine.connect() as connection:
                adapted = (await connection.get_raw_connection()).dbapi_connection
                for value in (1, 2, 3):
                    statement = text("SELECT CAST(:v AS integer) + 1")
                    assert (await connection.execute(statement, {"v": value})).scalar_one() == value + 1
                assert adapted._prepared_statement_cache is None, "SQLAlchemy must not cache statements"
                assert adapted.driver_connection._stmt_cache.get_max_size() == 0, "nor asyncpg"
                timeout = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
                assert timeout == "0", "no server setting is sent through PgBouncer"
        finally:
            await engine.dispose()

    asyncio.run(run())
