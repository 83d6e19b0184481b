"""The partner inbox on a real database and Redis: one link per partner address, in every offer
email, lists that partner's open offers (answered there), accepted referrals awaiting a report
(reported there) and the last 90 days; never another partner's; each view audited; a tampered,
expired or revoked link refused, and the next email carries a working one."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from litestar.testing import TestClient
from sqlalchemy import select

from services.referrals import links
from services.referrals.storage.tables import audit_log
from shared import database
from tests.support.referrals import (
    CLIENT,
    csrf,
    flush,
    in_days,
    log_in,
    login,
    new_referral,
    queued_emails,
)


def inbox_path(settings, to: str = "gp1@partners.example") -> str:
    """The inbox link of the newest offer email to ``to``; the email holds no client data."""
    offer = [e for e in queued_emails(settings.redis_url) if e.kind == "offer" and e.to == to][-1]
    url = offer.context.inbox_url
    assert url.startswith(f"{settings.public_url('referrals')}/inbox/"), url
    for secret in ("Zelda", "Marchbanks", "727", "33701"):
        assert secret not in url
    return re.sub(r"^https?://[^/]+", "", url)


def audits(settings, action: str) -> list[dict]:
    async def run() -> list[dict]:
        engine = database.create_engine(settings.db_url("referrals"))
        async with engine.connect() as connection:
            rows = (await connection.execute(select(audit_log).where(audit_log.c.action == action))).mappings().all()
        await engine.dispose()
        return [dict(row) for row in rows]

    return asyncio.run(run())


def offer_ids(page: str) -> list[str]:
    return re.findall(r'action="/inbox/[^/"]+/offers/([^"]+)"', page)


def three_offers_to_gp1(client: TestClient, headers: dict) -> list[dict]:
    made = [new_referral(client, headers, note=f"note {n}") for n in range(3)]
    flush(client)
    return made


def test_a_partner_with_three_offers_sees_them_all_and_answers_one_there(client: TestClient, settings) -> None:
    headers = login(client)
    made = three_offers_to_gp1(client, headers)
    # Another partner's referral, never shown in gp1's inbox.
    theirs = new_referral(client, headers, partner_ids=["gp2"], note="for gp2 only")
    flush(client)
    path = inbox_path(settings)

    page = client.get(path)
    assert page.status_code == 200, page.text
    for referral in made:
        assert referral["reference"] in page.text
    assert theirs["reference"] not in page.text and "for gp2 only" not in page.text
    assert len(offer_ids(page.text)) == 3
    # Minimum necessary: before accepting, no name, phone or street; the ZIP and language only.
    assert CLIENT["name"] not in page.text and "555-0142" not in page.text
    assert "33701" in page.text
    views = audits(settings, "partner_viewed_inbox")
    assert len(views) == 1 and views[0]["actor"] == "partner-inbox:gp1@partners.example"
    assert len(views[0]["detail"]["offer_ids"]) == 3
    assert len(audits(settings, "partner_viewed_referral")) == 3  # each offer's view, as its own page

    # A decline without a reason: the error names it, nothing is answered, the note typed is kept.
    first = offer_ids(page.text)[0]
    answer_at = f"{path}/offers/{first}"
    token = csrf(page.text)
    missing = client.post(answer_at, data={"decision": "decline", "note": "kept text", "_csrf_token": token})
    assert missing.status_code == 422 and 'role="alert"' in missing.text and "kept text" in missing.text
    assert len(offer_ids(missing.text)) == 3

    accepted = client.post(answer_at, data={"decision": "accept", "_csrf_token": token})
    assert accepted.status_code == 200, accepted.text
    assert "you accepted the referral" in accepted.text
    # Now theirs: the client's contact is shown with the report form; the other two still wait.
    assert len(offer_ids(accepted.text)) == 2
    assert CLIENT["name"] in accepted.text and "/reports/" in accepted.text
    answered = client.get(f"/api/v1/referrals/{_referral_of(made, accepted.text)}", headers=headers).json()
    assert answered["status"] == "accepted"
    # The same answer again: refused as answered, nothing changed.
    again = client.post(answer_at, data={"decision": "decline", "reason": "no_capacity", "_csrf_token": token})
    assert again.status_code == 410 and "already been answered" in again.text

    # Report in place: exactly the outcome report's rules.
    report_at = re.search(r'action="(/inbox/[^"]+/reports/[^"]+)"', accepted.text).group(1)
    assert report_at.endswith(first)
    vague = client.post(report_at, data={"outcome": "booked", "_csrf_token": token})
    assert vague.status_code == 422 and "Appointment date: give the date the client is booked for" in vague.text
    too_far = client.post(report_at, data={"outcome": "booked", "booked_for": in_days(400), "_csrf_token": token})
    assert too_far.status_code == 422 and "more than a year ahead" in too_far.text
    booked = client.post(report_at, data={"outcome": "booked", "booked_for": in_days(14), "_csrf_token": token})
    assert booked.status_code == 200 and "report is sent" in booked.text
    assert client.get(f"/api/v1/referrals/{answered['id']}", headers=headers).json()["status"] == "in-progress"

    # Another partner's offer through gp1's inbox link: refused, nothing changed.
    flush(client)
    gp2_page = client.get(inbox_path(settings, "gp2@partners.example"))
    gp2_offer = offer_ids(gp2_page.text)[0]
    forged = client.post(f"{path}/offers/{gp2_offer}", data={"decision": "accept", "_csrf_token": token})
    assert forged.status_code == 403
    assert client.get(f"/api/v1/referrals/{theirs['id']}", headers=headers).json()["status"] == "requested"


def _referral_of(made: list[dict], page: str) -> str:
    """The one of ``made`` shown as accepted (the section with the client's contact)."""
    accepted = page.split('id="accepted"', 1)[1].split('id="past"', 1)[0]
    return next(r["id"] for r in made if r["reference"] in accepted)


def test_declined_offers_move_to_the_last_90_days(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    path = inbox_path(settings)
    page = client.get(path)
    declined = client.post(
        f"{path}/offers/{offer_ids(page.text)[0]}",
        data={"decision": "decline", "reason": "no_capacity", "_csrf_token": csrf(page.text)},
    )
    assert declined.status_code == 200
    assert offer_ids(declined.text) == []
    past = declined.text.split('id="past"', 1)[1]
    assert referral["reference"] in past and "You declined" in past


def test_tampered_expired_or_foreign_inbox_links_are_refused(client: TestClient, settings) -> None:
    headers = login(client)
    three_offers_to_gp1(client, headers)
    path = inbox_path(settings)
    token = path.rsplit("/", 1)[1]
    key = client.app.state.settings.keyring()

    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.get(f"/inbox/{tampered}").status_code == 403
    assert client.get("/inbox/not-a-token").status_code == 403
    expired = links.issue_inbox(
        key=key, email="gp1@partners.example", generation=0, expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    gone = client.get(f"/inbox/{expired}")
    assert gone.status_code == 410 and "expired" in gone.text
    # An answer link is no inbox link, nor the reverse.
    offer = [e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1]
    answer_token = offer.context.action_url.rsplit("/", 1)[1]
    assert client.get(f"/inbox/{answer_token}").status_code == 403
    assert client.get(f"/respond/{token}").status_code == 403
    # Nothing was audited as viewed by a refused link.
    assert audits(settings, "partner_viewed_inbox") == []


def test_the_admin_revokes_an_address_s_links_and_the_next_email_carries_a_new_one(
    client: TestClient, settings
) -> None:
    headers = login(client)
    new_referral(client, headers)
    flush(client)
    old = inbox_path(settings)
    assert client.get(old).status_code == 200

    # Therapists cannot revoke; the admin can, with the CSRF token, and it is audited.
    assert log_in(client).status_code == 303
    assert client.get("/admin/inbox", follow_redirects=False).status_code == 403
    log_in(client, "ada@clinic.example")
    admin_page = client.get("/admin/inbox")
    assert admin_page.status_code == 200 and "gp1@partners.example" in admin_page.text
    unknown = client.post(
        "/admin/inbox/revoke", data={"email": "x@nowhere.example", "_csrf_token": csrf(admin_page.text)}
    )
    assert unknown.status_code == 422
    revoked = client.post(
        "/admin/inbox/revoke", data={"email": "GP1@partners.example", "_csrf_token": csrf(admin_page.text)}
    )
    assert revoked.status_code == 200 and "Turned off every inbox link sent to gp1@partners.example" in revoked.text
    (audit,) = audits(settings, "inbox_links_revoked")
    assert audit["detail"] == {"email": "gp1@partners.example", "generation": 1}
    assert audit["actor"].startswith("staff:")

    client.cookies.clear()
    refused = client.get(old)
    assert refused.status_code == 410 and "turned off" in refused.text
    page_token = csrf(client.get("/login").text)
    offer_id = "no-such-offer"
    assert (
        client.post(f"{old}/offers/{offer_id}", data={"decision": "accept", "_csrf_token": page_token}).status_code
        == 410
    )
    # Another address's links keep working.
    new_referral(client, headers, partner_ids=["gp2"])
    flush(client)
    assert client.get(inbox_path(settings, "gp2@partners.example")).status_code == 200

    # The next email to gp1 carries a link of the new generation, which works.
    new_referral(client, headers)
    flush(client)
    fresh = inbox_path(settings)
    assert fresh != old
    assert client.get(fresh).status_code == 200
