"""A Redis that demands a password, or an ACL user and password, serves every part of Handoff
through the URL alone (issue 16, item 14): the web services' readiness, rate limits, revocation
checks and outbox relays, and the referrals worker. A private ``redis-server`` started here with
``requirepass`` and an ACL user; the apps over HTTP on real databases."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient

from services.dev.ports import free_port, wait_for_port
from services.dev.redis_server import executable
from services.directory.storage import MIGRATIONS as DIRECTORY_MIGRATIONS
from services.directory.web.app import create_app as directory_app
from services.referrals import bootstrap, worker
from services.referrals.storage import MIGRATIONS as REFERRALS_MIGRATIONS
from services.referrals.web.app import create_app as referrals_app
from shared import database
from shared.auth import Staff, issue_staff_token
from shared.config import Settings, load_settings

PASSWORD = "redis-default-user-password-0123"
USER, USER_PASSWORD = "handoff", "redis-acl-user-password-4567"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[int]:
    """A redis-server on a free port whose default user needs PASSWORD, with an ACL user too."""
    port = free_port()
    process = subprocess.Popen(
        [
            executable(),
            "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp_path),
            "--requirepass", PASSWORD,
            "--user", USER, "on", f">{USER_PASSWORD}", "~*", "&*", "+@all",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def handoff_on(tmp_path: Path, redis_url: str) -> Settings:
    settings = load_settings(
        environ={}, data_dir=str(tmp_path / "data"), redis_url=redis_url, secret_key="redis-auth-test-key-0123456789abc"
    )
    database.upgrade(migrations=DIRECTORY_MIGRATIONS, url=settings.db_url("directory"))
    database.upgrade(migrations=REFERRALS_MIGRATIONS, url=settings.db_url("referrals"))
    return settings


@pytest.mark.parametrize("who", ["password", "acl-user"])
def test_every_part_works_with_the_credentials_in_the_url(tmp_path: Path, private_redis: int, who: str) -> None:
    credentials = f":{PASSWORD}" if who == "password" else f"{USER}:{USER_PASSWORD}"
    settings = handoff_on(tmp_path, f"redis://{credentials}@127.0.0.1:{private_redis}/0")
    admin = Staff(id="admin-1", email="admin@clinic.example", role="admin")
    bearer = {
        "Authorization": f"Bearer {issue_staff_token(key=settings.secret_key, staff=admin, ttl=timedelta(hours=1))}"
    }
    with TestClient(directory_app(settings)) as directory:
        assert directory.get("/ready").json() == {"status": "ready"}
        created = directory.post(  # the revocation check, then the outbox relay
            "/api/v1/partners",
            json={"name": "Bay Physio", "category": "physical_therapy", "email": "bay@physio.example"},
            headers=bearer,
        )
        assert created.status_code == 201, created.text
        assert directory.get("/api/v1/partners", params={"q": "bay"}).status_code == 200  # the rate limit
        with directory.portal() as portal:
            portal.call(directory.app.state.directory.republish)
    # The relay flushed on its own; the referrals worker, as `handoff worker referrals --burst`.
    worker.main(settings, burst=True)

    async def replicated() -> list:
        runtime = bootstrap.build(settings)
        try:
            return await runtime.referrals.forward_candidates(reasons=["rehab_exercise_needed"])
        finally:
            await runtime.close()

    assert [p.name for p in asyncio.run(replicated())] == ["Bay Physio"]
    with TestClient(referrals_app(settings)) as referrals:
        assert referrals.get("/ready").json() == {"status": "ready"}
        signed_in = referrals.post("/api/v1/auth/token", json={"email": "nobody@clinic.example", "password": "x"})
        assert signed_in.status_code == 401  # counted by the rate limit, then refused


def test_a_wrong_password_is_a_redis_that_is_not_ready(tmp_path: Path, private_redis: int) -> None:
    settings = handoff_on(tmp_path, f"redis://:not-the-password@127.0.0.1:{private_redis}/0")
    with TestClient(directory_app(settings)) as directory:
        not_ready = directory.get("/ready")
    assert not_ready.status_code == 503 and "redis" in not_ready.json()["extra"]
