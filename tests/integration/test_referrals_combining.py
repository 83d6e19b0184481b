"""Clinical rules, second part (issue 17): reasons that need different kinds of partner are split
into referrals sent together, advice-only reasons create no referral, each reason's client advice
reaches the handout, and a waitlist never takes an urgent referral. On a real database (SQLite,
and PostgreSQL when configured) through the service and over HTTP."""

from __future__ import annotations

import msgspec
from litestar.testing import TestClient

from services.referrals.storage import referrals
from tests.support.referrals import CLIENT, CONSENT, changed, count, deliver, login, new_referral, partner


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
    chosen = new_referral(client, headers, partner_ids=None)
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
