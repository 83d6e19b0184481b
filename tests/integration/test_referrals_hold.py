"""On hold, resume and forward, on a real database and Redis, with the clock advanced."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from litestar.testing import TestClient

from shared.config import Settings
from tests.support.referrals import (
    START,
    Clock,
    accept,
    csrf,
    flush,
    link_path,
    log_in,
    login,
    new_referral,
    queued_emails,
    report,
    sent,
    sweep,
)


@pytest.fixture
def clock() -> Clock:
    """The service's clock for this module's tests: at START until a test moves it."""
    return Clock(START)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The integration settings with soon offers due in one business day, as this module's
    clock moves assume (the default is 3)."""
    return msgspec.structs.replace(settings, offer_days_soon=1)


def api(client: TestClient, headers: dict, referral: dict, action: str, **body: object):
    return client.post(f"/api/v1/referrals/{referral['id']}/{action}", json=body or None, headers=headers)


def test_hold_withdraws_the_waiting_offer_and_resume_offers_it_afresh(
    client: TestClient,
    settings,
    clock: Clock,
) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    first_link = link_path(queued_emails(settings.redis_url)[0])

    held = api(client, headers, referral, "hold", reason="client travelling")
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "on-hold"
    assert [(o["partner_id"], o["status"]) for o in held.json()["offers"]] == [("gp1", "queued"), ("gp2", "queued")]
    assert client.get(first_link).status_code == 410
    # Deadlines do not run while it is held.
    clock.now = START + timedelta(days=3)
    report_ = sweep(client)
    assert (report_.reminded, report_.expired) == (0, 0)
    assert sent(settings) == [("offer", "gp1@partners.example"), ("offer_withdrawn", "gp1@partners.example")]

    resumed = api(client, headers, referral, "resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "requested"
    first = resumed.json()["offers"][0]
    assert first["status"] == "offered" and first["expires_at"].startswith("2030-11-08T14:00:00")
    flush(client)
    assert sent(settings)[-1] == ("offer", "gp1@partners.example")
    assert api(client, headers, referral, "resume").status_code == 409


def test_a_link_withdrawn_by_a_hold_stays_gone_after_resume(client: TestClient, settings) -> None:
    """Issue 16 item 7: each offering carries its own nonce, so the link a partner was told is
    withdrawn never answers again, though the same offer is made again on resume."""
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    old = link_path(queued_emails(settings.redis_url)[0])
    old_form = csrf(client.get(old).text)
    assert api(client, headers, referral, "hold").status_code == 200
    assert api(client, headers, referral, "resume").status_code == 200
    flush(client)
    offers = [e for e in queued_emails(settings.redis_url) if e.kind == "offer"]
    assert [e.to for e in offers] == ["gp1@partners.example", "gp1@partners.example"]
    new = link_path(offers[-1])
    assert new != old

    page = client.get(old)
    assert page.status_code == 410 and "This offer was withdrawn" in page.text
    for attempt in ({"decision": "accept"}, {"decision": "decline", "reason": "no_capacity"}):
        refused = client.post(old, data={**attempt, "_csrf_token": old_form})
        assert refused.status_code == 410 and "This offer was withdrawn" in refused.text
    assert client.post(f"{old}/received", data={"_csrf_token": old_form}).status_code == 410
    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert detail["status"] == "requested" and detail["offers"][0]["status"] == "offered"

    # The new offering's link answers as ever.
    accepted = client.post(new, data={"decision": "accept", "_csrf_token": csrf(client.get(new).text)})
    assert accepted.status_code == 200
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["status"] == "accepted"


def test_no_show_then_resume_sends_a_fresh_report_link(client: TestClient, settings) -> None:
    headers = login(client)
    referral, path = accept(client, settings, headers)
    assert report(client, path, outcome="no_show").status_code == 200
    resumed = api(client, headers, referral, "resume")
    assert resumed.json()["status"] == "accepted" and not resumed.json()["needs_attention"]
    flush(client)
    fresh = link_path([e for e in queued_emails(settings.redis_url) if e.kind == "report_outcome"][-1])
    assert fresh != path
    assert report(client, fresh, outcome="booked", booked_for="2030-12-01").status_code == 200
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["status"] == "in-progress"


def test_forward_a_failed_referral_to_a_partner_in_scope(client: TestClient, settings, clock: Clock) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    assert api(client, headers, referral, "forward", partner_id="gp1").status_code == 409  # still requested
    clock.now = START + timedelta(days=1)
    sweep(client)
    clock.now = START + timedelta(days=2)
    sweep(client)
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["status"] == "failed"

    outside = api(client, headers, referral, "forward", partner_id="trn")
    assert outside.status_code == 422 and outside.json()["extra"]["key"] == "partner_id"
    assert api(client, headers, referral, "forward", partner_id="nobody").status_code == 422
    forwarded = api(client, headers, referral, "forward", partner_id="gp1")
    assert forwarded.status_code == 200, forwarded.text
    body = forwarded.json()
    assert body["status"] == "requested"
    assert [(o["partner_id"], o["status"]) for o in body["offers"]] == [
        ("gp1", "expired"),
        ("gp2", "expired"),
        ("gp1", "offered"),
    ]
    flush(client)
    assert sent(settings)[-1] == ("offer", "gp1@partners.example")
    assert any("forwarded by the therapist to Dr. Ana Gomez" in e["why"] for e in body["timeline"])


def test_staff_pages_hold_resume_and_forward_with_csrf(client: TestClient, settings, clock: Clock) -> None:
    referral = new_referral(client, login(client))
    log_in(client)
    page = client.get(f"/referrals/{referral['id']}")
    assert 'action="/referrals/' + referral["id"] + '/hold"' in page.text and "/resume" not in page.text
    assert client.post(f"/referrals/{referral['id']}/hold", data={"reason": "x"}).status_code == 403
    held = client.post(
        f"/referrals/{referral['id']}/hold",
        data={"reason": "x", "_csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert held.status_code == 303
    page = client.get(f"/referrals/{referral['id']}")
    assert "on-hold" in page.text and "/resume" in page.text and 'name="partner_id"' in page.text
    # Only partners in scope are offered for forwarding.
    assert "Dr. Ben Ode" in page.text and "Coach Kim" not in page.text
    forwarded = client.post(
        f"/referrals/{referral['id']}/forward",
        data={"partner_id": "gp2", "_csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert forwarded.status_code == 303
    page = client.get(f"/referrals/{referral['id']}")
    assert "forwarded by the therapist to Dr. Ben Ode" in page.text
    refused = client.post(
        f"/referrals/{referral['id']}/forward",
        data={"partner_id": "gp1", "_csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert refused.status_code == 409 and "cannot be forwarded" in refused.text
