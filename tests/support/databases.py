"""The databases of the tests: SQLite files always, PostgreSQL too when
``HANDOFF_TEST_POSTGRES_URL`` names a server (each test gets databases of its own there).

A migrated database is never migrated per test: a template is built once per session by running
the service's migrations (and, for some, seeding it), then copied for each test that wants one: a
file copy on SQLite, ``CREATE DATABASE … TEMPLATE …`` on PostgreSQL. The migration tests
(``test_*_migrations.py``) still migrate empty databases themselves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import URL, make_url

from services.directory.storage import MIGRATIONS as DIRECTORY_MIGRATIONS
from services.referrals.storage import MIGRATIONS as REFERRALS_MIGRATIONS
from shared import database
from shared.config import normalise_db_url

POSTGRES_URL = os.environ.get("HANDOFF_TEST_POSTGRES_URL", "")

Backend = Literal["sqlite", "postgres"]
Service = Literal["directory", "referrals"]
MIGRATIONS: dict[Service, Path] = {"directory": DIRECTORY_MIGRATIONS, "referrals": REFERRALS_MIGRATIONS}


def database_params() -> list:
    """The backends a database test runs on, as pytest params: PostgreSQL skips unless configured."""
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgres",
            id="postgres",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="HANDOFF_TEST_POSTGRES_URL is not set"),
        ),
    ]


def migrate(service: Service) -> Callable[[str], None]:
    """A template builder: the service's migrations, run to head."""
    return lambda url: database.upgrade(migrations=MIGRATIONS[service], url=url)


def _postgres_base() -> URL:
    return make_url(normalise_db_url(POSTGRES_URL))


def _postgres_admin(*statements: str) -> None:
    """Run ``statements`` on the configured server's own database, outside any transaction."""
    dsn = _postgres_base().set(drivername="postgresql").render_as_string(hide_password=False)

    async def run() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def _postgres_url(name: str) -> str:
    return _postgres_base().set(database=name).render_as_string(hide_password=False)


def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped when the generator is closed."""
    name = _create_postgres(None)
    try:
        yield _postgres_url(name)
    finally:
        _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Templates:
    """The session's template databases, each built on first use by running its builder once,
    and the copies made of them.

    On PostgreSQL a copy takes a few tenths of a second (``CREATE DATABASE`` writes the whole
    template out), so it is made ahead: while a test runs, the copy the next test will want is
    made in the background, and the test's own is dropped in the background after it."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._built: dict[tuple[str, Backend], str] = {}  # -> SQLite path or PostgreSQL database name
        self._postgres = ThreadPoolExecutor(max_workers=2, thread_name_prefix="postgres-admin")
        self._ahead: dict[str | None, Future[str]] = {}  # template (None: empty) -> a copy being made
        self._postgres_templates: list[str] = []

    def get(self, name: str, *, backend: Backend, build: Callable[[str], None]) -> str:
        """The template ``name`` on ``backend``: a SQLite file's path or a PostgreSQL database's
        name, built by ``build(url)`` the first time it is asked for."""
        key = (name, backend)
        if key not in self._built:
            if backend == "sqlite":
                path = self._folder / f"{name}.db"
                try:
                    build(f"sqlite+aiosqlite:///{path}")
                except BaseException:
                    path.unlink(missing_ok=True)  # the next test builds it afresh
                    raise
                # One self-contained file to copy: the write-ahead log folded into it. The file stays
                # in WAL mode, as every database the services open is (switching a copy's mode
                # would need a lock that the app's first connections contend for).
                with contextlib.closing(sqlite3.connect(path)) as connection:
                    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._built[key] = str(path)
            else:
                database_name = f"handoff_template_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
                _postgres_admin(f'CREATE DATABASE "{database_name}"')
                self._postgres_templates.append(database_name)  # dropped by close(), built or not
                build(_postgres_url(database_name))
                self._built[key] = database_name
        return self._built[key]

    def postgres_copy(self, template: str | None) -> str:
        """A new PostgreSQL database (a copy of ``template``, or empty): its name."""
        ready = self._ahead.pop(template, None) or self._postgres.submit(_create_postgres, template)
        self._ahead[template] = self._postgres.submit(_create_postgres, template)
        return ready.result()

    def drop_postgres(self, name: str) -> None:
        self._postgres.submit(_postgres_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for ahead in self._ahead.values():
            with contextlib.suppress(Exception):
                self.drop_postgres(ahead.result())
        self._postgres.shutdown(wait=True)
        if self._postgres_templates:
            _postgres_admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self._postgres_templates))


def _create_postgres(template: str | None) -> str:
    name = f"handoff_test_{uuid.uuid4().hex[:10]}"
    _postgres_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


class Databases:
    """The databases of one test, on one backend: empty ones, and copies of templates."""

    def __init__(self, backend: Backend, folder: Path, templates: Templates) -> None:
        self.backend = backend
        self._folder = folder
        self._templates = templates
        self._postgres: list[str] = []

    def empty(self, name: str = "test") -> str:
        return self._new(name, template=None)

    def migrated(self, service: Service) -> str:
        """A database with ``service``'s schema at head, copied from the session's template."""
        return self.copy_of(service, build=migrate(service))

    def copy_of(self, template: str, *, build: Callable[[str], None]) -> str:
        """A new database copied from the session's ``template`` (built by ``build(url)`` once)."""
        return self._new(template, template=self._templates.get(template, backend=self.backend, build=build))

    def _new(self, name: str, *, template: str | None) -> str:
        if self.backend == "sqlite":
            path = self._folder / f"{name}.db"
            assert not path.exists(), f"{path} exists already: one database of each name per test"
            self._folder.mkdir(parents=True, exist_ok=True)
            if template:
                shutil.copyfile(template, path)
            return f"sqlite+aiosqlite:///{path}"
        created = self._templates.postgres_copy(template)
        self._postgres.append(created)
        return _postgres_url(created)

    def close(self) -> None:
        for name in self._postgres:
            self._templates.drop_postgres(name)


def schema(url: str, metadata: MetaData) -> tuple[str | None, set[str], list]:
    """What the database at ``url`` holds: its Alembic revision, its tables, and how its schema
    differs from ``metadata`` (Alembic's autogenerate comparison; empty when they agree)."""

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


@contextlib.contextmanager
def locked(db_url: str) -> Iterator[None]:
    """The referrals database held by someone else until the block ends: on SQLite another
    process's writer (BEGIN EXCLUSIVE); on PostgreSQL an administrator's transaction holding the
    referral tables ACCESS EXCLUSIVE, as a long migration would."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database, timeout=30, isolation_level=None)
        try:
            connection.execute("BEGIN EXCLUSIVE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    with asyncio.Runner() as runner:
        admin = runner.run(asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)))
        try:
            runner.run(
                admin.execute(
                    "BEGIN; LOCK TABLE referrals, offers, referral_events, outbox, idempotency_keys "
                    "IN ACCESS EXCLUSIVE MODE"
                )
            )
            yield
            runner.run(admin.execute("ROLLBACK"))
        finally:
            runner.run(admin.close())
