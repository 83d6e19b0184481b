"""Staff disabled, or moved from admin to therapist, in the referrals service (admin page or
``handoff user``) lose the directory on the very next request: the tokens they already hold get
401 on its API and a redirect to the login on its admin pages, while a login after the change
works at once. Logging out ends that sign-in, and "sign out everywhere" every sign-in of the
account, on both services. Both apps over HTTP on a real Redis and real databases; Redis
unreachable while disabling and while checking (staff requests then fail closed)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import timedelta

import msgspec
import pytest
from litestar.middleware.csrf import generate_csrf_token
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
    """Ada sends the staff admin page's change form (a disable as confirmed on its own page)."""
    referrals.cookies.set(STAFF_COOKIE, page_token(referrals, ADA))
    form = {**fields, "confirm": "yes", "_csrf_token": csrf(referrals.get("/admin/staff").text)}
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


def test_redis_away_the_staff_page_changes_nothing_and_the_cli_still_disables(
    client: TestClient,
    directory: TestClient,
    settings: Settings,
    closed_redis_url: str,
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """Staff routes fail closed while sign-ins cannot be checked (issue 16, item 3); the command
    line, which needs no sign-in, still disables, saying what keeps working."""
    held = api_token(client, DORA)
    with TestClient(referrals_app(msgspec.structs.replace(settings, redis_url=closed_redis_url))) as offline:
        offline.cookies.set(STAFF_COOKIE, page_token(client, ADA))
        form_token = generate_csrf_token(secret=settings.signing_key())
        offline.cookies.set("csrftoken", form_token)
        answer = offline.post(
            "/admin/staff/change", data={"email": DORA, "action": "disable", "_csrf_token": form_token}
        )
    assert answer.status_code == 503 and "Please try again in a few seconds" in answer.text
    assert directory_answers(directory, held) == (200, 200)  # nothing changed

    cli_env.setenv("HANDOFF_REDIS_URL", closed_redis_url)
    assert cli.main(["user", "disable", "--email", DORA]) == 1
    assert "keep working in the directory until" in capsys.readouterr().err
    assert client.post("/api/v1/auth/token", json={"email": DORA, "password": PASSWORD}).status_code == 401
    cli_env.setenv("HANDOFF_REDIS_URL", settings.redis_url)
    assert cli.main(["user", "disable", "--email", DORA]) == 0
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


def test_redis_away_the_directory_refuses_staff_and_still_serves_the_public(
    settings: Settings,
    dora: Staff,
    closed_redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 16, item 3: with Redis down, a disabled admin's token exported every partner's
    referral address and created a partner. Now every staff request fails closed (503 naming
    redis) while public reads go on, showing only what the public sees."""
    caplog.set_level(logging.WARNING, logger="shared.revocation")
    token = issue_staff_token(key=settings.signing_key(), staff=dora, ttl=timedelta(hours=1))
    bearer = {"Authorization": f"Bearer {token}"}
    partner = {"name": "Bay Physio", "category": "physical_therapy", "email": "bay@physio.example"}
    with TestClient(directory_app(msgspec.structs.replace(settings, redis_url=closed_redis_url))) as away:
        for answer in (
            away.get("/api/v1/partners/export", headers=bearer),
            away.post("/api/v1/partners", json=partner, headers=bearer),
            away.patch("/api/v1/partners/some-id", json={"version": 1, "email": "x@evil.example"}, headers=bearer),
        ):
            assert answer.status_code == 503, answer.text
            assert answer.json()["extra"] == {"unavailable": "redis"} and answer.headers["retry-after"]
        away.cookies.set(STAFF_COOKIE, token)
        for path in ("/admin/partners", "/admin/partners/export.csv"):
            page = away.get(path, follow_redirects=False)
            assert page.status_code == 503 and "Please try again in a few seconds" in page.text, path
        away.cookies.clear()
        public = away.get("/api/v1/partners", headers=bearer)
        assert public.status_code == 200 and all("email" not in p for p in public.json()["items"])
        assert away.get("/partners-in-health").status_code == 200
    with TestClient(directory_app(settings)) as back:
        assert back.get("/api/v1/partners", headers=bearer).json()["items"] == []  # nothing was created
    warnings = [r.getMessage() for r in caplog.records if r.name == "shared.revocation"]
    assert warnings and all("staff tokens refused" in w for w in warnings)


# --- logging out and signing out everywhere (issue 16, item 4) -------------------------------------


def log_out(referrals: TestClient, settings: Settings, cookie: str, **form: str) -> object:
    """The logout button, pressed with ``cookie``."""
    referrals.cookies.clear()
    referrals.cookies.set(STAFF_COOKIE, cookie)
    answer = referrals.post(
        "/logout", data=form, headers={"Origin": settings.public_url("referrals")}, follow_redirects=False
    )
    referrals.cookies.clear()
    return answer


def referrals_answers(referrals: TestClient, token: str) -> tuple[int, int]:
    """What the referrals service answers ``token``: its staff API (bearer) and home page (cookie)."""
    api = referrals.get("/api/v1/referrals", headers={"Authorization": f"Bearer {token}"}).status_code
    referrals.cookies.set(STAFF_COOKIE, token)
    home = referrals.get("/", follow_redirects=False).status_code
    referrals.cookies.clear()
    return api, home


def test_a_cookie_kept_from_before_logout_opens_nothing_on_either_service(
    client: TestClient,
    directory: TestClient,
    settings: Settings,
) -> None:
    kept = page_token(client, DORA)
    elsewhere = api_token(client, DORA)  # another sign-in of the same account
    assert referrals_answers(client, kept) == (200, 200) and directory_answers(directory, kept) == (200, 200)

    done = log_out(client, settings, kept)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert referrals_answers(client, kept) == (401, 303)
    assert_refused(directory, settings, kept)
    # Only that sign-in ended.
    assert referrals_answers(client, elsewhere) == (200, 200) and directory_answers(directory, elsewhere) == (200, 200)


def test_sign_out_everywhere_from_the_logout_page_the_staff_page_and_the_cli(
    client: TestClient,
    directory: TestClient,
    settings: Settings,
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    def sign_ins() -> list[str]:
        return [page_token(client, DORA), api_token(client, DORA)]

    def all_refused(tokens: list[str]) -> None:
        for token in tokens:
            assert referrals_answers(client, token) == (401, 303)
            assert_refused(directory, settings, token)

    # The account itself, on its logout page.
    held = sign_ins()
    assert log_out(client, settings, held[0], everywhere="yes").status_code == 303
    all_refused(held)
    # An admin, on the staff page.
    held = sign_ins()
    assert referrals_answers(client, held[1]) == (200, 200)
    signed_out = change(client, email=DORA, role="admin", action="signout")
    assert signed_out.status_code == 200 and f"Signed out everywhere: {DORA}" in signed_out.text
    all_refused(held)
    # An admin, with the command line.
    held = sign_ins()
    assert cli.main(["user", "signout", "--email", DORA]) == 0
    assert f"{DORA} is signed out everywhere" in capsys.readouterr().out
    all_refused(held)
    # Signing in again works at once, and the account was not otherwise changed.
    assert referrals_answers(client, api_token(client, DORA)) == (200, 200)
    assert directory_answers(directory, page_token(client, DORA)) == (200, 200)
