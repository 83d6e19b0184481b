"""deploy/postgres-init.sql on a real PostgreSQL server: each service's role migrates its own
database with its password read from a secret file, and can do nothing else (no other database,
no CREATE DATABASE)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from services.cli import upgrade_databases
from shared.config import load_settings, normalise_db_url
from tests.support.ci import skip_or_fail
from tests.support.databases import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]
INIT_SQL = ROOT / "deploy" / "postgres-init.sql"


@pytest.fixture
def provisioned(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The init script run by a superuser with names of this test's own; dropped afterwards."""
    if not POSTGRES_URL:
        skip_or_fail("HANDOFF_TEST_POSTGRES_URL is not set")
    suffix = uuid.uuid4().hex[:8]
    names = {
        "directory_db": f"handoff_dir_{suffix}",
        "directory_role": f"handoff_dir_{suffix}",
        "directory_password": f"pw-{uuid.uuid4().hex}",
        "referrals_db": f"handoff_ref_{suffix}",
        "referrals_role": f"handoff_ref_{suffix}",
        "referrals_password": f"pw-{uuid.uuid4().hex}",
        "connection_limit": "5",
    }
    admin = make_url(POSTGRES_URL)
    variables = [arg for key, value in names.items() for arg in ("-v", f"{key}={value}")]
    done = subprocess.run(
        ["psql", "-X", "-q", "-d", admin.render_as_string(hide_password=False), *variables, "-f", str(INIT_SQL)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert done.returncode == 0, done.stderr
        yield names
    finally:

        async def drop() -> None:
            connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
            try:
                for service in ("directory", "referrals"):
                    await connection.execute(f'DROP DATABASE IF EXISTS "{names[f"{service}_db"]}" WITH (FORCE)')
                    await connection.execute(f'DROP ROLE IF EXISTS "{names[f"{service}_role"]}"')
            finally:
                await connection.close()

        asyncio.run(drop())


def _url(names: dict[str, str], *, role: str, database: str) -> str:
    return make_url(POSTGRES_URL).set(username=names[role], password=None, database=names[database]).render_as_string()


def test_each_role_migrates_its_own_database_and_reaches_nothing_else(
    provisioned: dict[str, str], tmp_path: Path
) -> None:
    password = tmp_path / "directory_db_password"
    password.write_text(provisioned["directory_password"] + "\n")
    settings = load_settings(
        {
            "HANDOFF_DIRECTORY_DB_URL": _url(provisioned, role="directory_role", database="directory_db"),
            "HANDOFF_DIRECTORY_DB_PASSWORD_FILE": str(password),
        }
    )
    upgrade_databases(settings, ("directory",))

    async def check() -> None:
        own = make_url(settings.db_url("directory")).set(drivername="postgresql")
        connection = await asyncpg.connect(own.render_as_string(hide_password=False))
        try:
            assert await connection.fetchval("SELECT count(*) FROM partners") == 0
            assert await connection.fetchval("SHOW lock_timeout") == "5s"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute('CREATE DATABASE "handoff_not_allowed"')
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute('CREATE ROLE "handoff_not_allowed"')
        finally:
            await connection.close()
        other = make_url(normalise_db_url(_url(provisioned, role="directory_role", database="referrals_db")))
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
            await asyncpg.connect(other.set(drivername="postgresql").render_as_string(hide_password=False))

    asyncio.run(check())
