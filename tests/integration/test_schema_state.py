"""A database behind the code: ``handoff db check`` exits 1 and ``/ready`` answers 503 naming
``schema`` until ``handoff db upgrade`` has run; two upgrades at once on PostgreSQL apply each
migration once (the advisory lock)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from litestar.testing import TestClient

from services.directory.storage import MIGRATIONS
from services.directory.web.app import create_app
from shared import database, schema
from shared.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def state(url: str) -> schema.Schema:
    async def read() -> schema.Schema:
        engine = database.create_engine(url)
        try:
            return await schema.check(engine, MIGRATIONS)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def db_check(url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HANDOFF_DATA_DIR": str(tmp_path), "HANDOFF_DIRECTORY_DB_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "db", "check", "directory"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_database_behind_the_code_is_not_ready_until_upgraded(db_url: str, redis_url: str, tmp_path: Path) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url, revision="0004")
    behind = state(db_url)
    assert behind.behind and behind.current == "0004" and behind.head != "0004"
    checked = db_check(db_url, tmp_path)
    assert checked.returncode == 1 and "handoff db upgrade" in checked.stderr

    settings = load_settings(
        {}, data_dir=str(tmp_path), directory_db_url=db_url, redis_url=redis_url, secret_key="k" * 48
    )
    with TestClient(create_app(settings)) as client:
        answer = client.get("/ready")
        assert answer.status_code == 503
        assert set(answer.json()["extra"]) == {"schema"}
        assert "0004" in answer.json()["extra"]["schema"]
        database.upgrade(migrations=MIGRATIONS, url=db_url)
        assert client.get("/ready").status_code == 200
    assert not state(db_url).behind
    assert db_check(db_url, tmp_path).returncode == 0


def test_a_database_ahead_of_the_code_stays_ready(db_url: str, redis_url: str, tmp_path: Path) -> None:
    # A newer release migrated first; this (older) replica keeps serving during the roll-out.
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    async def advance() -> None:
        engine = database.create_engine(db_url)
        async with engine.begin() as connection:
            await connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        await engine.dispose()

    asyncio.run(advance())
    assert not state(db_url).behind
    settings = load_settings(
        {}, data_dir=str(tmp_path), directory_db_url=db_url, redis_url=redis_url, secret_key="k" * 48
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 200


def test_upgrades_at_once_apply_each_migration_once(postgres_url: str, tmp_path: Path) -> None:
    # Three release jobs started together (two processes: Alembic keeps per-process state).
    env = {"PATH": "/usr/bin:/bin", "HANDOFF_DATA_DIR": str(tmp_path), "HANDOFF_DIRECTORY_DB_URL": postgres_url}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "services.cli", "db", "upgrade", "directory"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(run.wait(timeout=120), run.communicate()[1]) for run in runs]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    found = state(postgres_url)
    assert found.current == found.head
