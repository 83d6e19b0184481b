"""``handoff backup`` then ``handoff restore`` into empty databases gives back the same partners,
referrals, offers and timeline, row for row, table by table: on SQLite (online backup API) and
on PostgreSQL (pg_dump / pg_restore). Every step is the real CLI in its own process; the data is
made the way a clinic makes it (seed, replication by the worker, referrals over the API)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import MetaData, select

from services.referrals.web.app import create_app
from shared import database
from shared.config import load_settings
from tests.support.ci import skip_or_fail
from tests.support.databases import POSTGRES_URL, postgres_database

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "backup drills 2026"
CONSENT = {"given": True, "method": "verbal", "scope": ["clinical"]}
SERVICES = ("directory", "referrals")


@pytest.fixture(params=["sqlite", "postgres"])
def clinic_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Source and (empty) target database URLs of each service."""
    names = [f"{side}_{service}" for side in ("source", "target") for service in SERVICES]
    if request.param == "sqlite":
        yield {name: f"sqlite+aiosqlite:///{tmp_path / name}.db" for name in names}
        return
    if not POSTGRES_URL:
        skip_or_fail("HANDOFF_TEST_POSTGRES_URL is not set")
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(contextlib.contextmanager(postgres_database)()) for name in names}


def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        input=stdin,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"handoff {' '.join(args)}: {done.stderr}"
    return done.stdout


def environment(tmp_path: Path, redis_url: str, urls: dict[str, str], side: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HANDOFF_DATA_DIR": str(tmp_path / side),
        "HANDOFF_REDIS_URL": redis_url,
        "HANDOFF_SECRET_KEY": "backup-test-key-" + "k" * 40,
        "HANDOFF_DIRECTORY_DB_URL": urls[f"{side}_directory"],
        "HANDOFF_REFERRALS_DB_URL": urls[f"{side}_referrals"],
    }


def make_clinic_data(env: dict[str, str]) -> None:
    """Partners seeded in the directory and replicated to referrals, staff, three referrals."""
    cli(env, "db", "upgrade")
    cli(env, "seed", "--demo")
    cli(env, "user", "add", "--email", "tess@clinic.example", "--role", "therapist", stdin=PASSWORD + "\n")
    cli(env, "worker", "referrals", "--burst")  # applies the partners' PartnerChanged messages
    with TestClient(create_app(load_settings(env))) as client:
        token = client.post("/api/v1/auth/token", json={"email": "tess@clinic.example", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        suggested = client.post(
            "/api/v1/referrals/suggestions", headers=headers, json={"reasons": ["rehab_exercise_needed"], "limit": 3}
        )
        assert suggested.status_code == 200 and suggested.json(), suggested.text
        for i, suggestion in enumerate(suggested.json()):
            body = {
                "client": {"name": f"Backup client {i}", "phone": "727-555-0142"},
                "consent": CONSENT,
                "reasons": ["rehab_exercise_needed"],
                "partner_ids": [suggestion["partner_id"]],
            }
            answer = client.post(
                "/api/v1/referrals", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
            )
            assert answer.status_code == 201, answer.text


def every_row(url: str) -> dict[str, list[tuple]]:
    """Each table of the database at ``url`` and its rows, in a stable order."""

    async def read() -> dict[str, list[tuple]]:
        engine = database.create_engine(url)
        try:
            async with engine.connect() as connection:
                metadata = MetaData()
                await connection.run_sync(metadata.reflect)
                return {
                    name: sorted((tuple(row) for row in (await connection.execute(select(table))).all()), key=repr)
                    for name, table in metadata.tables.items()
                }
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_backup_then_restore_gives_back_every_row(
    clinic_databases: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = environment(tmp_path, redis_url, clinic_databases, "source")
    make_clinic_data(source)
    backups = tmp_path / "backups"
    cli(source, "backup", str(backups))

    target = environment(tmp_path, redis_url, clinic_databases, "target")
    cli(target, "restore", str(backups))

    for service in SERVICES:
        before, after = (
            every_row(clinic_databases[f"source_{service}"]),
            every_row(clinic_databases[f"target_{service}"]),
        )
        assert sorted(after) == sorted(before), f"{service}: tables differ"
        for table, rows in before.items():
            assert after[table] == rows, f"{service}.{table}: rows differ"
    counts = {table: len(rows) for table, rows in every_row(clinic_databases["target_referrals"]).items()}
    assert counts["referrals"] == 3 and counts["offers"] >= 3 and counts["referral_events"] >= 3, counts
    assert counts["partners"] >= 3
    assert len(every_row(clinic_databases["target_directory"])["partners"]) >= 3

    # The restored databases are at the code's schema: `handoff db check` agrees.
    assert "current" in cli(target, "db", "check")


def test_restore_refuses_a_database_that_has_data(
    clinic_databases: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = environment(tmp_path, redis_url, clinic_databases, "source")
    cli(source, "db", "upgrade", "directory")
    backups = tmp_path / "backups"
    cli(source, "backup", str(backups), "--service", "directory")
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "restore", str(backups), "--service", "directory"],
        env=source,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "already has" in done.stderr and "table(s)" in done.stderr
