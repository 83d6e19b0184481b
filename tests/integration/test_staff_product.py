"""Issue 13's one product over HTTP: both services serve the shared stylesheet and favicon; a
browser gets styled error pages (with the staff navigation when signed in) where the API and
other clients keep the JSON error body; the navigation links the two services by their
configured URLs."""

from __future__ import annotations

from litestar.testing import TestClient

from shared.web import STAFF_COOKIE
from tests.support.directory import bearer
from tests.support.referrals import log_in

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_referrals_serves_the_stylesheet_and_the_favicon(client: TestClient) -> None:
    _serves_assets(client)


def test_the_directory_serves_the_stylesheet_and_the_favicon(directory: TestClient) -> None:
    _serves_assets(directory)


def _serves_assets(app: TestClient) -> None:
    icon = app.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"
    sheet = app.get("/assets/handoff.css")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")
    assert "@media (max-width: 40rem)" in sheet.text


def test_a_browser_gets_a_styled_404_and_an_api_client_json(client: TestClient) -> None:
    page = client.get("/no-such-page", headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in page.text and "/assets/handoff.css" in page.text
    plain = client.get("/no-such-page")
    assert plain.status_code == 404 and plain.json()["status_code"] == 404
    api = client.get("/api/v1/no-such-thing", headers=BROWSER)
    assert api.status_code == 404 and api.json()["status_code"] == 404


def test_a_signed_in_member_sees_the_navigation_on_an_error_page(client: TestClient) -> None:
    assert log_in(client, "ada@clinic.example").status_code == 303
    page = client.get("/referrals/00000000-0000-0000-0000-000000000000", headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert 'aria-label="Staff"' in page.text and ">Partners</a>" in page.text


def test_the_partner_admin_shares_the_navigation_and_links_to_referrals(directory: TestClient) -> None:
    settings = directory.app.state.settings
    directory.cookies.set(STAFF_COOKIE, bearer("admin")["Authorization"].split()[1])
    page = directory.get("/admin/partners", headers=BROWSER)
    assert page.status_code == 200
    referrals = settings.public_url("referrals")
    assert f'href="{referrals}/"' in page.text and f'href="{referrals}/admin/staff"' in page.text
    assert 'aria-current="page">Partners</a>' in page.text
    directory.cookies.set(STAFF_COOKIE, bearer("therapist")["Authorization"].split()[1])
    refused = directory.get("/admin/partners", headers=BROWSER)
    assert refused.status_code == 403 and "<h1>Your account cannot open this page</h1>" in refused.text
    assert 'aria-label="Staff"' in refused.text and ">Partners</a>" not in refused.text
