"""The partner's two forms on a real database and Redis, as a browser posts them: the answer
(accept or decline) and the outcome report. A form sent wrong comes back as the page (422, never
JSON) with every error at once, each beside its field in plain words naming its label, and what
was chosen and typed kept; nothing is recorded until it is right."""

from __future__ import annotations

import re
from datetime import date, timedelta

from litestar.testing import TestClient

from tests.support.referrals import accept, csrf, flush, in_days, link_path, login, new_referral, queued_emails

PAGE = {"Accept": "text/html"}


def offer_link(client: TestClient, settings) -> tuple[dict, str]:
    headers = login(client)
    new_referral(client, headers)
    flush(client)
    return headers, link_path([e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1])


def field_error(page: str, name: str) -> str:
    """The message shown beside the field ``name``; empty when there is none."""
    found = re.search(rf'<p id="e-{name}" class="error">([^<]*)</p>', page)
    return found.group(1) if found else ""


def test_an_answer_without_a_choice_comes_back_as_the_form(client: TestClient, settings) -> None:
    headers, path = offer_link(client, settings)
    token = csrf(client.get(path).text)
    for accept_header in (PAGE, {}):
        empty = client.post(path, data={"_csrf_token": token}, headers=accept_header)
        assert empty.status_code == 422 and empty.headers["content-type"].startswith("text/html")
        assert field_error(empty.text, "decision") == "Your answer: choose accept or decline"
        assert '<a href="#f-decision">Your answer: choose accept or decline</a>' in empty.text
    referral = client.get("/api/v1/referrals", headers=headers).json()[0]
    assert referral["offers"][0]["status"] == "offered"


def test_a_decline_without_a_reason_keeps_the_choice_and_the_note(client: TestClient, settings) -> None:
    headers, path = offer_link(client, settings)
    page = client.get(path).text
    assert 'maxlength="2000"' in page and "Up to 2,000 characters." in page
    token = csrf(page)
    sent = {"decision": "decline", "note": "Back from leave in March", "_csrf_token": token}
    missing = client.post(path, data=sent, headers=PAGE)
    assert missing.status_code == 422
    assert field_error(missing.text, "reason") == "Reason for declining: say why you are declining"
    assert field_error(missing.text, "decision") == ""
    assert re.search(r'value="decline"[^>]*checked', missing.text)
    assert ">Back from leave in March</textarea>" in missing.text
    assert not re.search(r"<option[^>]*selected", missing.text)

    # Two problems at once: a note over the limit and no reason; the reason chosen is kept.
    long_note = "n" * 2001
    both = client.post(path, data={**sent, "note": long_note}, headers=PAGE)
    assert both.status_code == 422 and "2 things need your attention" in both.text
    assert field_error(both.text, "note") == "Note for the clinic: at most 2,000 characters (this has 2,001)"
    kept = client.post(path, data={**sent, "reason": "no_capacity", "note": long_note}, headers=PAGE)
    assert re.search(r'value="no_capacity"[^>]*selected', kept.text) and field_error(kept.text, "reason") == ""

    done = client.post(path, data={**sent, "reason": "no_capacity"}, headers=PAGE)
    assert done.status_code == 200
    offer = client.get("/api/v1/referrals", headers=headers).json()[0]["offers"][0]
    assert offer["status"] == "declined" and offer["decline_reason"] == "no_capacity"


def test_an_acceptance_keeps_no_decline_reason(client: TestClient, settings) -> None:
    headers, path = offer_link(client, settings)
    token = csrf(client.get(path).text)
    done = client.post(path, data={"decision": "accept", "reason": "no_capacity", "_csrf_token": token})
    assert done.status_code == 200 and "you have accepted" in done.text
    offer = client.get("/api/v1/referrals", headers=headers).json()[0]["offers"][0]
    assert offer["status"] == "accepted" and offer["decline_reason"] is None


def test_a_report_with_every_field_wrong_lists_them_all_and_keeps_them(client: TestClient, settings) -> None:
    _, path = accept(client, settings, login(client))
    page = client.get(path).text
    # The limits are on the date field: from yesterday to a year ahead, in the clinic's time zone.
    field = re.search(r'<input type="date"[^>]*min="([\d-]+)" max="([\d-]+)"', page)
    assert field, "no date field with its limits"
    earliest, latest = (date.fromisoformat(value) for value in field.groups())
    assert latest - earliest == timedelta(days=366) and abs(earliest - date.today()) <= timedelta(days=2)
    token = csrf(page)
    sent = {
        "outcome": "completed",
        "booked_for": "next Tuesday",
        "clearance": "precautions",
        "note": "m" * 2001,
        "_csrf_token": token,
    }
    wrong = client.post(path, data=sent, headers=PAGE)
    assert wrong.status_code == 422 and "3 things need your attention" in wrong.text
    assert field_error(wrong.text, "booked_for") == (
        "Appointment date: give the date as month/day/year, for example 12/14/2026"
    )
    assert field_error(wrong.text, "areas_to_avoid") == (
        "Precautions, areas to avoid: name the areas to avoid or the pressure limit"
    )
    assert field_error(wrong.text, "note").startswith("Note for the therapist: at most 2,000 characters")
    assert re.search(r'value="completed"[^>]*checked', wrong.text)
    assert re.search(r'value="precautions"[^>]*checked', wrong.text)
    assert 'value="next Tuesday"' in wrong.text
    assert client.get(path).status_code == 200  # the link is not used up


def test_a_booked_date_in_the_past_or_over_a_year_ahead_is_refused(client: TestClient, settings) -> None:
    headers = login(client)
    referral, path = accept(client, settings, headers)
    token = csrf(client.get(path).text)
    for typed, words in (
        ("1999-01-01", "January 1, 1999 is in the past; give the date of the appointment"),
        (in_days(-3), "is in the past"),
        (in_days(400), "is more than a year ahead; check the year"),
    ):
        refused = client.post(path, data={"outcome": "booked", "booked_for": typed, "_csrf_token": token})
        assert refused.status_code == 422, typed
        assert words in field_error(refused.text, "booked_for"), (typed, field_error(refused.text, "booked_for"))
        assert f'value="{typed}"' in refused.text
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["status"] == "accepted"
    # The day before today still counts (a booking reported a day late), and so does a US date.
    month, day, year = in_days(30)[5:7], in_days(30)[8:10], in_days(30)[:4]
    booked = client.post(path, data={"outcome": "booked", "booked_for": f"{month}/{day}/{year}", "_csrf_token": token})
    assert booked.status_code == 200, field_error(booked.text, "booked_for")
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["outcomes"][0]["booked_for"] == (
        in_days(30)
    )
