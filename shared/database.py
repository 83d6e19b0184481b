"""Engines and migrations for a service's own database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from shared.config import Settings

# How long a statement waits for a lock another connection holds before it fails (SQLite's busy
# timeout, PostgreSQL's lock_timeout): a request then answers 503 (shared.web) instead of hanging
# behind a long migration or a stuck writer.
LOCK_WAIT_MS = 5000


@dataclass(frozen=True, kw_only=True)
class Pool:
    """How many PostgreSQL connections one engine may hold (``size`` kept open, ``overflow`` more
    under load), and whether a PgBouncer in transaction mode sits in between."""

    size: int = 10
    overflow: int = 10
    pgbouncer: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Pool:
        return cls(size=settings.db_pool_size, overflow=settings.db_max_overflow, pgbouncer=settings.db_pgbouncer)


def create_engine(
    url: str, *, sqlite_connections: int | None = None, reads_only: bool = False, pool: Pool | None = None
) -> AsyncEngine:
    """An async engine; for SQLite, WAL mode so a web process and a worker can share the file.

    ``sqlite_connections`` caps a SQLite engine's pool (no overflow). Every SQLite transaction
    here begins IMMEDIATE, so connections of one process only take turns anyway, and they do it
    through SQLite's busy handler, which sleeps (up to 100 ms a try); with one connection they
    queue in the pool in order instead. PostgreSQL ignores it.

    ``reads_only`` (SQLite) makes transactions begin DEFERRED, taking no write lock: an engine
    for queries that never write, so readers neither queue behind writers nor each other (WAL
    gives each its snapshot). PostgreSQL ignores it.

    ``pool`` (PostgreSQL; SQLite ignores it) bounds the engine's connections. Behind PgBouncer in
    transaction mode a server connection changes between transactions, so asyncpg's prepared
    statements are not cached (and get unique names), and no server setting is sent at connect:
    PgBouncer refuses unknown startup parameters, so ``lock_timeout`` is then the role's own
    (``ALTER ROLE ... SET lock_timeout``, as deploy/postgres-init.sql does)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # aiosqlite logs every statement with its parameters (client data) at DEBUG: at most
        # INFO, whatever the process's log level.
        driver_log = logging.getLogger("aiosqlite")
        driver_log.setLevel(max(logging.INFO, driver_log.getEffectiveLevel()))
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        bounded = {"pool_size": sqlite_connections, "max_overflow": 0} if sqlite_connections else {}
        engine = create_async_engine(url, connect_args={"timeout": LOCK_WAIT_MS / 1000}, **bounded)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record: ConnectionPoolEntry) -> None:
            # Let SQLAlchemy, not the driver, open transactions (see _begin_immediate).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection) -> None:
            # A deferred transaction that reads and then writes fails at once with "database is
            # locked" when another process (web + worker share the file) wrote in between;
            # taking the write lock up front makes it wait busy_timeout instead.
            connection.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

        return engine
    pool = pool or Pool()
    connect_args: dict[str, Any] = {"server_settings": {"lock_timeout": str(LOCK_WAIT_MS)}}
    if pool.pgbouncer:
        url = parsed.update_query_dict({"prepared_statement_cache_size": "0"}).render_as_string(hide_password=False)
        connect_args = {"statement_cache_size": 0, "prepared_statement_name_func": _statement_name}
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=pool.size, max_overflow=pool.overflow, connect_args=connect_args
    )


def create_async_engine(url: str, **options: Any) -> AsyncEngine:
    # Looked up at each call: shared.telemetry's SQLAlchemy instrumentation wraps the module's
    # function when traces are on, and engines made afterwards are traced.
    return sqlalchemy_asyncio.create_async_engine(url, **options)


def _statement_name() -> str:
    # Unique per statement: two clients' statements may meet on one PgBouncer server connection.
    return f"__asyncpg_{uuid.uuid4().hex}__"


# SQLite: another connection holds the database (primary result codes; extended ones add bits above).
_SQLITE_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
# PostgreSQL SQLSTATEs, by class or in full: connection lost or refused (08), out of resources
# such as connections (53), shutting down or starting up, statement timeout (57), a lock not had
# within lock_timeout (55P03), serialization failure and deadlock (40001, 40P01).
_POSTGRES_BUSY_STATES = ("08", "53", "57", "55P03", "40001", "40P01")


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database is busy or out of reach for now (a lock held past
    LOCK_WAIT_MS, a connection lost or refused, the pool exhausted), so the same request can
    succeed later, rather than a fault in the request or the code."""
    if isinstance(error, (exc.TimeoutError, ConnectionError)):
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    code = getattr(error.orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_BUSY_CODES
    state = getattr(error.orig, "sqlstate", None) or ""
    return state.startswith(_POSTGRES_BUSY_STATES)


def sessions(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


# pg_advisory_xact_lock's key for "migrating this database" (any fixed number; advisory locks are
# per database). Held until the migrations' transaction commits, so a second `handoff db upgrade`
# started meanwhile waits, then finds the schema current and does nothing.
MIGRATION_LOCK_KEY = 0x48414E44  # "HAND"


def upgrade(*, migrations: Path, url: str, revision: str = "head") -> None:
    """Apply a service's Alembic migrations to ``url``. Call from synchronous code only (the
    migration environment runs its own event loop)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)


def run_migrations_online(target_metadata) -> None:
    """The body of every service's ``migrations/env.py``: run migrations on the async engine, on
    PostgreSQL under the migration lock (SQLite's IMMEDIATE transaction is a lock already)."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("the migration environment was started without sqlalchemy.url")

    def apply(connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(apply)
        await engine.dispose()

    asyncio.run(main())
