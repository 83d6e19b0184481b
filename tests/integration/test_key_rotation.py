"""Rotating ``HANDOFF_SECRET_KEY`` signs nobody out: with the old key moved to
``HANDOFF_SECRET_KEYS``, sign-ins, forms' CSRF tokens and partner links signed before keep
working on both services until they expire, while everything new is signed with the new key;
once the old key is dropped, what it signed is refused. Both apps over HTTP on a real database
and Redis."""

from __future__ import annotations

import jwt
import msgspec
from litestar.testing import TestClient

from services.directory.storage import MIGRATIONS as DIRECTORY_MIGRATIONS
from services.directory.web.app import create_app as directory_app
from services.referrals.web.app import create_app as referrals_app
from shared import database
from shared.config import Settings
from shared.keys import key_id
from shared.web import STAFF_COOKIE
from tests.support.referrals import PASSWORD, csrf, flush, link_path, new_referral, queued_emails

NEW_KEY = "the-new-secret-key-after-rotation-0123456789"


def test_what_the_old_key_signed_works_until_the_old_key_is_dropped(settings: Settings) -> None:
    database.upgrade(migrations=DIRECTORY_MIGRATIONS, url=settings.db_url("directory"))
    old_key = settings.secret_key
    with TestClient(referrals_app(settings)) as before:
        api = before.post("/api/v1/auth/token", json={"email": "ada@clinic.example", "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {api.json()['access_token']}"}
        referral = new_referral(before, bearer, reasons=["rehab_exercise_needed"], partner_ids=["pt1"])
        flush(before)
        offer = next(e for e in queued_emails(settings.redis_url) if e.referral_id == referral["id"])
        login_page = before.get("/login")
        form_cookie, form_token = before.cookies["csrftoken"], csrf(login_page.text)
    assert jwt.get_unverified_header(api.json()["access_token"])["kid"] == key_id(old_key)

    rotated = msgspec.structs.replace(settings, secret_key=NEW_KEY, secret_keys=f"{old_key}")
    with TestClient(referrals_app(rotated)) as referrals, TestClient(directory_app(rotated)) as directory:
        # The old sign-in, on both services.
        assert referrals.get("/api/v1/referrals", headers=bearer).status_code == 200
        assert directory.get("/api/v1/partners/export", headers=bearer).status_code == 200
        # The old form token: a login form opened before the rotation is sent after it.
        referrals.cookies.set("csrftoken", form_cookie)
        signed_in = referrals.post(
            "/login",
            data={"email": "ada@clinic.example", "password": PASSWORD, "_csrf_token": form_token},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        # What is signed now, is signed with the new key.
        assert jwt.get_unverified_header(referrals.cookies[STAFF_COOKIE])["kid"] == key_id(NEW_KEY)
        referrals.cookies.clear()
        # The partner's emailed link.
        assert referrals.get(link_path(offer)).status_code == 200

    dropped = msgspec.structs.replace(settings, secret_key=NEW_KEY, secret_keys="")
    with TestClient(referrals_app(dropped)) as referrals, TestClient(directory_app(dropped)) as directory:
        assert referrals.get("/api/v1/referrals", headers=bearer).status_code == 401
        assert directory.get("/api/v1/partners/export", headers=bearer).status_code == 401
        assert referrals.get(link_path(offer)).status_code == 403
        referrals.cookies.set("csrftoken", form_cookie)
        refused = referrals.post(
            "/login", data={"email": "ada@clinic.example", "password": PASSWORD, "_csrf_token": form_token}
        )
        assert refused.status_code == 403
