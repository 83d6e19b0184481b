"""Each engine holds at most pool size + overflow PostgreSQL connections, and an engine for
PgBouncer's transaction mode works without asyncpg's prepared-statement cache: on the real
PostgreSQL (HANDOFF_TEST_POSTGRES_URL) and through a real PgBouncer (Debian's) in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from services.dev import processes
from services.dev.ports import free_port, wait_for_port
from shared import database
from shared.database import Pool
from tests.support.ci import skip_or_fail


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


@pytest.fixture
def pgbouncer(postgres_url: str) -> Iterator[str]:
    """A real PgBouncer in transaction mode in front of the test's database, with one server
    connection for all its clients: the URL of that database through it."""
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if binary is None:
        skip_or_fail("pgbouncer is not installed (Debian package `pgbouncer`; .ci/run installs it)")
    target = make_url(postgres_url)
    as_user: list[str] = []
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            skip_or_fail("running as root and there is no `postgres` user for PgBouncer to run as")
        as_user = ["-u", "postgres"]
    folder = Path(tempfile.mkdtemp(prefix="handoff-pgbouncer-"))
    folder.chmod(0o755)  # read by PgBouncer once it runs as that user
    port = free_port()
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"{target.database} = host={target.host or '127.0.0.1'} port={target.port or 5432} "
        f"user={target.username or 'postgres'}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 50\n"
    )
    config.chmod(0o644)
    process = subprocess.Popen([binary, *as_user, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        processes.stop(process, timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_through_pgbouncer_in_transaction_mode_only_pgbouncer_mode_works(pgbouncer: str) -> None:
    async def work(pool: Pool) -> None:
        engines = [database.create_engine(pgbouncer, pool=pool) for _ in range(2)]

        async def client(engine, offset: int) -> None:
            for value in range(20):  # many transactions, all on PgBouncer's one server connection
                async with engine.begin() as connection:
                    statement = text("SELECT CAST(:v AS integer) + :w")
                    assert (
                        await connection.execute(statement, {"v": value, "w": offset})
                    ).scalar_one() == value + offset
                    lock = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
                    assert lock == "0" or lock.endswith("s")

        try:
            await asyncio.gather(*(client(engine, i) for i, engine in enumerate(engines) for _ in range(2)))
        finally:
            for engine in engines:
                await engine.dispose()

    asyncio.run(work(Pool(size=2, overflow=0, pgbouncer=True)))
    # Without it, PgBouncer refuses the connection's server settings at once.
    with pytest.raises(DBAPIError, match="unsupported startup parameter"):
        asyncio.run(work(Pool(size=2, overflow=0, pgbouncer=False)))
