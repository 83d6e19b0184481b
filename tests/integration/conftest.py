"""Fixtures of the integration tests. ``settings`` and ``client`` here are the referrals
service's, which most of these modules drive; ``directory_settings`` and ``directory`` are the
directory's (its own modules, under ``directory/``, know them as ``settings`` and ``client``)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient
from redis import Redis

from services.directory.web.app import create_app as directory_app
from services.referrals.web.app import create_app
from shared.config import Settings, load_settings
from tests.support.databases import Databases
from tests.support.directory import make_settings
from tests.support.referrals import seed


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    """A client of the test's clean Redis."""
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def closed_redis_url() -> Iterator[str]:
    """A Redis URL nothing answers on. The port stays bound (never listening) for the whole test,
    so no other process can start a server there meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{held.getsockname()[1]}/0"


@pytest.fixture
def settings(tmp_path: Path, databases: Databases, redis_url: str) -> Settings:
    """The referrals service on the test's database and Redis, seeded as :func:`seed` says (a
    copy of the session's seeded template)."""
    settings = load_settings(
        environ={},
        data_dir=str(tmp_path),
        redis_url=redis_url,
        secret_key="test-secret-key-for-referrals-0123456789",
        metrics_token="referrals-test-metrics-token",
    )
    url = databases.copy_of(
        "referrals-seeded", build=lambda template: seed(msgspec.structs.replace(settings, referrals_db_url=template))
    )
    return msgspec.structs.replace(settings, referrals_db_url=url)


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """The referrals service's clock: the real one. The modules that move time
    (test_referrals_sweep, _hold, _dashboard) override it with a :class:`~tests.support.referrals.Clock`."""
    return lambda: datetime.now(UTC)


@pytest.fixture
def client(settings: Settings, clock: Callable[[], datetime]) -> Iterator[TestClient]:
    """The referrals app over HTTP, its lifespan running (relay, rate limits) for the test."""
    with TestClient(create_app(settings, clock=clock)) as client:
        yield client


@pytest.fixture
def directory_settings(tmp_path: Path, directory_db_url: str, redis_url: str) -> Settings:
    """The directory on the test's migrated database and Redis."""
    return make_settings(tmp_path, db_url=directory_db_url, redis_url=redis_url)


@pytest.fixture
def directory(directory_settings: Settings) -> Iterator[TestClient]:
    """The directory app over HTTP, its lifespan running (relay, rate limits) for the test."""
    with TestClient(directory_app(directory_settings)) as client:
        yield client
