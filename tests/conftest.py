"""Fixtures shared by every depth of test. The real parts (Redis, SMTP, databases) are started
here on free ports; nothing in the suite reaches a server it did not start, except PostgreSQL
when HANDOFF_TEST_POSTGRES_URL names one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set before any service module is imported: no test may read the developer's own settings.
for _key in [k for k in os.environ if k.startswith("HANDOFF_") and not k.startswith("HANDOFF_TEST_")]:
    del os.environ[_key]

from argon2 import PasswordHasher  # noqa: E402

from services.dev.mail_catcher import MailCatcher  # noqa: E402
from services.dev.redis_server import RedisServer  # noqa: E402
from tests.support.ci import skip_or_fail  # noqa: E402
from tests.support.databases import (  # noqa: E402
    POSTGRES_URL,
    Backend,
    Databases,
    Templates,
    database_params,
    postgres_database,
)
from tests.support.reports import SECTIONS, report  # noqa: E402

TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is marked ``e2e`` (``make test-fast`` leaves them out).

    When pytest-xdist hands modules out to workers (``make test``), they are handed out longest
    first, so that the run does not end waiting on one: the fault drills (minutes, mostly
    waiting), then the unit tests (quick, so the drills' worker, which is handed a second module
    at the start, does not keep a long one waiting until the drills end), then the whole-system
    tests, then the rest."""
    for item in items:
        if (TESTS / "e2e") in item.path.parents:
            item.add_marker(pytest.mark.e2e)
    if hasattr(config, "workerinput"):  # collected by a pytest-xdist worker

        def handed_out(item: pytest.Item) -> int:
            if item.get_closest_marker("drill"):
                return 0
            if (TESTS / "unit") in item.path.parents:
                return 1
            return 2 if item.get_closest_marker("e2e") else 3

        items.sort(key=handed_out)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker: hand the lines reported for the end of the run to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reports"] = {heading: session.config.stash.get(key, []) for heading, key in SECTIONS.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """On the pytest-xdist controller: take a finished worker's lines for the end of the run."""
    for heading, lines in node.workeroutput.get("reports", {}).items():
        for line in lines:
            report(node.config, SECTIONS[heading], line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """What each fault drill counted and what the API fuzzing sent, where CI logs show it."""
    for heading, key in SECTIONS.items():
        lines = config.stash.get(key, [])
        if lines:
            terminalreporter.section(heading)
            for line in lines:
                terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Staff passwords hashed at argon2's lowest cost in this process: at production's cost every
    account created and every login takes a fifth of a second, most of an integration run.
    Processes the tests start (``handoff dev``, the fault drills) keep production's cost."""
    from services.referrals import identity

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(identity, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        yield


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


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Migrated (and seeded) databases built once per session, copied for each test."""
    built = Templates(tmp_path_factory.mktemp("templates"))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(params=database_params())
def backend(request: pytest.FixtureRequest) -> Backend:
    """SQLite always, and PostgreSQL when configured: a database test runs once on each."""
    return request.param


@pytest.fixture
def databases(backend: Backend, tmp_path: Path, templates: Templates) -> Iterator[Databases]:
    """The test's own databases on ``backend``, dropped afterwards."""
    created = Databases(backend, tmp_path / "databases", templates)
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def db_url(databases: Databases) -> str:
    """An empty database URL: a SQLite file always, and PostgreSQL when configured."""
    return databases.empty()


@pytest.fixture
def directory_db_url(databases: Databases) -> str:
    """A database with the directory's schema, on the same backends as :func:`db_url`."""
    return databases.migrated("directory")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own (HANDOFF_TEST_POSTGRES_URL), for what only
    PostgreSQL has (pools, PgBouncer mode, advisory locks, pg_dump)."""
    if not POSTGRES_URL:
        skip_or_fail("HANDOFF_TEST_POSTGRES_URL is not set")
    yield from postgres_database()


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
