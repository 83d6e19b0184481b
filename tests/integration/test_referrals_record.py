"""Issue 13's "record people read" on the referral's staff page and the admin's pages: offers
never made say "not needed" once the referral stopped looking, the timeline reads as sentences
with each email under the step that sent it, and the emergency stops are listed for admins."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from html import unescape

from litestar.testing import TestClient
from sqlalchemy import select

from services.referrals.storage import audit_log
from shared import database
from shared.messages import EmailDelivery
from tests.support.referrals import (
    CONSENT,
    URGENT,
    accept,
    csrf,
    deliver,
    flush,
    link_path,
    log_in,
    login,
    new_referral,
    queued_emails,
    report,
)

CHEST = "chest_pain_breathless"


def offers_table(page: str) -> list[str]:
    """The offers table's rows as text, one line each."""
    table = page.split('id="offers-title"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def test_offers_never_made_are_next_in_line_then_not_needed(client: TestClient, settings) -> None:
    headers = login(client)
    referral, report_path = accept(client, settings, headers)
    log_in(client)
    accepted = offers_table(client.get(f"/referrals/{referral['id']}").text)
    assert accepted[0].startswith("1 Dr. Ana Gomez accepted") and accepted[1].startswith("2 Dr. Ben Ode not needed")

    assert report(client, report_path, outcome="completed", clearance="ok").status_code == 200
    completed = client.get(f"/referrals/{referral['id']}").text
    assert offers_table(completed)[1].startswith("2 Dr. Ben Ode not needed") and "queued" not in completed

    # While the referral still looks for a partner, the next partner is next in line; a decline
    # reads as its reason's words.
    looking = new_referral(client, headers)
    flush(client)
    offer = [e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1]
    assert offers_table(client.get(f"/referrals/{looking['id']}").text)[1].startswith("2 Dr. Ben Ode next in line")
    path = link_path(offer)
    token = csrf(client.get(path).text)
    assert (
        client.post(path, data={"decision": "decline", "reason": "no_capacity", "_csrf_token": token}).status_code
        == 200
    )
    rows = offers_table(client.get(f"/referrals/{looking['id']}").text)
    assert rows[0].startswith("1 Dr. Ana Gomez declined: no capacity right now") and "2 Dr. Ben Ode offered" in rows[1]

    # Cancelled: the offer never made is not needed (its stored status is "withdrawn").
    cancelled = new_referral(client, headers)
    client.post(f"/api/v1/referrals/{cancelled['id']}/cancel", headers=headers)
    rows = offers_table(client.get(f"/referrals/{cancelled['id']}").text)
    assert rows[0].startswith("1 Dr. Ana Gomez withdrawn") and rows[1].startswith("2 Dr. Ben Ode not needed")


def test_admins_see_each_emergency_stop_and_their_view_is_audited(client: TestClient, settings) -> None:
    log_in(client)
    stop = {
        "client_name": "Zed Quill",
        "client_phone": "727-555-0142",
        "reasons": ["persistent_anxiety_depression", "active_suicidal_intent"],
        "_csrf_token": csrf(client.get("/referrals/new").text),
    }
    assert "This is not a referral" in client.post("/referrals/new", data=stop).text
    # Through the API too: the same rules, the same record.
    refused = client.post(
        "/api/v1/referrals",
        json={"client": {"name": "Zed Quill", "phone": "727-555-0142"}, "consent": CONSENT, "reasons": [CHEST]},
        headers=login(client),
    )
    assert refused.status_code == 422 and refused.json()["extra"]["urgency"] == "emergency"

    # A therapist sees neither the list nor the count.
    assert client.get("/admin/emergency-stops").status_code == 403
    assert "emergency stop" not in client.get("/").text.lower()

    log_in(client, "ada@clinic.example")
    home = client.get("/").text
    assert "2 emergency stops in the last 90 days" in home and 'href="/admin/emergency-stops"' in home
    listing = client.get("/admin/emergency-stops")
    assert listing.status_code == 200
    rows = table_rows(listing.text)
    # Newest first, each with the staff member and the reasons' labels (never their codes), and
    # nothing of the client.
    assert len(rows) == 2 and all("Therapist: tess@clinic.example" in row for row in rows)
    assert "Reasons: Sudden breathlessness or chest pain" in rows[0]
    assert "Reasons: Suicidal intent, a plan" in rows[1] and "988" in rows[1]
    assert CHEST not in listing.text and "active_suicidal_intent" not in listing.text
    assert "Zed" not in listing.text and "555-0142" not in listing.text
    assert audited(settings, "emergency_stops_viewed") == [("ada@clinic.example", {"shown": 2})]


def table_rows(page: str) -> list[str]:
    """A page's first table's body rows as text (each cell after its data-label), one line each."""
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    cells = re.sub(r'<td data-label="([^"]+)">', r" \1: ", body)
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in re.findall(r"<tr>(.*?)</tr>", cells, re.S)
    ]


