"""Clinical rules, second part (issue 17): reasons that need different kinds of partner are split
into referrals sent together, advice-only reasons create no referral, each reason's client advice
reaches the handout, and a waitlist never takes an urgent referral. On a real database (SQLite,
and PostgreSQL when configured) through the service and over HTTP."""

from __future__ import annotations

import asyncio
import html
from itertools import combinations

import msgspec
import pytest
from litestar.testing import TestClient

from services.referrals import bootstrap, rules
from services.referrals.intake import ReferralDraft
from services.referrals.service import MixedReasons
from services.referrals.storage import audit_log, referrals
from shared import categories
from shared.auth import Staff
from shared.config import Settings
from tests.support.referrals import (
    CLIENT,
    CONSENT,
    PARTNERS,
    changed,
    count,
    csrf,
    deliver,
    log_in,
    login,
    new_referral,
    partner,
)

RULES = rules.load()
SENDABLE = [code for code, r in RULES.reasons.items() if r.urgency != "emergency"]
TESS = Staff(id="tess-1", email="tess@clinic.example", role="therapist")


@pytest.mark.slow
def test_every_pair_of_non_emergency_reasons_can_be_sent(settings: Settings) -> None:
    """Issue 17: every pair is sent, split where its reasons need different kinds of partner, each
    referral with its own offers in its own group's scope, linked to the others; as one referral
    the API refuses a mixed pair naming the same groups."""
    pairs = list(combinations(SENDABLE, 2))
    assert len(pairs) > 600

    async def run() -> dict[str, int]:
        runtime = bootstrap.build(settings)
        service = runtime.referrals
        tally = {"one": 0, "split": 0}
        category_of = {p.id: p.category for p in PARTNERS}
        try:
            for slug in categories.load():
                category_of[f"any-{slug}"] = slug
                await service.apply_partner_changed(changed(partner(f"any-{slug}", slug)))
            for pair in pairs:
                draft = _draft(list(pair))
                groups = RULES.groups(list(pair))
                made = await service.create_together(staff=TESS, draft=draft, partner_ids=[None] * len(groups))
                assert [r.reasons for r in made] == [g.codes for g in groups], pair
                assert [r.urgency for r in made] == [g.urgency for g in groups], pair
                for record, group in zip(made, groups, strict=True):
                    assert record.offers, pair
                    for offer in record.offers:
                        assert category_of[offer.partner_id] in group.categories, (pair, offer.partner_id)
                    assert [o.reference for o in record.sent_with] == [r.reference for r in made if r is not record]
                    assert "immediate_danger_abuse" not in record.reasons, "advice never reaches a partner"
                    # The answer to a create is built from what was written (queries.issued): it
                    # must be the referral exactly as a later read gives it.
                    assert record == await service.get(staff=TESS, referral_id=record.id), pair
                if len(groups) > 1:
                    tally["split"] += 1
                    with pytest.raises(MixedReasons) as refused:
                        await service.create(staff=TESS, draft=msgspec.structs.replace(draft, partner_ids=None))
                    assert refused.value.extra["groups"] == [
                        {"reasons": g.codes, "urgency": g.urgency, "categories": g.categories} for g in groups
                    ]
                else:
                    tally["one"] += 1
        finally:
            await runtime.close()
        return tally

    tally = asyncio.run(run())
    assert tally["split"] > 100 and tally["one"] > 100, tally


def _draft(reasons: list[str]) -> ReferralDraft:
    return msgspec.convert(
        {"client": CLIENT, "consent": {**CONSENT, "scope": ["clinical", "non_clinical"]}, "reasons": reasons},
        ReferralDraft,
    )


