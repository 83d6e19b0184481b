"""Issue 12, item 1: clients are records of their own. Added, found by name, date of birth or phone,
read with their referrals and clearance, every view audited; a referral names its client by id or
brings a new one; and two clients of the same name never share a clearance."""

from __future__ import annotations

import re

from litestar.testing import TestClient
from sqlalchemy import select

from services.referrals.storage import audit_log, clients, referrals
from tests.support.referrals import (
    CLIENT,
    CONSENT,
    accept,
    count,
    csrf,
    log_in,
    login,
    new_referral,
    report,
)

SAM = {"name": "Sam Rivera", "date_of_birth": "1961-03-14", "phone": "(727) 555-0101", "language": "es"}


def audits(settings, action: str) -> list[dict]:
    import asyncio

    from shared import database

    async def run() -> list[dict]:
        engine = database.create_engine(settings.db_url("referrals"))
        async with engine.connect() as connection:
            rows = await connection.execute(select(audit_log.c.detail).where(audit_log.c.action == action))
            found = [dict(r.detail) for r in rows]
        await engine.dispose()
        return found

    return asyncio.run(run())


def test_a_client_is_added_found_and_read_by_staff_only(client: TestClient, settings) -> None:
    assert client.post("/api/v1/clients", json=SAM).status_code == 401
    headers = login(client)
    made = client.post(
        "/api/v1/clients", json={**SAM, "email": "sam@example.com", "email_consent": True}, headers=headers
    )
    assert made.status_code == 201, made.text
    sam = made.json()
    assert sam["id"] and sam["name"] == "Sam Rivera" and sam["phone"] == "+17275550101"
    assert (sam["language"], sam["preferred_contact"], sam["email_consent"]) == ("es", "phone", True)

    for q in ("sam", "RIVERA sam", "1961-03-14", "03/14/1961", "727-555-0101", "5550101"):
        found = client.get("/api/v1/clients", params={"q": q}, headers=headers)
        assert found.status_code == 200, (q, found.text)
        assert [c["id"] for c in found.json()] == [sam["id"]], q
    assert client.get("/api/v1/clients", params={"q": "Zelda"}, headers=headers).json() == []
    short = client.get("/api/v1/clients", params={"q": "s"}, headers=headers)
    assert short.status_code == 422 and short.json()["extra"]["key"] == "q"
    assert client.get("/api/v1/clients", params={"q": "sam"}).status_code == 401

    one = client.get(f"/api/v1/clients/{sam['id']}", headers=headers)
    assert one.status_code == 200 and one.json()["referrals"] == [] and one.json()["clearance"] is None
    missing = client.get("/api/v1/clients/no-such-client", headers=headers)
    assert missing.status_code == 404 and missing.json()["extra"]["key"] == "client.id"

    # Every view of a client's details is audited: searches name the clients they showed.
    assert {sam["id"]} == {i for d in audits(settings, "client_viewed") for i in d["client_ids"]}
    assert [sam["id"]] in [d["client_ids"] for d in audits(settings, "clients_searched")]