def audited(settings, action: str) -> list[tuple[str, dict]]:
    """The audit log's (actor, detail) of ``action``, oldest first."""

    async def run() -> list[tuple[str, dict]]:
        engine = database.create_engine(settings.db_url("referrals"))
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(audit_log.c.actor, audit_log.c.detail)
                .where(audit_log.c.action == action)
                .order_by(audit_log.c.id)
            )
            found = [(row.actor, dict(row.detail)) for row in rows]
        await engine.dispose()
        return found

    return asyncio.run(run())


def timeline_steps(page: str) -> list[str]:
    """The timeline's steps as text, one line each (its emails included)."""
    timeline = page.split('<ol class="timeline"')[1].split("</ol>")[0]
    steps = re.split(r"\n  <li>", timeline)[1:]
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", step)).split()) for step in steps]


def test_the_timeline_reads_as_sentences_with_each_email_under_its_step(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers, reasons=URGENT, partner_ids=["gp1", "gp2"])
    flush(client)
    offers = {e.to: e for e in queued_emails(settings.redis_url) if e.kind == "offer"}
    # The offer to gp1 is sent, the one to gp2 bounces; gp2's delivery report comes after gp1 accepts.
    deliver(settings, delivery(offers["gp1@partners.example"], "sent"))
    path = link_path(offers["gp1@partners.example"])
    token = csrf(client.get(path).text)
    assert client.post(path, data={"decision": "accept", "_csrf_token": token}).status_code == 200
    deliver(settings, delivery(offers["gp2@partners.example"], "failed", detail="550 mailbox unavailable"))

    log_in(client)
    page = client.get(f"/referrals/{referral['id']}").text
    steps = timeline_steps(page)
    assert len(steps) == 5, steps  # issued, offered twice, accepted, gp2 withdrawn: no email rows
    issued, to_gp1, to_gp2, accepted, withdrawn = steps
    assert re.fullmatch(
        r"\w{3}, \w{3} \d+, \d+:\d\d [AP]M E[SD]T · tess@clinic\.example issued for One-sided calf.* "
        r"to 2 partners, 2 at a time\. Now requested\.",
        issued,
    ), issued
    assert "· Handoff, automatically offered to Dr. Ana Gomez, to answer by" in to_gp1
    assert re.search(r"Email to gp1@partners\.example: the offer, with the link to answer · sent \w{3}, ", to_gp1)
    assert "Email to gp2@partners.example: the offer, with the link to answer · could not be delivered" in to_gp2
    assert to_gp2.endswith("(550 mailbox unavailable)")
    assert "· Dr. Ana Gomez accepted by Dr. Ana Gomez. Now accepted." in accepted
    # The acceptance's emails, staged after the others' withdrawals, are still the acceptance's.
    assert "Email to tess@clinic.example: accepted · waiting to be sent" in accepted
    assert "Email to gp1@partners.example: the link to report the outcome · waiting to be sent" in accepted
    assert "offer to Dr. Ben Ode withdrawn: Dr. Ana Gomez took it." in withdrawn
    assert "Email to gp2@partners.example: another practice took it" in withdrawn
    # Sentences (each step's first letter a capital by the page's style), with no codes, no ISO
    # stamps, no actor prefixes.
    assert ".step-what::first-letter { text-transform: uppercase; }" in page
    timeline = page.split('<ol class="timeline"')[1].split("</ol>")[0]
    for code in ("calf_swelling_one_side", "partner:", "system", "notifier", "offer_taken", "referral_accepted"):
        assert code not in timeline
    assert not re.search(r"\d{4}-\d\d-\d\dT", timeline)
    # The API keeps every line, the delivery reports included, and each step's emails.
    api = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["timeline"]
    assert [e["actor"] for e in api].count("notifier") == 2
    acceptance = next(e for e in api if e["from_status"] != "accepted" and e["to_status"] == "accepted")
    assert [m["kind"] for m in acceptance["emails"]] == ["referral_accepted", "report_outcome"]


def delivery(email, outcome: str, *, detail: str = "") -> EmailDelivery:
    return EmailDelivery(
        notification_id=email.notification_id,
        outcome=outcome,
        at=datetime.now(UTC),
        referral_id=email.referral_id,
        detail=detail,
        kind=email.kind,
    )
