"""What the directory's listing tells referrals, applied through the worker's job as RQ would:
a partner not taking new clients is suggested last, saying until when; one whose licence expired
is neither suggested nor accepted by the server's scope check, which names the licence."""

from __future__ import annotations

from datetime import date, timedelta

import msgspec
from litestar.testing import TestClient

from services.referrals.storage import referrals
from shared import manage_links
from tests.support.referrals import (
    CLIENT,
    CONSENT,
    PARTNERS,
    changed,
    count,
    deliver,
    flush,
    login,
    new_referral,
    queued_emails,
)


def _gp1(**fields: object):
    snapshot = next(p for p in PARTNERS if p.id == "gp1")
    return msgspec.structs.replace(snapshot, **fields)


def test_a_partner_not_taking_new_clients_is_suggested_last_with_the_reason(client: TestClient, settings) -> None:
    until = date.today() + timedelta(days=20)
    deliver(settings, changed(_gp1(accepting_new_clients="no", accepting_until=until), version=2))

    answer = client.post(
        "/api/v1/referrals/suggestions", headers=login(client), json={"reasons": ["calf_swelling_one_side"]}
    )

    assert answer.status_code in (200, 201), answer.text
    suggestions = answer.json() if isinstance(answer.json(), list) else answer.json()["suggestions"]
    assert [s["partner_id"] for s in suggestions] == ["gp2", "gp1"]
    assert f"ranked last: not accepting new clients until {until:%B} {until.day}, {until:%Y}" in suggestions[-1]["why"]


def test_a_partner_whose_licence_expired_is_offered_nothing_and_the_422_names_the_licence(
    client: TestClient, settings
) -> None:
    expired = date.today() - timedelta(days=2)
    deliver(settings, changed(_gp1(licence_expires_on=expired), version=2))
    headers = login(client)

    chosen = client.post(
        "/api/v1/referrals",
        headers=headers,
        json={"client": CLIENT, "consent": CONSENT, "reasons": ["calf_swelling_one_side"], "partner_ids": ["gp1"]},
    )

    assert chosen.status_code == 422
    body = chosen.json()
    assert body["extra"]["key"] == "partner_ids[0]" and body["extra"]["partner_id"] == "gp1"
    assert f"licence expired on {expired:%B} {expired.day}, {expired:%Y}" in body["detail"]
    assert count(settings, referrals) == 0
    suggested = client.post(
        "/api/v1/referrals",
        headers=headers,
        json={"client": CLIENT, "consent": CONSENT, "reasons": ["calf_swelling_one_side"]},
    )
    assert suggested.status_code == 201, suggested.text
    assert [o["partner_id"] for o in suggested.json()["offers"]] == ["gp2"]


def test_a_licence_is_good_through_its_expiry_day(client: TestClient, settings) -> None:
    deliver(settings, changed(_gp1(licence_expires_on=date.today() + timedelta(days=1)), version=2))

    chosen = client.post(
        "/api/v1/referrals",
        headers=login(client),
        json={"client": CLIENT, "consent": CONSENT, "reasons": ["calf_swelling_one_side"], "partner_ids": ["gp1"]},
    )

    assert chosen.status_code == 201, chosen.text


def test_every_offer_email_carries_the_partners_manage_link(client: TestClient, settings) -> None:
    new_referral(client, login(client))
    flush(client)

    offer = next(e for e in queued_emails(settings.redis_url) if e.kind == "offer")

    assert offer.context.manage_url.startswith(f"{settings.public_url('directory')}/manage/")
    token = offer.context.manage_url.rsplit("/", 1)[1]
    assert manage_links.read(token, key=settings.keyring()).partner_id == "gp1"
