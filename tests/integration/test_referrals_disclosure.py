"""Issue 12, item 2: minimum necessary disclosure. Before accepting, a partner's page shows the
urgency, reasons, note, ZIP and language only; once that partner accepts, the same link shows the
client's name and contact and who makes the next call. A partner who declined or was withdrawn
never sees them; every view is audited; no email carries them."""

from __future__ import annotations

import asyncio

import msgspec
from litestar.testing import TestClient
from sqlalchemy import select

from services.referrals.storage import audit_log
from shared import database
from tests.support.referrals import (
    CONSENT,
    csrf,
    flush,
    link_path,
    login,
    queued_emails,
)

CLIENT = {
    "name": "Odalys Fernwood-Quist",
    "phone": "727-555-0188",
    "email": "odalys@client.example",
    "preferred_contact": "text",
    "language": "es",
    "postal_code": "33701",
}
SECRETS = ("Odalys", "Fernwood", "Quist", "555-0188", "5550188", "odalys@client.example")


def issue(client: TestClient, headers: dict, **extra: object) -> dict:
    body = {"client": CLIENT, "consent": CONSENT, "reasons": ["calf_swelling_one_side"], "partner_ids": ["gp1", "gp2"]}
    answer = client.post("/api/v1/referrals", json={**body, **extra}, headers=headers)
    assert answer.status_code == 201, answer.text
    flush(client)
    return answer.json()


def offer_link(settings, to: str) -> str:
    return link_path([e for e in queued_emails(settings.redis_url) if e.kind == "offer" and e.to == to][-1])


def shows_client(text: str) -> bool:
    return any(secret in text for secret in SECRETS)


def disclosures(settings) -> list[dict]:
    async def run() -> list[dict]:
        engine = database.create_engine(settings.db_url("referrals"))
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(audit_log.c.actor, audit_log.c.detail).where(audit_log.c.action == "partner_viewed_referral")
            )
            found = [{"actor": r.actor, **dict(r.detail)} for r in rows]
        await engine.dispose()
        return found

    return asyncio.run(run())


def test_only_the_accepting_partner_sees_the_client_and_only_after_accepting(client: TestClient, settings) -> None:
    headers = login(client)
    issue(client, headers)
    first = offer_link(settings, "gp1@partners.example")
    before = client.get(first)
    assert before.status_code == 200
    assert not shows_client(before.text)
    assert "33701" in before.text and "Spanish" in before.text and "once you accept" in before.text

    # gp1 declines: their link never shows the client, then or later.
    declined = client.post(
        first, data={"decision": "decline", "reason": "no_capacity", "_csrf_token": csrf(before.text)}
    )
    assert declined.status_code == 200 and not shows_client(declined.text)
    assert client.get(first).status_code == 410 and not shows_client(client.get(first).text)
    flush(client)

    second = offer_link(settings, "gp2@partners.example")
    page = client.get(second)
    assert not shows_client(page.text)
    accepted = client.post(second, data={"decision": "accept", "_csrf_token": csrf(page.text)})
    assert accepted.status_code == 200
    for shown in (
        "Thank you: you have accepted the referral",
        "Odalys Fernwood-Quist",
        "(727) 555-0188",
        'href="tel:+17275550188"',
        "odalys@client.example",
        "Text message",
        "Spanish",
        "Please call the client to book.",
    ):
        assert shown in accepted.text, shown
    again = client.get(second)
    assert again.status_code == 200 and "Odalys Fernwood-Quist" in again.text and "you accepted it" in again.text
    assert client.get(first).status_code == 410 and not shows_client(client.get(first).text)

    # The accepting partner keeps the details at hand on the outcome-report page.
    flush(client)
    emails = queued_emails(settings.redis_url)
    report = client.get(report_link_for(emails, "gp2@partners.example"))
    assert report.status_code == 200 and "(727) 555-0188" in report.text

    # Every email so far, whoever it went to: nothing of the client.
    for email in emails:
        assert not shows_client(msgspec.json.encode(email).decode()), email.kind
    seen = disclosures(settings)
    assert [d for d in seen if d.get("disclosed") == "client_contact" and d["actor"] == "partner:gp2"]
    assert not [d for d in seen if d.get("disclosed") and d["actor"] == "partner:gp1"]


def test_the_client_calls_the_partner_when_the_therapist_chose_so(client: TestClient, settings) -> None:
    headers = login(client)
    issue(client, headers, next_step="client_contacts_partner", partner_ids=["gp1"])
    link = offer_link(settings, "gp1@partners.example")
    accepted = client.post(link, data={"decision": "accept", "_csrf_token": csrf(client.get(link).text)})
    assert "The client will call you to book." in accepted.text and "Please call the client" not in accepted.text
    flush(client)
    told = [e for e in queued_emails(settings.redis_url) if e.kind == "referral_accepted"]
    assert [e.context.next_step for e in told] == ["client_contacts_partner"]


def test_a_withdrawn_partner_never_sees_the_client(client: TestClient, settings) -> None:
    headers = login(client)
    referral = issue(client, headers, partner_ids=["gp1"])
    link = offer_link(settings, "gp1@partners.example")
    assert client.post(f"/api/v1/referrals/{referral['id']}/hold", headers=headers, json={}).status_code == 200
    withdrawn = client.get(link)
    assert withdrawn.status_code == 410 and not shows_client(withdrawn.text)
    refused = client.post(link, data={"decision": "accept", "_csrf_token": csrf(client.get("/login").text)})
    assert not shows_client(refused.text)


def report_link_for(emails: list, to: str) -> str:
    return link_path([e for e in emails if e.kind == "report_outcome" and e.to == to][-1])
