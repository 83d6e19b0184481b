"""Urgent means today, over real processes (``handoff dev``, its SMTP catcher, Redis): an urgent
referral with three suitable partners sends three offer emails at once; two partners accepting at
the same moment give exactly one winner (the other sees "already taken"); the two others get a
withdrawal email, none of them any client data. The therapist's page of the urgent referral
(partners to phone, "Accepted by phone") is checked in Chromium at 1280 and 390 px."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.support.browser import (
    ADMIN,
    PHONE,
    THERAPIST,
    Screenshots,
    assert_accessible,
    emailed_link,
    log_in,
    open_page,
    referrals_url,
)
from tests.support.polling import eventually
from tests.support.system import System, body_text, token

CLIENT = {"name": "Philippa Urgent-Sentinel", "postal_code": "33701", "phone": "727-555-0168"}
CONSENT = {"given": True, "method": "verbal", "scope": ["clinical"]}
PHYSICIANS = {
    "gp_a": ("Dr. Ana Gomez", "+17275550111"),
    "gp_b": ("Dr. Ben Ode", "+17275550112"),
    "gp_c": ("Dr. Cy Lund", "+17275550113"),
}


@pytest.fixture(scope="module")
def physicians(system: System, staff: None) -> dict[str, str]:
    """Three physicians (an urgent calf swelling may go to any of them), in both services: their
    ids by key."""
    admin = token(system, ADMIN)
    ids = {}
    for key, (name, phone) in PHYSICIANS.items():
        created = system.directory.post(
            "/api/v1/partners",
            headers=admin,
            json={
                "name": name,
                "category": "primary_care",
                "email": f"{key}@partners.example",
                "phone": phone,
                "accepting_new_clients": "yes",
                "address": {"line1": "1 Main St", "city": "St. Petersburg", "state": "FL", "postal_code": "33701"},
            },
        )
        assert created.status_code == 201, created.text
        ids[key] = created.json()["id"]
    therapist = token(system, THERAPIST)

    def replicated() -> bool:
        ranked = system.referrals.post(
            "/api/v1/referrals/suggestions", headers=therapist, json={"reasons": ["calf_swelling_one_side"]}
        )
        return ranked.status_code == 200 and set(ids.values()) <= {s["partner_id"] for s in ranked.json()}

    eventually(replicated, timeout=60, what="the physicians in the referrals replica")
    return ids


def urgent_referral(system: System, ids: dict[str, str]) -> dict:
    issued = system.referrals.post(
        "/api/v1/referrals",
        headers=token(system, THERAPIST),
        json={
            "client": CLIENT,
            "consent": CONSENT,
            "reasons": ["calf_swelling_one_side"],
            "note": "Left calf warm and swollen since Tuesday.",
            "partner_ids": list(ids.values()),
        },
    )
    assert issued.status_code == 201, issued.text
    return issued.json()


def mail_about(system: System, reference: str, kind: str) -> dict[str, object]:
    """The caught emails about ``reference`` whose subject starts with ``kind``, by recipient."""
    return {m["To"]: m for m in system.mail() if reference in str(m["Subject"]) and str(m["Subject"]).startswith(kind)}


def test_three_offers_at_once_one_winner_and_the_others_told(system: System, physicians: dict[str, str]) -> None:
    referral = urgent_referral(system, physicians)
    assert referral["urgency"] == "urgent"
    assert [o["status"] for o in referral["offers"]] == ["offered"] * 3

    partners = {f"{key}@partners.example" for key in PHYSICIANS}
    offers = eventually(
        lambda: (
            (found := mail_about(system, referral["reference"], "New urgent referral"))
            and set(found) == partners
            and found
        ),
        timeout=60,
        what="three offer emails, one to each physician",
    )
    links = {to: re.search(r"https?://\S+/respond/\S+", body_text(m)).group(0) for to, m in offers.items()}
    assert all("the first to accept takes it" in body_text(m) for m in offers.values())

    # gp_a and gp_b accept at the same moment, each in a browser of its own.
    racers = ["gp_a@partners.example", "gp_b@partners.example"]
    clients = {to: httpx.Client(timeout=30) for to in racers}
    forms = {
        to: re.search(r'name="_csrf_token" value="([^"]+)"', clients[to].get(links[to]).text).group(1) for to in racers
    }
    barrier = threading.Barrier(len(racers))
    answers: dict[str, httpx.Response] = {}

    def accept(to: str) -> None:
        barrier.wait()
        answers[to] = clients[to].post(links[to], data={"decision": "accept", "_csrf_token": forms[to]})

    threads = [threading.Thread(target=accept, args=(to,)) for to in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [200, 409], {to: (r.status_code, r.text[:300]) for to, r in answers.items()}
    winner = next(to for to, r in answers.items() if r.status_code == 200)
    loser = next(to for to, r in answers.items() if r.status_code == 409)
    assert "you have accepted the referral" in answers[winner].text
    assert "Already taken by another practice" in answers[loser].text and "thank you" in answers[loser].text

    detail = system.referrals.get(f"/api/v1/referrals/{referral['id']}", headers=token(system, THERAPIST)).json()
    assert detail["status"] == "accepted"
    assert sorted(o["status"] for o in detail["offers"]) == ["accepted", "withdrawn", "withdrawn"]

    # The two others are told, by email, that another practice took it.
    others = partners - {winner}
    taken = eventually(
        lambda: (
            (found := mail_about(system, referral["reference"], "Taken by another practice"))
            and set(found) == others
            and found
        ),
        timeout=60,
        what="the withdrawal emails to the two other physicians",
    )
    assert all("no longer offered to you" in body_text(m) for m in taken.values())
    eventually(
        lambda: mail_about(system, referral["reference"], "Thank you: report the outcome").get(winner),
        timeout=60,
        what="the winner's outcome-report link",
    )
    assert set(mail_about(system, referral["reference"], "Taken by another practice")) == others
    for message in system.mail():
        raw = message.as_string()
        assert "Philippa" not in raw and "Urgent-Sentinel" not in raw and "swollen" not in raw
    for to in racers:
        clients[to].close()


def test_the_therapist_phones_a_partner_and_records_it_in_the_browser(
    browser: Browser,
    contexts: list[BrowserContext],
    system: System,
    physicians: dict[str, str],
    shots: Screenshots,
) -> None:
    referral = urgent_referral(system, physicians)
    path = f"{referrals_url(system)}/referrals/{referral['id']}"
    desk = open_page(contexts, browser, viewport={"width": 1280, "height": 900})
    log_in(desk, system, THERAPIST)
    desk.goto(path)
    call = desk.get_by_role("region", name="Urgent: phone these practices now")
    expect(call).to_be_visible()
    expect(call.get_by_role("link", name="Call (727) 555-0112")).to_have_attribute("href", "tel:+17275550112")
    shots(desk, "urgent-referral-1280")
    assert_accessible(desk, "an urgent referral's page")

    phone = open_page(contexts, browser, **PHONE)
    log_in(phone, system, THERAPIST)
    phone.goto(path)
    expect(phone.get_by_role("region", name="Urgent: phone these practices now")).to_be_visible()
    # Against the phone's own width: Chromium widens the layout viewport to a page too wide.
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
    shots(phone, "urgent-referral-390")
    assert_accessible(phone, "an urgent referral's page on a phone")

    desk.get_by_role("link", name="Dr. Ben Ode: accepted by phone").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Did Dr. Ben Ode accept referral")
    shots(desk, "accepted-by-phone-confirm")
    assert_accessible(desk, "the accepted-by-phone confirmation")
    desk.get_by_role("button", name="Yes, Dr. Ben Ode accepted by phone").click()
    expect(desk.get_by_text("status accepted")).to_be_visible()
    expect(desk.get_by_role("region", name="Urgent: phone these practices now")).to_have_count(0)
    timeline = desk.get_by_role("list", name="Timeline")
    expect(timeline.get_by_text(re.compile("by phone, recorded by tess@"))).to_be_visible()
    shots(desk, "accepted-by-phone-done")
    desk.get_by_role("link", name="Client handout (printable)").click()
    expect(desk.get_by_role("heading", name="Please be seen today")).to_be_visible()
    expect(desk.get_by_text("If it gets worse, call 911.")).to_be_visible()
    shots(desk, "handout-urgent")

    # Dr. Ana Gomez's link now says, plainly and without an error dump, that it was taken.
    partner = open_page(contexts, browser, **PHONE)
    partner.goto(emailed_link(system, reference=referral["reference"], kind="/respond/", to="gp_a@partners.example"))
    expect(partner.get_by_role("heading", level=1)).to_have_text("Already taken by another practice: thank you")
    expect(partner.get_by_text("You don't need to do anything")).to_be_visible()
    shots(partner, "partner-taken-390")
    assert_accessible(partner, "the partner's page of a referral another practice took")

    # Dr. Ben Ode still gets the link to report the outcome; the two others are told it is taken.
    eventually(
        lambda: mail_about(system, referral["reference"], "Thank you: report the outcome").get("gp_b@partners.example"),
        timeout=60,
        what="the outcome-report link to Dr. Ben Ode",
    )
    eventually(
        lambda: (
            set(mail_about(system, referral["reference"], "Taken by another practice"))
            == {"gp_a@partners.example", "gp_c@partners.example"}
        ),
        timeout=60,
        what="the withdrawal emails to the others",
    )
