"""A directory partners keep true, end to end over ``handoff dev``'s real processes and the caught
mail (issue 14, "How it will be checked" 1, 2, 3 and 5): manage links asked for on the public
page, capacity in one click reaching the public page and the suggestions, a name change waiting
for the admin, and a lapsed licence offered nothing. The confirmation cycle, which needs its
own tiny settings, is in test_listing_confirmation; the pages' screenshots in
test_listing_pages."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.system import System, body_text, token

ADMIN = "ada@clinic.example"
THERAPIST = "tess@clinic.example"


@pytest.fixture(scope="module")
def people(system: System, staff: None) -> dict[str, dict[str, str]]:
    return {"admin": token(system, ADMIN), "therapist": token(system, THERAPIST)}


def _partner(system: System, admin: dict[str, str], **fields: object) -> dict:
    body = {
        "name": "Bay Physical Therapy",
        "category": "primary_care",
        "email": "intake@baypt.example",
        "accepting_new_clients": "yes",
        "address": {"city": "St. Petersburg", "state": "FL", "postal_code": "33701"},
        **fields,
    }
    created = system.directory.post("/api/v1/partners", json=body, headers=admin)
    assert created.status_code == 201, created.text
    return created.json()


def _mail_to(system: System, address: str, subject: str) -> list:
    return [m for m in system.mail() if m["To"] == address and subject in m["Subject"]]


def _manage_link(system: System, address: str) -> str:
    message = eventually(
        lambda: (_mail_to(system, address, "update your listing") or [None])[-1], what=f"a manage link for {address}"
    )
    return re.search(r"https?://\S+(/manage/\S+)", body_text(message)).group(1)


def _suggestions(system: System, therapist: dict[str, str]) -> list[dict]:
    answer = system.referrals.post(
        "/api/v1/referrals/suggestions", headers=therapist, json={"reasons": ["calf_swelling_one_side"]}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _post_form(client: httpx.Client, page: httpx.Response, **fields: str) -> httpx.Response:
    action = re.search(r'action="(/manage/[^"]+)"', page.text).group(1)
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(action, data={**fields, "_csrf_token": csrf}, follow_redirects=False)


def test_a_manage_link_request_answers_alike_for_a_made_up_slug_and_only_the_real_one_emails(
    system: System, people: dict
) -> None:
    partner = _partner(system, people["admin"], name="Gulf Family Medicine", email="desk@gulf-fm.example")
    mail_before = len(system.mail())

    real = system.directory.post(f"/partners-in-health/{partner['slug']}/manage-link")
    made_up = system.directory.post("/partners-in-health/gulf-family-medicine-nope/manage-link")

    assert real.status_code == made_up.status_code == 202
    assert real.text == made_up.text and real.headers["content-type"] == made_up.headers["content-type"]
    link = _manage_link(system, "desk@gulf-fm.example")
    assert system.directory.get(link).status_code == 200
    time.sleep(2)  # what the made-up slug would have sent has had time to arrive
    assert len(system.mail()) == mail_before + 1


def test_full_until_a_day_shows_at_once_and_suggestions_rank_the_partner_last_saying_why(
    system: System, people: dict
) -> None:
    full = _partner(system, people["admin"], name="Dr. Rosa Delgado", email="rosa@bayside.example")
    _partner(system, people["admin"], name="Dr. Ben Ode", email="ben@ode.example")
    eventually(lambda: len(_suggestions(system, people["therapist"])) >= 2, what="both partners in the replica")
    system.directory.post(f"/partners-in-health/{full['slug']}/manage-link")
    page = system.directory.get(_manage_link(system, "rosa@bayside.example"))
    until = date.today() + timedelta(days=21)

    saved = _post_form(system.directory, page, action="update", accepting_new_clients="no", accepting_until=str(until))
    assert saved.status_code == 303
    saved_at = time.monotonic()

    shown = eventually(
        lambda: (
            "Not accepting new clients until" in (p := system.directory.get(f"/partners-in-health/{full['slug']}")).text
            and p
        ),
        timeout=5,
        what="the public page showing the partner full",
    )
    assert time.monotonic() - saved_at < 1.0, "the public page took longer than a second"
    assert f"{until:%B} {until.day}, {until:%Y}" in shown.text

    def ranked_last() -> list[dict] | None:
        found = _suggestions(system, people["therapist"])
        return found if found and found[-1]["partner_id"] == full["id"] else None

    suggestions = eventually(ranked_last, timeout=10, what="the full partner ranked last")
    assert any("ranked last: not accepting new clients until" in why for why in suggestions[-1]["why"])


def test_a_name_change_through_the_link_shows_only_once_the_admin_approves(system: System, people: dict) -> None:
    partner = _partner(
        system, people["admin"], name="Shore Chiropractic", category="chiropractic", email="dc@shore.example"
    )
    system.directory.post(f"/partners-in-health/{partner['slug']}/manage-link")
    page = system.directory.get(_manage_link(system, "dc@shore.example"))

    asked = _post_form(system.directory, page, action="update", name="Shoreline Chiropractic & Rehab")
    assert asked.status_code == 303
    time.sleep(1)
    public = system.directory.get(f"/partners-in-health/{partner['slug']}")
    assert "Shore Chiropractic" in public.text and "Shoreline" not in public.text

    admin = people["admin"]
    reviews = system.directory.get("/admin/partners/reviews", headers=admin)
    assert "Shoreline Chiropractic &amp; Rehab" in reviews.text
    review_id = re.search(r'action="/admin/partners/reviews/([^"]+)"', reviews.text).group(1)
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', reviews.text).group(1)
    decided = system.directory.post(
        f"/admin/partners/reviews/{review_id}",
        data={"decision": "approve", "note": "Matches the state board.", "_csrf_token": csrf},
        headers=admin,
        follow_redirects=False,
    )
    assert decided.status_code == 303, decided.text

    eventually(
        lambda: (
            "Shoreline Chiropractic &amp; Rehab" in system.directory.get(f"/partners-in-health/{partner['slug']}").text
        ),
        timeout=5,
        what="the approved name on the public page",
    )
    eventually(lambda: _mail_to(system, "dc@shore.example", "Approved"), what="the partner told of the approval")


def test_a_partner_whose_licence_expired_is_offered_nothing_and_the_422_names_the_licence(
    system: System, people: dict
) -> None:
    expired = date.today() - timedelta(days=3)
    lapsed = _partner(
        system,
        people["admin"],
        name="Dr. Lapsed Licence",
        email="lapsed@example.org",
        licence_expires_on=str(expired),
    )
    # Changes reach the replica in order: once a partner added after it is there, so is the licence.
    after = _partner(system, people["admin"], name="Dr. Added After", email="after@example.org")
    therapist = people["therapist"]
    eventually(lambda: after["id"] in [s["partner_id"] for s in _suggestions(system, therapist)], what="the replica")
    assert lapsed["id"] not in [s["partner_id"] for s in _suggestions(system, therapist)]

    referral = {
        "client": {"name": "Wilhelmina Sentinel-Client", "postal_code": "33701", "phone": "727-555-0166"},
        "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
        "reasons": ["calf_swelling_one_side"],
    }
    chosen = system.referrals.post(
        "/api/v1/referrals", json={**referral, "partner_ids": [lapsed["id"]]}, headers=therapist
    )
    assert chosen.status_code == 422
    body = chosen.json()
    assert body["extra"]["key"] == "partner_ids[0]" and body["extra"]["partner_id"] == lapsed["id"]
    assert f"licence expired on {expired:%B} {expired.day}, {expired:%Y}" in body["detail"]

    issued = system.referrals.post("/api/v1/referrals", json=referral, headers=therapist)
    assert issued.status_code == 201, issued.text
    assert lapsed["id"] not in [offer["partner_id"] for offer in issued.json()["offers"]]
    time.sleep(2)
    assert not [m for m in system.mail() if m["To"] == "lapsed@example.org"]
