"""Staff disabled, or moved from admin to therapist, in the referrals service (admin page or
``handoff user``) lose the directory on the very next request: the tokens they already hold get
401 on its API and a redirect to the login on its admin pages, while a login after the change
works at once. Both apps over HTTP on a real Redis and real databases; Redis unreachable while
disabling and while checking."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Iterator
from datetime import timedelta

import msgspec
import pytest
from litestar.testing import TestClient
from redis import Redis

from services import cli
from services.directory.storage import MIGRATIONS as DIRECTORY_MIGRATIONS
from services.directory.web.app import create_app as directory_app
from services.referrals import identity
from services.referrals.web.app import create_app as referrals_app
from shared import database
from shared.auth import Staff, issue_staff_token
from shared.config import Settings
from shared.revocation import CLOCK_MARGIN, KEY_PREFIX
from shared.web import STAFF_COOKIE
from tests.support.referrals import PASSWORD, csrf

ADA = "ada@clinic.example"  # the admin who acts
DORA = "dora@clinic.example"  # the admin who is disabled or demoted


@pytest.fixture
def dora(settings: Settings) -> Staff:
    """A second admin; the directory's database is ready beside the referrals one."""
    database.upgrade(migrations=DIRECTORY_MIGRATIONS, url=settings.db_url("directory"))

    async def add() -> Staff:
        engine = database.create_engine(settings.db_url("referrals"))
        try:
            return await identity.add_user(database.sessions(engine), email=DORA, role="admin", password=PASSWORD)
        finally:
            await engine.dispose()

    return asyncio.run(add())


@pytest.fixture
def directory(settings: Settings, dora: Staff) -> Iterator[TestClient]:
    with TestClient(directory_app(settings)) as client:
        yield client


