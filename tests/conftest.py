"""Fixtures shared by every depth of test. The real parts (Redis, SMTP, databases) are started
here on free ports; nothing in the suite reaches a server it did not start, except PostgreSQL
when HANDOFF_TEST_POSTGRES_URL names one."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set before any service module is imported: no test may read the developer's own settings.
for _key in [k for k in os.environ if k.startswith("HANDOFF_") and not k.startswith("HANDOFF_TEST_")]:
    del os.environ[_key]

from services.dev.mail_catcher import MailCatcher  # noqa: E402
from services.dev.redis_server import RedisServer  # noqa: E402

POSTGRES_URL = os.environ.get("HANDOFF_TEST_POSTGRES_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"
# One line per fault drill run (tests/integration/fault_stack.py), repeated at the end of the run.
DRILL_SUMMARIES = pytest.StashKey[list[str]]()


def skip_or_fail(reason: str) -> None:
    """A test that cannot run here is skipped on a developer's machine and fails in CI."""
    if IN_CI:
        pytest.fail(f"cannot run in CI: {reason}")
    pytest.skip(reason)  # only outside CI: in CI (IN_CI above) it fails instead


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """What each fault drill counted, where CI logs show it."""
    lines = config.stash.get(DRILL_SUMMARIES, [])
    if lines:
        terminalreporter.section("fault drills")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean Redis database for each test, on the session's real server."""
    from redis import Redis

    client = Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.close()


@pytest.fixture
def mail_catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(tmp_path / "mail") as catcher:
        yield catcher


def _postgres_database() -> Iterator[str]:
    import asyncpg
    from sqlalchemy.engine import make_url

    from shared.config import normalise_db_url

    base = make_url(normalise_db_url(POSTGRES_URL))
    name = f"handoff_test_{uuid.uuid4().hex[:10]}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _database_params() -> list:
    params = [pytest.param("sqlite", id="sqlite")]
    params.append(
        pytest.param(
            "postgres",
            id="postgres",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="HANDOFF_TEST_POSTGRES_URL is not set"),
        )
    )
    return params


@pytest.fixture(params=_database_params())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL: a SQLite file always, and PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own (HANDOFF_TEST_POSTGRES_URL), for what only
    PostgreSQL has (pools, PgBouncer mode, advisory locks, pg_dump)."""
    if not POSTGRES_URL:
        skip_or_fail("HANDOFF_TEST_POSTGRES_URL is not set")
    yield from _postgres_database()


@pytest.fixture(scope="session")
def trace_spans():
    """Every span this process records from now on, kept by the real OpenTelemetry SDK's
    in-memory exporter (a process has one tracer provider: installed once, cleared per use)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared import telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.install(provider)
    return exporter
