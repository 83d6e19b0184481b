"""Closing the loop on a real database and Redis: the acceptance email's fresh report link,
booked → in-progress → completed with a massage clearance shown on the referral (and on the
client's later referral), no-show back to the therapist, links single use, forms with CSRF."""

from __future__ import annotations

import re

from litestar.testing import TestClient

from tests.support.referrals import (
    CLIENT,
    CONSENT,
    accept,
    flush,
    in_days,
    link_path,
    log_in,
    login,
    queued_emails,
    report,
    report_link,
)


def status(client: TestClient, headers: dict, referral: dict) -> dict:
    return client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()


def test_booked_then_completed_with_precautions_shown_on_the_referral(client: TestClient, settings) -> None:
    headers = login(client)
    referral, path = accept(client, settings, headers)
    assert path.startswith("/report/")
    assert status(client, headers, referral)["status"] == "accepted"

    booked_for = in_days(12)
    booked = report(client, path, outcome="booked", booked_for=booked_for)
    assert booked.status_code == 200 and "report is recorded" in booked.text
    assert status(client, headers, referral)["status"] == "in-progress"
    # The used link says so; a fresh one came by email.
    assert client.get(path).status_code == 410
    flush(client)
    second = report_link(settings)
    assert second != path and booked_for in client.get(second).text

    missing = report(client, second, outcome="completed")
    assert missing.status_code == 422 and "massage is cleared" in missing.text
    vague = report(client, second, outcome="completed", clearance="precautions")
    assert vague.status_code == 422 and "areas to avoid" in vague.text
    done = report(
        client,
        second,
        outcome="completed",
        clearance="precautions",
        areas_to_avoid="left calf",
        pressure_limit="light pressure only",
        note="Scan clear; follow up in 2 weeks",
    )
    assert done.status_code == 200
    body = status(client, headers, referral)
    assert body["status"] == "completed"
    assert [o["outcome"] for o in body["outcomes"]] == ["booked", "completed"]
    assert body["clearance"]["clearance"] == "precautions" and body["clearance"]["areas_to_avoid"] == "left calf"
    assert client.get(second).status_code == 410
    flush(client)
    therapist = [e for e in queued_emails(settings.redis_url) if e.to == "tess@clinic.example"]
    assert [e.kind for e in therapist].count("outcome_reported") == 2
    # Each email to the therapist opens the referral's staff page (its id, nothing of the client).
    assert {e.context.action_url for e in therapist} == {f"http://localhost:8002/referrals/{referral['id']}"}
    assert not [e for e in queued_emails(settings.redis_url) if e.kind == "report_outcome"][2:]

    log_in(client)
    page = client.get(f"/referrals/{referral['id']}")
    assert page.status_code == 200
    clearance = re.search(r'<section class="clearance[^"]*".*?</section>', page.text, re.S).group(0)
    assert "Massage with precautions" in clearance and "left calf" in clearance and "light pressure only" in clearance
    # The outcome reports read in words, the appointment as a day, never codes.
    reports = re.search(r'<h2 id="outcomes-title">.*?</table>', page.text, re.S).group(0)
    assert "Booked: the client has an appointment" in reports and "Seen: our part of the care is complete" in reports
    assert "Massage with precautions; avoid: left calf" in reports
    assert "precautions<" not in reports and booked_for not in reports

    # The client's next referral (the same client record) shows the clearance from the earlier one.
    later = client.post(
        "/api/v1/referrals",
        headers=headers,
        json={
            "client": {"id": referral["client"]["id"]},
            "consent": CONSENT,
            "reasons": ["rehab_exercise_needed"],
            "partner_ids": ["pt1"],
        },
    ).json()
    assert later["clearance"]["from_earlier_referral"] is True
    assert later["clearance"]["reference"] == referral["reference"]
    assert "other referral " + referral["reference"] in client.get(f"/referrals/{later['id']}").text
    other = client.post(
        "/api/v1/referrals",
        headers=headers,
        json={
            "client": {**CLIENT, "name": "Someone Else"},
            "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
            "reasons": ["rehab_exercise_needed"],
            "partner_ids": ["pt1"],
        },
    ).json()
    assert other["clearance"] is None


def test_no_show_goes_back_to_the_therapist(client: TestClient, settings) -> None:
    headers = login(client)
    referral, path = accept(client, settings, headers)
    assert report(client, path, outcome="no_show", note="Two calls unanswered").status_code == 200
    body = status(client, headers, referral)
    assert body["status"] == "on-hold" and body["needs_attention"]
    assert any("did not attend" in line for line in body["attention"])
    listed = client.get("/api/v1/referrals?needs_attention=true", headers=headers).json()
    assert [r["id"] for r in listed] == [referral["id"]]
    assert client.get(path).status_code == 410


def test_report_links_are_checked(client: TestClient, settings) -> None:
    headers = login(client)
    _, path = accept(client, settings, headers)
    assert client.get(path[:-3] + "xyz").status_code == 403
    # An answer link cannot be used to report, nor a report link to answer.
    offer = link_path(next(e for e in queued_emails(settings.redis_url) if e.kind == "offer"))
    assert client.get(offer.replace("/respond/", "/report/")).status_code == 403
    assert client.get(path.replace("/report/", "/respond/")).status_code == 403
    # The form needs its CSRF token.
    client.get(path)
    assert client.post(path, data={"outcome": "booked", "booked_for": in_days(12)}).status_code == 403