def test_a_waitlisted_partner_is_refused_for_an_urgent_referral(client: TestClient, settings) -> None:
    waiting = msgspec.structs.replace(
        partner("gp2", "primary_care", name="Dr. Ben Ode"), accepting_new_clients="waitlist"
    )
    deliver(settings, changed(waiting, version=2))
    headers = login(client)
    response = client.post(
        "/api/v1/referrals",
        headers=headers,
        json={
            "client": CLIENT,
            "consent": CONSENT,
            "reasons": ["calf_swelling_one_side"],
            "partner_ids": ["gp1", "gp2"],
        },
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["extra"]["key"] == "partner_ids[1]" and "waitlist" in body["detail"]
    assert count(settings, referrals) == 0
    # Not offered either when the service chooses, nor by the suggestions.
    chosen = new_referral(client, headers, reasons=["calf_swelling_one_side"], partner_ids=None)
    assert [o["partner_id"] for o in chosen["offers"]] == ["gp1"]
    assert client.post(f"/api/v1/referrals/{chosen['id']}/hold", headers=headers).status_code == 200
    forwarded = client.post(f"/api/v1/referrals/{chosen['id']}/forward", headers=headers, json={"partner_id": "gp2"})
    assert forwarded.status_code == 422 and "waitlist" in forwarded.json()["detail"]
    suggested = client.post(
        "/api/v1/referrals/suggestions", headers=headers, json={"reasons": ["calf_swelling_one_side"]}
    ).json()
    assert [s["partner_id"] for s in suggested] == ["gp1"]
    # A soon reason may still wait: the waitlist is offered, and says so.
    soon = client.post(
        "/api/v1/referrals/suggestions", headers=headers, json={"reasons": ["radiating_numbness"]}
    ).json()
    assert "gp2" in [s["partner_id"] for s in soon]


def test_the_api_refuses_a_mixed_set_naming_its_groups(client: TestClient, settings) -> None:
    response = client.post(
        "/api/v1/referrals",
        headers=login(client),
        json={"client": CLIENT, "consent": CONSENT, "reasons": ["rehab_exercise_needed", "calf_swelling_one_side"]},
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["extra"]["key"] == "reasons" and "one referral per group" in body["detail"]
    assert body["extra"]["groups"] == [
        {"reasons": ["calf_swelling_one_side"], "urgency": "urgent", "categories": ["primary_care"]},
        {"reasons": ["rehab_exercise_needed"], "urgency": "routine", "categories": ["physical_therapy"]},
    ]
    assert count(settings, referrals) == 0
    # Split the same way, each group goes through.
    for group in body["extra"]["groups"]:
        made = new_referral(client, login(client), reasons=group["reasons"], partner_ids=None)
        assert made["urgency"] == group["urgency"]


def test_the_form_proposes_one_referral_per_group_and_sends_them_together(client: TestClient, settings) -> None:
    log_in(client)
    step1 = {
        "client_name": "Zed",
        "client_phone": "727-555-0142",
        "client_postal_code": "33701",
        "reasons": ["rehab_exercise_needed", "calf_swelling_one_side"],
        "note": "Left calf warm and swollen; asks about exercises for the knee.",
        "_csrf_token": csrf(client.get("/referrals/new").text),
    }
    review = client.post("/referrals/new", data=step1)
    assert review.status_code == 200
    text = review.text
    assert "2 referrals will be sent together" in text and "Send the 2 referrals together" in text
    assert "disabled" not in text.split("Send the 2 referrals")[0].rsplit("<button", 1)[1]
    assert "Ask an admin" not in text
    # Most urgent first: the calf's partners (physicians) under partner_ids, the physio under partner_ids_1.
    first_group = text.index("Referral 1 of 2")
    assert first_group < text.index("One-sided calf", first_group) < text.index("Referral 2 of 2")
    assert 'name="partner_ids" value="gp1"' in text and 'name="partner_ids_1" value="pt1"' in text
    assert 'name="partner_ids_1" value="gp1"' not in text

    send = {
        **{k: v for k, v in step1.items() if k != "_csrf_token"},
        "consent_given": "yes",
        "consent_method": "verbal",
        "consent_scope": "clinical",
        "idempotency_key": "together-1",
        "partner_ids": ["gp2", "gp1"],
        "order_gp1": "1",
        "order_gp2": "2",
        "partner_ids_1": "pt1",
        "_csrf_token": csrf(text),
    }
    missing = client.post("/referrals/new/send", data={**send, "partner_ids_1": []})
    assert missing.status_code == 422 and "choose at least one partner for" in missing.text
    assert count(settings, referrals) == 0

    sent = client.post("/referrals/new/send", data=send, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    again = client.post("/referrals/new/send", data=send, follow_redirects=False)
    assert again.headers["location"] == sent.headers["location"], "one form, one batch"
    assert count(settings, referrals) == 2

    headers = login(client)
    first = client.get(f"/api/v1{sent.headers['location']}", headers=headers).json()
    assert (first["urgency"], first["reasons"]) == ("urgent", ["calf_swelling_one_side"])
    assert [o["partner_id"] for o in first["offers"]] == ["gp1", "gp2"]
    [other] = first["sent_with"]
    second = client.get(f"/api/v1/referrals/{other['id']}", headers=headers).json()
    assert (second["urgency"], second["reasons"]) == ("routine", ["rehab_exercise_needed"])
    assert [o["partner_id"] for o in second["offers"]] == ["pt1"]
    assert [s["reference"] for s in second["sent_with"]] == [first["reference"]]
    assert second["consent"] == first["consent"] and second["note"] == first["note"]
    assert f"sent together with {second['reference']} (routine)" in first["timeline"][0]["why"]

    page = client.get(sent.headers["location"])
    assert "Sent together with" in page.text and f'href="/referrals/{second["id"]}"' in page.text


def test_advice_alone_shows_the_hotline_records_it_and_creates_no_referral(client: TestClient, settings) -> None:
    log_in(client)
    data = {
        "client_name": "Zed",
        "client_phone": "727-555-0142",
        "reasons": "immediate_danger_abuse",
        "_csrf_token": csrf(client.get("/referrals/new").text),
    }
    page = client.post("/referrals/new", data=data)
    assert page.status_code == 200
    for expected in ("No referral is needed", "1-800-799-7233", "88788", 'href="tel:911"', "reporting"):
        assert expected in page.text, expected
    assert settings.clinic_reporting_duties in html.unescape(page.text)
    assert "Print for the client" not in page.text and "handout" not in page.text.lower()
    assert count(settings, referrals) == 0 and count(settings, audit_log) == 1

    api = client.post(
        "/api/v1/referrals",
        headers=login(client),
        json={"client": CLIENT, "consent": CONSENT, "reasons": ["immediate_danger_abuse"]},
    )
    assert api.status_code == 422
    extra = api.json()["extra"]
    assert (extra["urgency"], extra["reasons"], extra["key"]) == ("advice", ["immediate_danger_abuse"], "reasons")
    assert "88788" in extra["instruction"] and extra["reporting_duties"] == settings.clinic_reporting_duties
    assert count(settings, referrals) == 0 and count(settings, audit_log) == 2


def test_advice_beside_a_referral_is_shown_recorded_and_never_sent(client: TestClient, settings) -> None:
    log_in(client)
    data = {
        "client_name": "Zed",
        "client_phone": "727-555-0142",
        "reasons": ["immediate_danger_abuse", "calf_swelling_one_side"],
        "_csrf_token": csrf(client.get("/referrals/new").text),
    }
    review = client.post("/referrals/new", data=data)
    assert review.status_code == 200 and "share this advice" in review.text and "1-800-799-7233" in review.text
    assert "Send the referral" in review.text and count(settings, audit_log) == 1
    sent = client.post(
        "/referrals/new/send",
        data={
            **data,
            "consent_given": "yes",
            "consent_method": "verbal",
            "consent_scope": "clinical",
            "partner_ids": "gp1",
            "_csrf_token": csrf(review.text),
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    made = client.get(f"/api/v1{sent.headers['location']}", headers=login(client)).json()
    assert made["reasons"] == ["calf_swelling_one_side"], "the partner never hears of the disclosure"
    assert count(settings, audit_log) == 1, "recorded once, when it was shown"


def test_the_handout_and_the_referral_page_carry_each_reasons_client_advice(client: TestClient, settings) -> None:
    referral = new_referral(client, login(client), reasons=["calf_swelling_one_side", "suspected_fracture"])
    calf, fracture = (RULES.reasons[c].client_advice for c in ("calf_swelling_one_side", "suspected_fracture"))
    assert calf is not None and fracture is not None
    log_in(client)
    path = f"/referrals/{referral['id']}/handout"
    english = html.unescape(client.get(path).text)
    assert "What to do today, and if it gets worse" in english
    assert calf.en in english and fracture.en in english and calf.es not in english
    spanish = client.get(path, params={"language": "es"})
    text = html.unescape(spanish.text)
    assert "Qué hacer hoy, y si empeora" in text and calf.es in text and fracture.es in text
    # An urgent handout (a calf swelling among the reasons) says to be seen today, in Spanish.
    assert 'lang="es"' in text and "Por favor, hágase ver hoy mismo" in text and "llame al 911" in text
    assert 'name="language" value="es"' in text, "printing keeps the language"
    printed = client.post(f"{path}/print", data={"_csrf_token": csrf(spanish.text), "language": "es"})
    assert calf.es in html.unescape(printed.text)
    assert calf.en in html.unescape(client.get(path, params={"language": "fr"}).text), "English when we have none"
    # The therapist sees what the client is told.
    page = html.unescape(client.get(f"/referrals/{referral['id']}").text)
    assert "What the client is told to do" in page and calf.en in page and fracture.en in page
