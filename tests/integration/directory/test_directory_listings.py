"""The self-service listing over HTTP on a real database and Redis: manage links asked for on the
public page (the same answer for every slug), the manage page (GET changes nothing; confirm and
update act once per form), every error at once with the input kept, and the admin's review."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from litestar.testing import TestClient

from shared import manage_links
from shared.config import Settings
from tests.support.directory import (
    ADMIN,
    create,
    form_action,
    form_csrf,
    manage_path,
    staged_emails,
)


def _link(client: TestClient, settings: Settings, slug: str) -> str:
    answer = client.post(f"/partners-in-health/{slug}/manage-link")
    assert answer.status_code == 202, answer.text
    emails = [e for e in staged_emails(settings.directory_db_url) if e.kind == "listing_manage_link"]
    assert emails, "no manage-link email was staged"
    return manage_path(emails[-1])


def _post(client: TestClient, page_text: str, **fields: str):
    return client.post(
        form_action(page_text), data={**fields, "_csrf_token": form_csrf(page_text)}, follow_redirects=False
    )


def test_a_manage_link_request_answers_the_same_for_a_made_up_slug_and_sends_nothing_for_it(
    client: TestClient, settings: Settings
) -> None:
    partner = create(client)

    real = client.post(f"/partners-in-health/{partner['slug']}/manage-link")
    made_up = client.post("/partners-in-health/no-such-practice/manage-link")

    assert real.status_code == made_up.status_code == 202
    assert real.text == made_up.text
    emails = staged_emails(settings.directory_db_url)
    assert [(e.kind, e.to) for e in emails] == [("listing_manage_link", "intake@baypt.example")]
    assert emails[0].referral_id is None and "/manage/" in emails[0].context.action_url


def test_the_public_page_offers_to_update_the_listing_and_says_it_is_not_confirmed(client: TestClient) -> None:
    partner = create(client)

    page = client.get(f"/partners-in-health/{partner['slug']}")

    assert f'action="/partners-in-health/{partner["slug"]}/manage-link"' in page.text
    assert "Listing details not yet confirmed" in page.text
    assert "set-cookie" not in page.headers  # still cacheable


def test_confirming_through_the_link_dates_the_listing_and_a_replayed_form_changes_nothing(
    client: TestClient, settings: Settings
) -> None:
    partner = create(client)
    path = _link(client, settings, partner["slug"])
    page = client.get(path)
    assert page.status_code == 200 and "Bay Physical Therapy" in page.text
    assert client.get(f"/api/v1/partners/{partner['id']}").json()["version"] == 1  # GET changed nothing

    confirmed = _post(client, page.text, action="confirm")

    assert confirmed.status_code == 303
    after = client.get(f"/api/v1/partners/{partner['id']}").json()
    assert after["last_confirmed_at"] is not None and after["version"] == 2
    assert "Confirmed by the practice on" in client.get(f"/partners-in-health/{partner['slug']}").text
    replayed = _post(client, page.text, action="confirm")
    assert replayed.status_code == 409 and "already sent" in replayed.text
    assert client.get(f"/api/v1/partners/{partner['id']}").json()["version"] == 2
    # The page the browser lands on carries a fresh link that works.
    landed = client.get(confirmed.headers["location"])
    assert landed.status_code == 200 and "confirmed as correct" in landed.text
    assert _post(client, landed.text, action="confirm").status_code == 303


def test_full_until_a_day_shows_at_once_and_a_name_change_waits_for_the_admin(
    client: TestClient, settings: Settings
) -> None:
    partner = create(client)
    page = client.get(_link(client, settings, partner["slug"]))
    until = (date.today() + timedelta(days=30)).isoformat()

    full = _post(client, page.text, action="update", accepting_new_clients="no", accepting_until=until)
    assert full.status_code == 303
    shown = client.get(f"/api/v1/partners/{partner['id']}").json()
    assert (shown["accepting_new_clients"], shown["accepting_until"]) == ("no", until)
    assert "Not accepting new clients until" in client.get(f"/partners-in-health/{partner['slug']}").text
    assert client.get("/api/v1/partners", params={"accepting": "yes"}).json()["items"] == []

    page = client.get(full.headers["location"])
    renamed = _post(
        client,
        page.text,
        action="update",
        name="Bay Physio & Rehab",
        hours="Mon-Fri 8-6",
        licence_expires_on="2031-03-01",
    )
    assert renamed.status_code == 303
    shown = client.get(f"/api/v1/partners/{partner['id']}").json()
    assert (shown["name"], shown["hours"], shown["licence_expires_on"]) == ("Bay Physical Therapy", "Mon-Fri 8-6", None)
    queue = client.get("/admin/partners/reviews", headers=ADMIN)
    assert queue.status_code == 200 and "Bay Physio &amp; Rehab" in queue.text
    # A day reads as a day, in the admin's queue and on the partner's own page.
    assert "<strong>March 1, 2031</strong>" in queue.text and "2031-03-01" not in queue.text
    assert "Licence expires on → “March 1, 2031”" in client.get(renamed.headers["location"]).text

    review_id = queue.text.split('name="review_id" value="')[1].split('"')[0]
    decided = client.post(
        f"/admin/partners/reviews/{review_id}",
        data={"decision": "approve", "note": "Checked with the state board.", "_csrf_token": form_csrf(queue.text)},
        headers=ADMIN,
        follow_redirects=False,
    )
    assert decided.status_code == 303, decided.text
    assert client.get(f"/api/v1/partners/{partner['id']}").json()["name"] == "Bay Physio & Rehab"
    kinds = [e.kind for e in staged_emails(settings.directory_db_url)]
    assert kinds[-1] == "listing_change_approved"


def test_an_update_with_bad_values_names_every_one_keeps_the_input_and_stores_nothing(
    client: TestClient, settings: Settings
) -> None:
    partner = create(client)
    page = client.get(_link(client, settings, partner["slug"]))

    bad = _post(
        client,
        page.text,
        action="update",
        phone="not a phone",
        website="javascript:alert(1)",
        response_window_days="soon",
        hours="Tue 9-5",
        accepting_new_clients="no",
        accepting_until="2001-01-01",
    )

    assert bad.status_code == 422
    for column in ("phone", "website", "response_window_days", "accepting_until"):
        assert f'id="e-{column}"' in bad.text, column
    assert 'value="Tue 9-5"' in bad.text and 'value="not a phone"' in bad.text
    assert client.get(f"/api/v1/partners/{partner['id']}").json()["version"] == 1
    # The form was not used up: corrected, it goes through.
    assert _post(client, bad.text, action="update", hours="Tue 9-5").status_code == 303


def test_a_tampered_or_expired_link_gets_a_clear_page(client: TestClient, settings: Settings) -> None:
    partner = create(client)
    path = _link(client, settings, partner["slug"])

    tampered = client.get(path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb"))

    assert tampered.status_code == 403 and "not valid" in tampered.text
    assert client.post(path[:-3] + "xyz", data={"action": "confirm"}).status_code in (403, 400)
    past = manage_links.issue(
        key=settings.keyring(), partner_id=partner["id"], expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    expired = client.get(f"/manage/{past}")
    assert expired.status_code == 410 and "expired" in expired.text
    page = client.get(path)
    archived = client.post(f"/api/v1/partners/{partner['id']}/archive", headers=ADMIN)
    assert archived.status_code == 200
    gone = _post(client, page.text, action="confirm")
    assert gone.status_code == 410 and "no longer with the clinic" in gone.text
    assert client.get(f"/api/v1/partners/{partner['id']}", headers=ADMIN).json()["last_confirmed_at"] is None


def test_every_change_is_in_the_partners_history_with_who_made_it(client: TestClient, settings: Settings) -> None:
    partner = create(client)
    page = client.get(_link(client, settings, partner["slug"]))
    assert _post(client, page.text, action="update", hours="Sat 9-1").status_code == 303
    changed = client.patch(f"/api/v1/partners/{partner['id']}", json={"version": 2, "bio": "Knees."}, headers=ADMIN)
    assert changed.status_code == 200, changed.text

    admin_page = client.get(f"/admin/partners/{partner['id']}", headers=ADMIN)

    history = admin_page.text.split("<h2>History</h2>")[1]
    rows = re.findall(r"<tr>\s*<td>[^<]+</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>", history)
    assert rows == [
        ("admin:admin@clinic.example", "updated: Short bio"),
        ("partner", "updated: Hours"),
        (
            "admin:admin@clinic.example",
            "created: " + rows[2][1].split(": ", 1)[1],
        ),
    ]


def test_manage_link_requests_are_limited_per_address_and_per_partner(client: TestClient, settings: Settings) -> None:
    partner = create(client)

    answers = [client.post(f"/partners-in-health/{partner['slug']}/manage-link").status_code for _ in range(5)]
    over = client.post("/partners-in-health/another/manage-link")

    assert answers == [202] * 5
    assert over.status_code == 429 and "Retry-After" in over.headers
    # Three emails an hour reach the partner, whoever asks.
    assert len(staged_emails(settings.directory_db_url)) == 3