def test_bad_client_input_names_the_field_and_stores_nothing(client: TestClient, settings) -> None:
    headers = login(client)
    body = {"consent": CONSENT, "reasons": ["rehab_exercise_needed"], "partner_ids": ["pt1"]}
    cases = [
        ({**body, "client": {"id": "no-such-client"}}, 404, "client.id"),
        ({**body, "client": {"name": "Jo Park"}}, 422, "client"),
        ({**body, "client": {"name": "Jo Park", "phone": "12"}}, 422, "client.phone"),
        ({**body, "client": {"name": "Jo Park", "email": "jo@"}}, 422, "client.email"),
        ({**body, "client": {**SAM, "date_of_birth": "2999-01-01"}}, 422, "client.date_of_birth"),
        ({**body, "client": {**SAM, "language": "Klingon"}}, 422, "client.language"),
        (
            {**body, "client": {"name": "Jo Park", "phone": "727-555-0101", "preferred_contact": "email"}},
            422,
            "client.preferred_contact",
        ),
        ({**body, "client": {"id": "x", "name": "Jo Park"}}, 422, "client"),
        ({**body, "client": CLIENT, "next_step": "someone_else"}, 400, "next_step"),
    ]
    for sent, status, key in cases:
        answer = client.post("/api/v1/referrals", json=sent, headers=headers)
        assert answer.status_code == status, (sent, answer.text)
        extra = answer.json()["extra"]
        # A malformed body (400) lists its problems; a refused one (422, 404) names its field.
        assert (extra[0] if isinstance(extra, list) else extra)["key"] == key, (sent, answer.json())
    future = client.post("/api/v1/clients", json={**SAM, "date_of_birth": "2999-01-01"}, headers=headers)
    assert future.status_code == 422 and future.json()["extra"]["key"] == "date_of_birth"
    assert count(settings, referrals) == 0 and count(settings, clients) == 0

    # With the client to make the call, the partner needs no way to reach them.
    made = client.post(
        "/api/v1/referrals",
        json={**body, "client": {"name": "Jo Park"}, "next_step": "client_contacts_partner"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["next_step"] == "client_contacts_partner"


def test_a_referral_for_an_existing_client_and_the_first_editions_inline_client(client: TestClient, settings) -> None:
    headers = login(client)
    sam = client.post("/api/v1/clients", json=SAM, headers=headers).json()
    answer = client.post(
        "/api/v1/referrals",
        json={"client": {"id": sam["id"]}, "consent": CONSENT, "reasons": ["rehab_exercise_needed"]},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    referral = answer.json()
    assert referral["client"]["id"] == sam["id"] and referral["client"]["name"] == "Sam Rivera"
    assert referral["clearance"] is None and referral["next_step"] == "partner_contacts_client"

    inline = new_referral(client, headers)  # the first edition's inline client: a new record
    assert inline["client"]["id"] not in (None, "", sam["id"])
    assert inline["client"]["name"] == CLIENT["name"] and inline["client"]["postal_code"] == "33701"
    assert count(settings, clients) == 2

    # Idempotency holds: the same key and body give the same referral and no second client.
    keyed = {**headers, "Idempotency-Key": "client-once"}
    body = {"client": {**CLIENT, "name": "Kim Lee"}, "consent": CONSENT, "reasons": ["rehab_exercise_needed"]}
    first = client.post("/api/v1/referrals", json=body, headers=keyed)
    again = client.post("/api/v1/referrals", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert count(settings, clients) == 3

    detail = client.get(f"/api/v1/clients/{sam['id']}", headers=headers).json()
    assert [r["id"] for r in detail["referrals"]] == [referral["id"]]


def test_two_clients_with_the_same_name_never_share_a_clearance(client: TestClient, settings) -> None:
    headers = login(client)
    twin = {"name": CLIENT["name"], "phone": "727-555-0199"}
    first_client = client.post("/api/v1/clients", json={**twin, "date_of_birth": "1950-01-01"}, headers=headers).json()
    second_client = client.post("/api/v1/clients", json={**twin, "date_of_birth": "1990-06-30"}, headers=headers).json()
    assert first_client["id"] != second_client["id"]

    _, path = accept(client, settings, headers, client={"id": first_client["id"]})
    done = report(
        client,
        path,
        outcome="completed",
        clearance="precautions",
        areas_to_avoid="mastectomy side",
        pressure_limit="light only, on anticoagulants",
    )
    assert done.status_code == 200, done.text
    first_later = new_referral(client, headers, client={"id": first_client["id"]}, partner_ids=["gp2"])
    assert first_later["clearance"]["areas_to_avoid"] == "mastectomy side"

    # The second person: same name, same phone even, never the first's precautions.
    second = new_referral(client, headers, client={"id": second_client["id"]}, partner_ids=["gp2"])
    inline = new_referral(client, headers, client=twin, partner_ids=["gp2"])
    for other in (second, inline):
        assert other["clearance"] is None
        assert client.get(f"/api/v1/referrals/{other['id']}", headers=headers).json()["clearance"] is None
    assert client.get(f"/api/v1/clients/{second_client['id']}", headers=headers).json()["clearance"] is None
    assert client.get(f"/api/v1/clients/{first_client['id']}", headers=headers).json()["clearance"]["clearance"] == (
        "precautions"
    )
    log_in(client)
    for other in (second, inline):
        assert "mastectomy" not in client.get(f"/referrals/{other['id']}").text
    assert "mastectomy" not in client.get(f"/clients/{second_client['id']}").text
    assert "mastectomy" in client.get(f"/clients/{first_client['id']}").text


def test_client_pages_and_the_new_referral_form_for_an_existing_client(client: TestClient, settings) -> None:
    headers = login(client)
    sam = client.post("/api/v1/clients", json=SAM, headers=headers).json()
    referral = new_referral(
        client, headers, client={"id": sam["id"]}, reasons=["rehab_exercise_needed"], partner_ids=["pt1"]
    )
    log_in(client)
    page = client.get(f"/referrals/{referral['id']}")
    assert f'href="/clients/{sam["id"]}"' in page.text
    found = client.get("/clients", params={"q": "rivera"})
    assert found.status_code == 200 and f'href="/clients/{sam["id"]}"' in found.text
    assert client.get("/clients", params={"q": "x"}).status_code == 422
    mine = client.get(f"/clients/{sam['id']}")
    assert mine.status_code == 200
    assert "(727) 555-0101" in mine.text and "Spanish" in mine.text and referral["reference"] in mine.text
    assert client.get("/clients/nobody").status_code == 404

    # The form finds the client, then refers them: no second record.
    search = client.get("/referrals/new", params={"client_q": "1961-03-14"})
    assert f"/referrals/new?client_id={sam['id']}" in search.text
    start = client.get("/referrals/new", params={"client_id": sam["id"]})
    assert start.status_code == 200 and 'name="client_id"' in start.text and "Sam Rivera" in start.text
    step = {
        "client_id": sam["id"],
        "reasons": "rehab_exercise_needed",
        "note": "Knee stiff",
        "_csrf_token": csrf(start.text),
    }
    review = client.post("/referrals/new", data=step)
    assert review.status_code == 200, review.text
    assert "New referral for Sam Rivera" in review.text and "After a partner accepts" in review.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', review.text).group(1)
    sent = client.post(
        "/referrals/new/send",
        data={
            **step,
            "idempotency_key": key,
            "consent_given": "yes",
            "consent_method": "verbal",
            "consent_scope": "clinical",
            "partner_ids": "pt1",
            "next_step": "client_contacts_partner",
            "_csrf_token": csrf(review.text),
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    made = client.get(f"/api/v1/referrals/{sent.headers['location'].rsplit('/', 1)[1]}", headers=headers).json()
    assert made["client"]["id"] == sam["id"] and made["next_step"] == "client_contacts_partner"
    assert count(settings, clients) == 1


def test_a_new_client_in_the_form_keeps_what_was_typed_when_refused(client: TestClient, settings) -> None:
    log_in(client)
    token = csrf(client.get("/referrals/new").text)
    step = {
        "client_name": "Ava Stone",
        "client_phone": "12",
        "client_email": "ava@example.com",
        "client_language": "es",
        "reasons": "rehab_exercise_needed",
        "note": "Knee stiff",
        "_csrf_token": token,
    }
    refused = client.post("/referrals/new", data=step)
    assert refused.status_code == 422 and "Phone:" in refused.text
    for kept in ('value="Ava Stone"', 'value="12"', 'value="ava@example.com"', '<option value="es" selected'):
        assert kept in refused.text, kept
    named = client.post("/referrals/new", data={**step, "client_phone": "727-555-0123", "note": "Stone's knee"})
    assert named.status_code == 422 and "Observations:" in named.text and "Stone" in named.text
    # Still a new client, with every field as typed: not shown as a chosen record.
    assert 'name="client_id"' not in named.text and 'value="727-555-0123"' in named.text
    assert "Stone&#39;s knee" in named.text or "Stone's knee" in named.text
    assert count(settings, clients) == 0


def test_the_form_refuses_a_client_nobody_can_reach_unless_they_make_the_call(client: TestClient, settings) -> None:
    log_in(client)
    send = {
        "client_name": "Ava Stone",
        "reasons": "rehab_exercise_needed",
        "consent_given": "yes",
        "consent_method": "verbal",
        "consent_scope": "clinical",
        "partner_ids": "pt1",
        "idempotency_key": "unreachable-1",
        "next_step": "partner_contacts_client",
        "_csrf_token": csrf(client.get("/referrals/new").text),
    }
    refused = client.post("/referrals/new/send", data=send, follow_redirects=False)
    assert refused.status_code == 422 and "Client:" in refused.text and "no phone or email" in refused.text
    # Step 2 again, where the next step is chosen, with the answers kept.
    assert "After a partner accepts" in refused.text and 'value="Ava Stone"' in refused.text
    assert count(settings, referrals) == 0 and count(settings, clients) == 0
    sent = client.post(
        "/referrals/new/send", data={**send, "next_step": "client_contacts_partner"}, follow_redirects=False
    )
    assert sent.status_code == 303, sent.text
    assert count(settings, referrals) == 1 and count(settings, clients) == 1


def test_a_create_answers_the_referral_as_a_read_gives_it(client: TestClient, settings) -> None:
    """The create's answer is built from what issuing wrote (services.referrals.queries.issued),
    not read back: for a new client, and for a known client with a clearance on record, it is the
    referral exactly as GET gives it."""
    headers = login(client)
    fresh = new_referral(client, headers)
    assert fresh == client.get(f"/api/v1/referrals/{fresh['id']}", headers=headers).json()
    _, path = accept(client, settings, headers, client={"id": fresh["client"]["id"]})
    done = report(client, path, outcome="completed", clearance="precautions", areas_to_avoid="left knee")
    assert done.status_code == 200, done.text
    again = new_referral(client, headers, client={"id": fresh["client"]["id"]}, partner_ids=["gp2", "gp1"])
    assert again["clearance"]["areas_to_avoid"] == "left knee"
    assert [o["status"] for o in again["offers"]] == ["offered", "queued"]
    assert again == client.get(f"/api/v1/referrals/{again['id']}", headers=headers).json()
