"""Urgent referrals on a real database (SQLite, and PostgreSQL when configured) and Redis: offered
to several partners at once with deadlines in clock hours, the first to accept taking it (two
accepting at the same moment: exactly one wins), the others withdrawn and emailed, the next
batch when a whole batch closes unanswered, and the therapist's "accepted by phone"."""

from __future__ import annotations

import asyncio
import html
from datetime import timedelta

import msgspec
import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from services.referrals import bootstrap
from services.referrals.domain import LinkRefused
from services.referrals.storage import audit_log, offers
from services.referrals.web.app import create_app
from shared import database
from shared.config import Settings
from tests.support.referrals import (
    CLIENT,
    START,
    URGENT,
    Clock,
    changed,
    csrf,
    deliver,
    flush,
    link_path,
    log_in,
    login,
    new_referral,
    partner,
    queued_emails,
    sent,
    sweep,
)

# Four physicians: gp1 and gp2 are seeded; gp3 and gp4 join them here.
PHYSICIANS = ["gp1", "gp2", "gp3", "gp4"]


@pytest.fixture
def clock() -> Clock:
    """The service's clock for this module's tests: at START until a test moves it."""
    return Clock(START)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The integration settings with two more physicians in the replica, and phone numbers for
    all but gp4."""
    phones = {"gp1": "+17275550101", "gp2": "+17275550102", "gp3": "+442079460000"}
    names = {"gp1": "Dr. Ana Gomez", "gp2": "Dr. Ben Ode", "gp3": "Dr. Cy Lund", "gp4": "Dr. Di Marr"}
    for pid, name in names.items():
        snapshot = msgspec.structs.replace(partner(pid, "primary_care", name=name), phone=phones.get(pid))
        deliver(settings, changed(snapshot, version=2))
    return settings


def offer_links(settings: Settings) -> dict[str, str]:
    """The path of the newest offer link emailed to each partner, by partner id."""
    return {e.to.split("@")[0]: link_path(e) for e in queued_emails(settings.redis_url) if e.kind == "offer"}


def detail(client: TestClient, headers: dict, referral: dict) -> dict:
    return client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()


def statuses(body: dict) -> list[tuple[str, str]]:
    return [(o["partner_id"], o["status"]) for o in body["offers"]]


def test_an_urgent_referral_goes_to_three_at_once_and_the_first_to_accept_takes_it(
    client: TestClient, settings: Settings
) -> None:
    headers = login(client)
    referral = new_referral(client, headers, reasons=URGENT, partner_ids=PHYSICIANS)
    assert referral["urgency"] == "urgent"
    assert statuses(referral) == [("gp1", "offered"), ("gp2", "offered"), ("gp3", "offered"), ("gp4", "queued")]
    # Four clock hours (the default), not a business day.
    assert all(o["expires_at"].startswith("2030-11-04T18:00:00") for o in referral["offers"][:3])
    flush(client)
    assert sent(settings) == [("offer", f"{pid}@partners.example") for pid in ("gp1", "gp2", "gp3")]
    for email in queued_emails(settings.redis_url):
        raw = msgspec.json.encode(email).decode()
        assert "Zelda" not in raw and "Marchbanks" not in raw and "33701" not in raw

    links = offer_links(settings)
    forms = {pid: csrf(client.get(path).text) for pid, path in links.items()}
    accepted = client.post(links["gp2"], data={"decision": "accept", "_csrf_token": forms["gp2"]})
    assert accepted.status_code == 200 and "you have accepted the referral" in accepted.text

    body = detail(client, headers, referral)
    assert body["status"] == "accepted"
    assert statuses(body) == [("gp1", "withdrawn"), ("gp2", "accepted"), ("gp3", "withdrawn"), ("gp4", "queued")]
    assert any("offer to Dr. Ana Gomez withdrawn: Dr. Ben Ode took it" in e["why"] for e in body["timeline"])
    flush(client)
    after = sent(settings)[3:]
    assert sorted(after) == sorted(
        [
            ("offer_taken", "gp1@partners.example"),
            ("offer_taken", "gp3@partners.example"),
            ("referral_accepted", "tess@clinic.example"),
            ("report_outcome", "gp2@partners.example"),
        ]
    )
    # The others' links say plainly it was taken, and change nothing.
    for pid in ("gp1", "gp3"):
        page = client.get(links[pid])
        assert page.status_code == 409 and "Already taken by another practice" in page.text
        assert "Traceback" not in page.text and "Zelda" not in page.text
        late = client.post(links[pid], data={"decision": "accept", "_csrf_token": forms[pid]})
        assert late.status_code == 409 and "Already taken by another practice" in late.text
    assert statuses(detail(client, headers, referral))[1] == ("gp2", "accepted")


def test_urgent_deadlines_are_clock_hours_and_a_closed_batch_brings_the_next(settings: Settings, clock: Clock) -> None:
    # Two at a time, an hour and a half each: decimals are allowed.
    urgent = msgspec.structs.replace(settings, urgent_parallel_offers=2, offer_hours_urgent=1.5)
    with TestClient(create_app(urgent, clock=clock)) as client:
        headers = login(client)
        referral = new_referral(client, headers, reasons=URGENT, partner_ids=PHYSICIANS)
        assert statuses(referral) == [("gp1", "offered"), ("gp2", "offered"), ("gp3", "queued"), ("gp4", "queued")]
        assert referral["offers"][0]["expires_at"].startswith("2030-11-04T15:30:00")
        flush(client)

        # gp1 declines: gp2 is still deciding, so nobody new is offered it yet.
        gp1 = offer_links(urgent)["gp1"]
        declined = client.post(
            gp1, data={"decision": "decline", "reason": "no_capacity", "_csrf_token": csrf(client.get(gp1).text)}
        )
        assert declined.status_code == 200
        assert statuses(detail(client, headers, referral))[:3] == [
            ("gp1", "declined"),
            ("gp2", "offered"),
            ("gp3", "queued"),
        ]

        # Reminded at half time (45 minutes), expired at the deadline: then the next two.
        clock.now = START + timedelta(minutes=44)
        assert sweep(client).reminded == 0
        clock.now = START + timedelta(minutes=45)
        assert sweep(client).reminded == 1
        clock.now = START + timedelta(minutes=89)
        assert sweep(client).expired == 0
        clock.now = START + timedelta(minutes=90)
        assert sweep(client).expired == 1
        body = detail(client, headers, referral)
        assert body["status"] == "requested"
        assert statuses(body) == [("gp1", "declined"), ("gp2", "expired"), ("gp3", "offered"), ("gp4", "offered")]
        assert all(o["expires_at"].startswith("2030-11-04T17:00:00") for o in body["offers"][2:])

        # Both of the second batch let it expire: the referral fails, as before.
        clock.now = START + timedelta(hours=3)
        assert sweep(client).expired == 2
        body = detail(client, headers, referral)
        assert body["status"] == "failed"
        assert [k for k, _ in sent(urgent)].count("no_partner_left") == 1
        assert ("offer_withdrawn", "gp2@partners.example") in sent(urgent)


def _answer_both_at_once(settings: Settings, first: str, second: str) -> list[object]:
    """Two partners accept at the same moment, each through a runtime of its own (two web
    processes, two engines): what each got, an outcome or the exception raised."""

    async def run() -> list[object]:
        runtimes = [bootstrap.build(settings), bootstrap.build(settings)]
        try:
            return await asyncio.gather(
                runtimes[0].referrals.answer(token=first, decision="accept"),
                runtimes[1].referrals.answer(token=second, decision="accept"),
                return_exceptions=True,
            )
        finally:
            for runtime in runtimes:
                await runtime.close()

    return asyncio.run(run())


def test_two_partners_accepting_at_the_same_moment_give_exactly_one_winner(
    client: TestClient, settings: Settings
) -> None:
    headers = login(client)
    for _ in range(4):
        referral = new_referral(client, headers, reasons=URGENT, partner_ids=["gp1", "gp2", "gp3"])
        flush(client)
        links = offer_links(settings)
        tokens = [links[pid].rsplit("/", 1)[1] for pid in ("gp1", "gp2")]
        before = len(sent(settings))

        results = _answer_both_at_once(settings, *tokens)

        assert sorted(map(str, results)) == ["accepted", "taken"], results
        loser = next(r for r in results if isinstance(r, LinkRefused))
        assert loser.why == "taken"
        body = detail(client, headers, referral)
        assert body["status"] == "accepted"
        assert sorted(s for _, s in statuses(body)) == ["accepted", "withdrawn", "withdrawn"]
        winner = next(pid for pid, s in statuses(body) if s == "accepted")
        flush(client)
        assert sorted(sent(settings)[before:]) == sorted(
            [("offer_taken", f"{pid}@partners.example") for pid in ("gp1", "gp2", "gp3") if pid != winner]
            + [("referral_accepted", "tess@clinic.example"), ("report_outcome", f"{winner}@partners.example")]
        )

    async def accepted_offers() -> int:
        engine = database.create_engine(settings.db_url("referrals"))
        try:
            async with engine.connect() as connection:
                rows = (await connection.execute(select(offers.c.status))).scalars().all()
        finally:
            await engine.dispose()
        return rows.count("accepted")

    assert asyncio.run(accepted_offers()) == 4


def test_the_therapist_phones_the_partners_and_records_an_acceptance_by_phone(
    client: TestClient, settings: Settings
) -> None:
    headers = login(client)
    referral = new_referral(client, headers, reasons=URGENT, partner_ids=PHYSICIANS)
    flush(client)
    links = offer_links(settings)
    log_in(client)
    # The home page's list names every partner it is with, one after another.
    assert "Dr. Ana Gomez (offered); Dr. Ben Ode (offered); Dr. Cy Lund (offered)" in client.get("/").text
    page = client.get(f"/referrals/{referral['id']}")
    assert page.status_code == 200 and "Urgent: phone these practices now" in page.text
    # Each partner with a tel: link (the stored number), read as people read it.
    assert 'href="tel:+17275550101">Call (727) 555-0101</a>' in page.text
    assert 'href="tel:+442079460000">Call +44 20 7946 0000</a>' in page.text
    assert "next in line" in page.text and "No phone in the directory" in page.text  # gp4
    gp2 = next(o for o in referral["offers"] if o["partner_id"] == "gp2")
    action = f"/referrals/{referral['id']}/offers/{gp2['id']}/accepted-by-phone"
    assert f'href="{action}"' in page.text

    # The confirmation changes nothing; the POST needs its CSRF token.
    confirm = client.get(action)
    assert confirm.status_code == 200 and "Did Dr. Ben Ode accept referral" in confirm.text
    assert "Dr. Ana Gomez, Dr. Cy Lund" in confirm.text
    assert detail(client, headers, referral)["status"] == "requested"
    assert client.post(action, follow_redirects=False).status_code == 403
    recorded = client.post(action, data={"_csrf_token": csrf(confirm.text)}, follow_redirects=False)
    assert recorded.status_code == 303 and recorded.headers["location"] == f"/referrals/{referral['id']}"

    body = detail(client, headers, referral)
    assert body["status"] == "accepted"
    assert statuses(body) == [("gp1", "withdrawn"), ("gp2", "accepted"), ("gp3", "withdrawn"), ("gp4", "queued")]
    assert any(
        e["actor"] == "tess@clinic.example" and "accepted by Dr. Ben Ode by phone, recorded by tess@" in e["why"]
        for e in body["timeline"]
    )
    flush(client)
    assert sorted(sent(settings)[3:]) == [
        ("offer_taken", "gp1@partners.example"),
        ("offer_taken", "gp3@partners.example"),
        ("report_outcome", "gp2@partners.example"),
    ]
    # gp2 accepted (by phone): its own link now shows the client's contact details, as it does
    # for any partner who accepted (issue 12 item 2); its report link works.
    accepted_page = client.get(links["gp2"])
    assert accepted_page.status_code == 200 and CLIENT["name"] in accepted_page.text
    assert all(CLIENT["name"] not in client.get(links[p]).text for p in ("gp1", "gp3"))
    report_path = link_path([e for e in queued_emails(settings.redis_url) if e.kind == "report_outcome"][-1])
    assert client.get(report_path).status_code == 200

    async def audited() -> list[tuple[str, str, dict]]:
        engine = database.create_engine(settings.db_url("referrals"))
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(select(audit_log).where(audit_log.c.action == "accepted_by_phone"))
                return [(r.actor, r.referral_id, r.detail) for r in rows]
        finally:
            await engine.dispose()

    assert asyncio.run(audited()) == [
        ("tess@clinic.example", referral["id"], {"offer_id": gp2["id"], "partner_id": "gp2"})
    ]

    # Taken now: neither the page nor the API records a second one.
    assert "phone these practices now" not in client.get(f"/referrals/{referral['id']}").text
    gp1 = next(o for o in referral["offers"] if o["partner_id"] == "gp1")
    again = f"/referrals/{referral['id']}/offers/{gp1['id']}/accepted-by-phone"
    assert "can no longer be recorded" in client.get(again).text
    refused = client.post(again, data={"_csrf_token": csrf(confirm.text)})
    assert refused.status_code == 409 and "cannot be accepted by phone" in refused.text
    assert client.post(f"/api/v1{again}", headers=headers).status_code == 409
    assert client.get(f"/referrals/{referral['id']}/offers/no-such-offer/accepted-by-phone").status_code == 404


def test_accepted_by_phone_through_the_api(client: TestClient, settings: Settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers, reasons=URGENT, partner_ids=["gp1", "gp2"])
    gp1 = referral["offers"][0]
    path = f"/api/v1/referrals/{referral['id']}/offers/{gp1['id']}/accepted-by-phone"
    assert client.post(path).status_code == 401
    answered = client.post(path, headers=headers)
    assert answered.status_code == 200, answered.text
    assert statuses(answered.json()) == [("gp1", "accepted"), ("gp2", "withdrawn")]
    assert client.post(path, headers=headers).status_code == 409
    unknown = client.post(f"/api/v1/referrals/{referral['id']}/offers/nope/accepted-by-phone", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["extra"]["key"] == "offer_id"


def test_a_failed_referrals_handout_never_sends_the_client_back_to_a_refusal(
    client: TestClient, settings: Settings, clock: Clock
) -> None:
    headers = login(client)
    referral = new_referral(client, headers, reasons=URGENT, partner_ids=["gp1", "gp2"])
    flush(client)
    gp1 = offer_links(settings)["gp1"]
    form = {"decision": "decline", "reason": "outside_scope", "note": "send to urgent care / ER"}
    declined = client.post(gp1, data={**form, "_csrf_token": csrf(client.get(gp1).text)})
    assert declined.status_code == 200
    clock.now = START + timedelta(hours=4)
    assert sweep(client).expired == 1  # gp2 let it expire
    assert detail(client, headers, referral)["status"] == "failed"

    log_in(client)
    text = html.unescape(client.get(f"/referrals/{referral['id']}/handout").text)
    # Neither the decliner nor the one who let it expire; other physicians instead.
    assert "Dr. Ana Gomez" not in text and "Dr. Ben Ode" not in text
    assert "Dr. Cy Lund" in text and "Dr. Di Marr" in text
    assert "Please be seen today" in text
    assert "Call your own doctor's office today" in text
    assert "go to an urgent care center today" in text and "If it gets worse, call 911." in text
    assert "Please contact one of them" not in text


def test_a_failed_soon_referrals_handout_leaves_out_decliners_and_says_nothing_of_today(
    client: TestClient, settings: Settings, clock: Clock
) -> None:
    headers = login(client)
    referral = new_referral(client, headers, partner_ids=["gp1", "gp3"])
    flush(client)
    gp1 = offer_links(settings)["gp1"]
    client.post(gp1, data={"decision": "decline", "reason": "no_capacity", "_csrf_token": csrf(client.get(gp1).text)})
    clock.now = START + timedelta(days=7)
    sweep(client)  # gp3 lets it expire
    assert detail(client, headers, referral)["status"] == "failed"
    log_in(client)
    text = client.get(f"/referrals/{referral['id']}/handout").text
    assert "Dr. Ana Gomez" not in text and "Dr. Cy Lund" not in text and "Dr. Ben Ode" in text
    assert "Please contact one of them within the next week." in text and "Please be seen today" not in text


def test_each_partner_of_an_urgent_referral_says_for_themselves_that_they_have_seen_it(
    client: TestClient, settings: Settings
) -> None:
    headers = login(client)
    referral = new_referral(client, headers, reasons=URGENT, partner_ids=["gp1", "gp2"])
    flush(client)
    links = offer_links(settings)
    pages = {pid: client.get(path) for pid, path in links.items()}
    assert "offered to a few\n  practices at once" in pages["gp2"].text

    seen = client.post(f"{links['gp1']}/received", data={"_csrf_token": csrf(pages["gp1"].text)})
    assert seen.status_code == 200 and "You have told the clinic" in seen.text
    assert detail(client, headers, referral)["status"] == "received"
    # gp2 has said nothing yet, and its page does not say otherwise.
    assert "You have told the clinic" not in client.get(links["gp2"]).text
    again = client.post(f"{links['gp2']}/received", data={"_csrf_token": csrf(pages["gp2"].text)})
    assert "You have told the clinic" in again.text
    body = detail(client, headers, referral)
    assert body["status"] == "received"
    assert [e["why"].split(" has seen")[0] for e in body["timeline"] if " has seen the referral" in e["why"]] == [
        "Dr. Ana Gomez",
        "Dr. Ben Ode",
    ]
