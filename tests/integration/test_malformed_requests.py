"""Malformed input from anyone is the caller's 400 (or 422 naming the field), never a 500 with a
traceback in the log (issue 16, items 6 and 12): JSON nested thousands deep, bodies that are not
UTF-8, NUL and other control characters, and cursors this service never handed out. Both apps
over HTTP on a real database and Redis."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient

from services.directory.storage import MIGRATIONS as DIRECTORY_MIGRATIONS
from services.directory.web.app import create_app as directory_app
from services.referrals import identity
from services.referrals.storage import MIGRATIONS as REFERRALS_MIGRATIONS
from services.referrals.web.app import create_app as referrals_app
from shared import database
from shared.auth import Staff, issue_staff_token
from shared.config import Settings, load_settings

PASSWORD = "malformed requests 2026"
DEEP_ARRAY = b"[" * 100_000
DEEP_OBJECT = b'{"email": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_000 + b', "password": "x"}'
NOT_UTF8 = b'{"email": "\xff\xfe@clinic.example", "password": "x"}'
FULLWIDTH_CHIRO = "\uff43\uff48\uff49\uff52\uff4f"  # what a phone keyboard in CJK mode types
NESTED_CURSOR = base64.urlsafe_b64encode(b"[" * 3000).decode()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    settings = load_settings(
        environ={}, data_dir=str(tmp_path), redis_url=redis_url, secret_key="malformed-requests-key-0123456789abcdef"
    )
    database.upgrade(migrations=DIRECTORY_MIGRATIONS, url=settings.db_url("directory"))
    database.upgrade(migrations=REFERRALS_MIGRATIONS, url=settings.db_url("referrals"))

    async def add() -> None:
        engine = database.create_engine(settings.db_url("referrals"))
        try:
            sessions = database.sessions(engine)
            await identity.add_user(sessions, email="tess@clinic.example", role="therapist", password=PASSWORD)
        finally:
            await engine.dispose()

    asyncio.run(add())
    return settings


@pytest.fixture
def referrals(settings: Settings) -> Iterator[TestClient]:
    with TestClient(referrals_app(settings)) as client:
        yield client


@pytest.fixture
def directory(settings: Settings) -> Iterator[TestClient]:
    with TestClient(directory_app(settings)) as client:
        yield client


@pytest.fixture
def errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The ERROR records (each unhandled error logs one, with its traceback) logged in the test."""
    caplog.set_level(logging.ERROR)
    records: list[logging.LogRecord] = []
    yield records
    records.extend(r for r in caplog.records if r.levelno >= logging.ERROR)
    assert records == [], [r.getMessage() for r in records]


def shared_error(response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"status_code", "detail", "extra"} and body["status_code"] == response.status_code
    return body


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT, NOT_UTF8], ids=["deep-array", "deep-object", "not-utf8"])
def test_sign_in_and_referral_bodies_that_cannot_be_read_are_400(
    referrals: TestClient, body: bytes, errors_logged: list
) -> None:
    token = referrals.post("/api/v1/auth/token", json={"email": "tess@clinic.example", "password": PASSWORD})
    staff = {"Authorization": f"Bearer {token.json()['access_token']}"}
    json_type = {"Content-Type": "application/json"}
    shared_error(referrals.post("/api/v1/auth/token", content=body, headers=json_type), 400)
    shared_error(referrals.post("/api/v1/referrals", content=body, headers={**json_type, **staff}), 400)
    shared_error(referrals.post("/api/v1/referrals/suggestions", content=body, headers={**json_type, **staff}), 400)


def test_a_form_that_is_not_utf8_is_400(referrals: TestClient, errors_logged: list) -> None:
    page = referrals.get("/login")
    token = page.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = referrals.post(
        "/login",
        content=b"email=%FF%FE&password=x&_csrf_token=" + token.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code in (400, 401), answer.status_code


@pytest.mark.parametrize("path", ["/api/v1/partners", "/partners-in-health"])
def test_a_cursor_nested_thousands_deep_is_400(directory: TestClient, path: str, errors_logged: list) -> None:
    answer = directory.get(path, params={"cursor": NESTED_CURSOR})
    assert answer.status_code == 400, answer.status_code
    if path.startswith("/api/"):
        assert shared_error(answer, 400)["extra"][0]["key"] == "cursor"


def test_nul_and_control_characters_are_refused_naming_the_field(
    directory: TestClient, referrals: TestClient, settings: Settings, errors_logged: list
) -> None:
    admin = Staff(id="admin-1", email="admin@clinic.example", role="admin")
    bearer = {
        "Authorization": f"Bearer {issue_staff_token(key=settings.secret_key, staff=admin, ttl=timedelta(hours=1))}"
    }
    partner = {"name": "A\u0000B", "category": "dietitian", "email": "a@diet.example"}
    refused = shared_error(directory.post("/api/v1/partners", json=partner, headers=bearer), 422)
    assert refused["extra"]["key"] == "name"
    bell = shared_error(
        directory.post("/api/v1/partners", json={**partner, "name": "AB", "practice": "x\u0007y"}, headers=bearer), 422
    )
    assert bell["extra"]["key"] == "practice"
    assert directory.get("/api/v1/partners", headers=bearer).json()["items"] == []
    # A bio keeps its line breaks.
    kept = directory.post(
        "/api/v1/partners", json={**partner, "name": "AB", "bio": "One.\nTwo.\r\n\tThree."}, headers=bearer
    )
    assert kept.status_code == 201 and kept.json()["bio"] == "One.\nTwo.\r\n\tThree."

    token = referrals.post("/api/v1/auth/token", json={"email": "tess@clinic.example", "password": PASSWORD})
    staff = {"Authorization": f"Bearer {token.json()['access_token']}"}
    body = {
        "client": {"name": "Zed\u0000Quinn"},
        "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
        "reasons": ["rehab_exercise_needed"],
    }
    answer = shared_error(referrals.post("/api/v1/referrals", json=body, headers=staff), 422)
    assert answer["extra"]["key"] == "client.name"


def test_search_reads_fullwidth_and_other_lookalike_letters_as_their_plain_forms(
    directory: TestClient, settings: Settings
) -> None:
    admin = Staff(id="admin-1", email="admin@clinic.example", role="admin")
    bearer = {
        "Authorization": f"Bearer {issue_staff_token(key=settings.secret_key, staff=admin, ttl=timedelta(hours=1))}"
    }
    created = directory.post(
        "/api/v1/partners",
        json={"name": "Gulf Chiropractic", "category": "chiropractic", "email": "front@gulf.example"},
        headers=bearer,
    )
    assert created.status_code == 201
    for q in (FULLWIDTH_CHIRO, "\uff27\uff35\uff2c\uff26", "chiro"):
        found = directory.get("/api/v1/partners", params={"q": q}).json()["items"]
        assert [p["name"] for p in found] == ["Gulf Chiropractic"], q
    page = directory.get("/partners-in-health", params={"q": FULLWIDTH_CHIRO})
    assert "Gulf Chiropractic" in page.text