def api_token(referrals: TestClient, email: str) -> str:
    """A bearer token from the referrals API's login."""
    response = referrals.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def page_token(referrals: TestClient, email: str) -> str:
    """The login cookie from the referrals login page."""
    referrals.cookies.clear()
    form = {"email": email, "password": PASSWORD, "_csrf_token": csrf(referrals.get("/login").text)}
    done = referrals.post("/login", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    token = referrals.cookies[STAFF_COOKIE]
    referrals.cookies.clear()
    return token


def change(referrals: TestClient, **fields: str) -> object:
    """Ada sends the staff admin page's change form."""
    referrals.cookies.set(STAFF_COOKIE, page_token(referrals, ADA))
    form = {**fields, "_csrf_token": csrf(referrals.get("/admin/staff").text)}
    response = referrals.post("/admin/staff/change", data=form)
    referrals.cookies.clear()
    return response


def directory_answers(directory: TestClient, token: str) -> tuple[int, int]:
    """What the directory answers ``token``: on its admin API (bearer) and its admin page (cookie)."""
    api = directory.get("/api/v1/partners/export", headers={"Authorization": f"Bearer {token}"}).status_code
    directory.cookies.set(STAFF_COOKIE, token)
    page = directory.get("/admin/partners", follow_redirects=False).status_code
    directory.cookies.clear()
    return api, page


def assert_refused(directory: TestClient, settings: Settings, token: str) -> None:
    """``token`` gets the answers of an invalid one: 401 on the API, the login on pages."""
    api = directory.get("/api/v1/partners/export", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401 and api.json()["detail"] == "staff token revoked"
    assert "invalid_token" in api.headers["www-authenticate"]
    # Public reads with an admin's token show hidden partners: a revoked token is refused there too.
    assert directory.get("/api/v1/partners", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    directory.cookies.set(STAFF_COOKIE, token)
    page = directory.get("/admin/partners", follow_redirects=False)
    directory.cookies.clear()
    assert page.status_code == 303
    assert page.headers["location"].startswith(f"{settings.public_url('referrals')}/login?next=")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> pytest.MonkeyPatch:
    for name, value in {
        "HANDOFF_REFERRALS_DB_URL": settings.referrals_db_url,
        "HANDOFF_DATA_DIR": settings.data_dir,
        "HANDOFF_REDIS_URL": settings.redis_url,
    }.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


# --- the admin page ------------------------------------------------------------------------------


def test_disabled_on_the_admin_page_loses_the_directory_at_once_and_a_new_login_works(
    client: TestClient,
    directory: TestClient,
    settings: Settings,
    dora: Staff,
) -> None:
    held = [api_token(client, DORA), page_token(client, DORA)]
    assert [directory_answers(directory, token) for token in held] == [(200, 200), (200, 200)]

    disabled = change(client, email=DORA, role="admin", action="disable")
    assert disabled.status_code == 200 and f"{DORA} is disabled" in disabled.text
    for token in held:
        assert_refused(directory, settings, token)
    assert directory_answers(directory, api_token(client, ADA)) == (200, 200)  # nobody else is touched
    # The record lasts as long as the tokens it refuses could, and no longer.
    lifetime = Redis.from_url(settings.redis_url).ttl(KEY_PREFIX + dora.id)
    expected = timedelta(minutes=settings.staff_token_ttl_minutes) + CLOCK_MARGIN
    assert expected.total_seconds() - 60 < lifetime <= expected.total_seconds()

    enabled = change(client, email=DORA, role="admin", action="enable")
    assert enabled.status_code == 200 and f"{DORA} is active, admin" in enabled.text
    # Logged in again at once (very likely within the second of the revocation).
    assert directory_answers(directory, api_token(client, DORA)) == (200, 200)
    assert directory_answers(directory, page_token(client, DORA)) == (200, 200)
    for token in held:
        assert_refused(directory, settings, token)


def test_an_admin_made_therapist_on_the_admin_page_loses_directory_admin_at_once(
    client: TestClient,
    directory: TestClient,
    settings: Settings,
) -> None:
    held = api_token(client, DORA)
    assert directory_answers(directory, held) == (200, 200)

    demoted = change(client, email=DORA, role="therapist")
    assert demoted.status_code == 200 and f"{DORA} is active, therapist" in demoted.text
    assert_refused(directory, settings, held)
    assert directory_answers(directory, api_token(client, DORA)) == (403, 403)
    assert directory_answers(directory, page_token(client, DORA)) == (403, 403)


def test_redis_away_while_disabling_saves_the_disable_and_tells_the_admin_what_still_works(
    client: TestClient,
    directory: TestClient,
    settings: Settings,
    closed_redis_url: str,
) -> None:
    held = api_token(client, DORA)
    with TestClient(referrals_app(msgspec.structs.replace(settings, redis_url=closed_redis_url))) as offline:
        answer = change(offline, email=DORA, role="admin", action="disable")
    text = html.unescape(answer.text)
    assert answer.status_code == 200
    assert f"Saved: {DORA} is disabled, admin." in text
    assert f"{DORA}'s sign-ins from before this change keep working in the directory until" in text
    assert "Redis did not answer" in text and "Save this account's role again once Redis is back" in text
    assert client.post("/api/v1/auth/token", json={"email": DORA, "password": PASSWORD}).status_code == 401
    assert directory_answers(directory, held) == (200, 200)  # as the admin was told

    again = change(client, email=DORA, role="admin")  # saved again, Redis answering
    assert again.status_code == 200 and f"{DORA} is disabled, admin" in again.text
    assert_refused(directory, settings, held)


# --- handoff user ---------------------------------------------------------------------------------


def test_disabled_or_demoted_with_the_cli_loses_the_directory_at_once(
    client: TestClient,
    directory: TestClient,
    settings: Settings,
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    held = api_token(client, DORA)
    assert cli.main(["user", "disable", "--email", DORA]) == 0
    assert_refused(directory, settings, held)

    assert cli.main(["user", "enable", "--email", DORA]) == 0
    fresh = api_token(client, DORA)
    assert directory_answers(directory, fresh) == (200, 200)

    assert cli.main(["user", "role", "--email", DORA, "--role", "therapist"]) == 0
    assert f"{DORA} is active, therapist" in capsys.readouterr().out
    assert_refused(directory, settings, fresh)
    assert directory_answers(directory, api_token(client, DORA)) == (403, 403)


def test_redis_away_the_cli_disables_and_fails_saying_what_still_works(
    client: TestClient,
    directory: TestClient,
    settings: Settings,
    cli_env: pytest.MonkeyPatch,
    closed_redis_url: str,
    capsys: pytest.CaptureFixture,
) -> None:
    held = api_token(client, DORA)
    cli_env.setenv("HANDOFF_REDIS_URL", closed_redis_url)
    assert cli.main(["user", "disable", "--email", DORA]) == 1
    out, err = capsys.readouterr()
    assert f"{DORA} is disabled, admin" in out
    assert "keep working in the directory until" in err and "run this command again once Redis answers" in err
    assert client.post("/api/v1/auth/token", json={"email": DORA, "password": PASSWORD}).status_code == 401

    cli_env.setenv("HANDOFF_REDIS_URL", settings.redis_url)
    assert cli.main(["user", "disable", "--email", DORA]) == 0
    assert_refused(directory, settings, held)


# --- Redis away while the directory checks -------------------------------------------------------


def test_redis_away_the_directory_accepts_valid_tokens_with_one_warning(
    settings: Settings,
    dora: Staff,
    closed_redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.revocation")
    token = issue_staff_token(key=settings.signing_key(), staff=dora, ttl=timedelta(hours=1))
    with TestClient(directory_app(msgspec.structs.replace(settings, redis_url=closed_redis_url))) as away:
        assert [directory_answers(away, token) for _ in range(3)] == [(200, 200)] * 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "shared.revocation"]
    assert len(warnings) == 1 and "revoked staff tokens not refused" in warnings[0]
