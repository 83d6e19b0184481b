"""The referrals service over HTTP, on a real database (SQLite, and PostgreSQL when configured)
and a real Redis: issuing, scope, consent, idempotency, partner answers, replica and reports."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient
from redis import Redis
from sqlalchemy import delete

from services.referrals import bootstrap, jobs
from services.referrals.storage import MIGRATIONS, audit_log, outbox, referrals
from services.referrals.web.app import create_app
from shared import database, queues
from shared.config import load_settings
from shared.messages import EmailDelivery
from tests.support.referrals import (
    CLIENT,
    CONSENT,
    SOON,
    changed,
    count,
    deliver,
    flush,
    link_path,
    login,
    new_referral,
    partner,
    queued_emails,
)


def test_staff_token_is_required_and_checked(client: TestClient) -> None:
    assert client.get("/api/v1/referrals").status_code == 401
    assert client.get("/api/v1/referrals", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    bad = client.post("/api/v1/auth/token", json={"email": "tess@clinic.example", "password": "wrong password"})
    assert bad.status_code == 401 and "invalid email or password" in bad.json()["detail"]
    assert client.get("/api/v1/referrals", headers=login(client)).status_code == 200


def test_referral_is_offered_by_email_without_client_data(client: TestClient, settings) -> None:
    referral = new_referral(client, login(client), note="Left calf warm and swollen since Tuesday.")
    assert referral["status"] == "requested" and referral["urgency"] == "soon"
    assert [(o["partner_id"], o["status"]) for o in referral["offers"]] == [("gp1", "offered"), ("gp2", "queued")]
    assert referral["offers"][0]["expires_at"]
    flush(client)
    emails = queued_emails(settings.redis_url)
    assert [(e.kind, e.to) for e in emails] == [("offer", "gp1@partners.example")]
    raw = msgspec.json.encode(emails[0]).decode()
    for secret in ("Zelda", "Marchbanks", "calf", "swollen", "33701"):
        assert secret not in raw
    assert "/respond/" in emails[0].context.action_url


def test_emergency_reason_stops_and_only_audits(client: TestClient, settings) -> None:
    response = client.post(
        "/api/v1/referrals",
        headers=login(client),
        json={"client": CLIENT, "consent": CONSENT, "reasons": ["chest_pain_breathless"]},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["extra"]["urgency"] == "emergency" and "911" in body["extra"]["instruction"]
    assert count(settings, referrals) == 0
    assert count(settings, audit_log) == 1


def test_scope_violation_names_partner_and_reason(client: TestClient, settings) -> None:
    response = client.post(
        "/api/v1/referrals",
        headers=login(client),
        json={"client": CLIENT, "consent": CONSENT, "reasons": ["calf_swelling_one_side"], "partner_ids": ["pt1"]},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["extra"]["key"] == "partner_ids[0]" and "Bay Physio" in body["detail"]
    assert "calf_swelling_one_side" in body["detail"]
    assert count(settings, referrals) == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"client": CLIENT, "reasons": ["suspected_fracture"]}, 400, "consent"),
        (
            {"client": CLIENT, "consent": {**CONSENT, "given": False}, "reasons": ["suspected_fracture"]},
            422,
            "consent.given",
        ),
        (
            {"client": CLIENT, "consent": CONSENT, "reasons": ["suspected_fracture"], "partner_ids": ["nobody"]},
            422,
            "partner_ids[0]",
        ),
        ({"client": CLIENT, "consent": CONSENT, "reasons": ["no_such_reason"]}, 422, "reasons[0]"),
        ({"client": {"name": 42}, "consent": CONSENT, "reasons": ["suspected_fracture"]}, 400, "client.name"),
        # A client is an id or a new client's details: neither is a 422 naming the name.
        ({"client": {}, "consent": CONSENT, "reasons": ["suspected_fracture"]}, 422, "client.name"),
        ({"client": CLIENT, "consent": {"given": True}, "reasons": ["suspected_fracture"]}, 400, "consent.method"),
        (
            {"client": CLIENT, "consent": CONSENT, "reasons": ["strength_posture_goals"], "partner_ids": ["trn"]},
            422,
            "consent.scope",
        ),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(client, settings, body, status, field) -> None:
    response = client.post("/api/v1/referrals", json=body, headers=login(client))
    assert response.status_code == status, response.text
    extra = response.json()["extra"]
    keys = [item["key"] for item in extra] if isinstance(extra, list) else [extra["key"]]
    assert field in keys
    assert count(settings, referrals) == 0 and count(settings, outbox) == 0


def test_malformed_json_is_a_400(client: TestClient, settings) -> None:
    headers = {**login(client), "Content-Type": "application/json"}
    response = client.post("/api/v1/referrals", content=b'{"client": ', headers=headers)
    assert response.status_code == 400 and "Traceback" not in response.text
    assert count(settings, referrals) == 0


def test_idempotency_key_replays_once_and_refuses_another_body(client: TestClient, settings) -> None:
    headers = {**login(client), "Idempotency-Key": "visit-2026-11-23-1"}
    first = new_referral(client, headers)
    again = new_referral(client, headers)
    assert again == first and count(settings, referrals) == 1
    other = client.post(
        "/api/v1/referrals",
        headers=headers,
        json={"client": CLIENT, "consent": CONSENT, "reasons": ["suspected_fracture"]},
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.text


def test_suggestions_are_used_when_no_partner_is_chosen(client: TestClient) -> None:
    headers = login(client)
    ranked = client.post("/api/v1/referrals/suggestions", json={"reasons": ["rehab_exercise_needed"]}, headers=headers)
    assert ranked.status_code == 200 and [s["partner_id"] for s in ranked.json()] == ["pt1"]
    assert ranked.json()[0]["why"]
    referral = new_referral(client, headers, reasons=["rehab_exercise_needed"], partner_ids=None)
    assert [o["partner_id"] for o in referral["offers"]] == ["pt1"]


def test_partner_accepts_through_the_link_once(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    path = link_path(queued_emails(settings.redis_url)[0])

    page = client.get(path)
    assert page.status_code == 200 and "Dr. Ana Gomez" in page.text and "Zelda" not in page.text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post(path, data={"decision": "accept"}).status_code == 403  # no CSRF token
    done = client.post(path, data={"decision": "accept", "_csrf_token": token})
    assert done.status_code == 200 and "accepted" in done.text

    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert detail["status"] == "accepted"
    assert [e["to_status"] for e in detail["timeline"]][-1] == "accepted"
    assert client.post(path, data={"decision": "decline", "reason": "other", "_csrf_token": token}).status_code == 410
    # Issue 12: once accepted, the same link shows this partner the client, and no answer form.
    after = client.get(path)
    assert after.status_code == 200 and "you accepted it" in after.text and 'name="decision"' not in after.text
    assert client.get(path[:-3] + "abc").status_code == 403
    flush(client)
    accepted = [e for e in queued_emails(settings.redis_url) if e.to == "tess@clinic.example"]
    assert [e.kind for e in accepted] == ["referral_accepted"]
    assert accepted[0].context.action_url == f"http://localhost:8002/referrals/{referral['id']}"


def test_decline_offers_the_next_partner_then_fails(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    for expected_next in ("gp2@partners.example", None):
        flush(client)
        offer_email = [e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1]
        path = link_path(offer_email)
        token = re.search(r'name="_csrf_token" value="([^"]+)"', client.get(path).text).group(1)
        missing_reason = client.post(path, data={"decision": "decline", "_csrf_token": token})
        assert missing_reason.status_code == 422
        answered = client.post(path, data={"decision": "decline", "reason": "no_capacity", "_csrf_token": token})
        assert answered.status_code == 200
        flush(client)
        offers = [e.to for e in queued_emails(settings.redis_url) if e.kind == "offer"]
        if expected_next:
            assert offers[-1] == expected_next
    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert detail["status"] == "failed"
    assert [o["status"] for o in detail["offers"]] == ["declined", "declined"]
    kinds = [e.kind for e in queued_emails(settings.redis_url)]
    assert kinds.count("referral_declined") == 2 and "no_partner_left" in kinds
    therapist = {e.context.action_url for e in queued_emails(settings.redis_url) if e.to == "tess@clinic.example"}
    assert therapist == {f"http://localhost:8002/referrals/{referral['id']}"}


def test_a_queued_partner_whose_licence_ran_out_is_passed_by(client: TestClient, settings) -> None:
    """gp2 waited in the queue while its licence ran out (the directory says so): when gp1
    declines, nobody licensed is left, so the referral fails rather than reach gp2."""
    headers = login(client)
    referral = new_referral(client, headers, reasons=SOON, partner_ids=["gp1", "gp2"])
    lapsed = msgspec.structs.replace(
        partner("gp2", "primary_care", name="Dr. Ben Ode"), licence_expires_on=date(2020, 1, 31)
    )
    deliver(settings, changed(lapsed, version=2))
    flush(client)
    path = link_path([e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1])
    token = re.search(r'name="_csrf_token" value="([^"]+)"', client.get(path).text).group(1)
    answered = client.post(path, data={"decision": "decline", "reason": "no_capacity", "_csrf_token": token})
    assert answered.status_code == 200
    flush(client)
    assert [e.to for e in queued_emails(settings.redis_url) if e.kind == "offer"] == ["gp1@partners.example"]
    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert detail["status"] == "failed"
    assert [o["status"] for o in detail["offers"]] == ["declined", "queued"]


def test_cancel_withdraws_the_offer(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    response = client.post(
        f"/api/v1/referrals/{referral['id']}/cancel", json={"reason": "client moved"}, headers=headers
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert client.post(f"/api/v1/referrals/{referral['id']}/cancel", headers=headers).status_code == 409
    flush(client)
    assert ("referral_cancelled", "gp1@partners.example") in [(e.kind, e.to) for e in queued_emails(settings.redis_url)]


def test_therapists_see_only_their_referrals(client: TestClient) -> None:
    referral = new_referral(client, login(client))
    admin = login(client, "ada@clinic.example")
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=admin).status_code == 200
    listed = client.get("/api/v1/referrals", params={"status": "requested", "partner": "gp1"}, headers=admin)
    assert [r["id"] for r in listed.json()] == [referral["id"]]
    assert client.get("/api/v1/referrals", params={"status": "bogus"}, headers=admin).status_code == 422


def test_replica_applies_versions_in_order_and_pausing_moves_the_offer(client, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    deliver(settings, changed(partner("gp1", "primary_care", name="Dr. Ana Gomez (old)"), version=1))
    deliver(settings, changed(partner("gp1", "primary_care", name="Dr. Ana Gomez", status="paused"), version=2))
    deliver(settings, changed(partner("gp1", "primary_care", name="stale"), version=1))
    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert [(o["partner_name"], o["status"]) for o in detail["offers"]] == [
        ("Dr. Ana Gomez", "withdrawn"),
        ("Dr. Ben Ode", "offered"),
    ]


def test_delivery_report_lands_on_the_timeline_once(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    email = queued_emails(settings.redis_url)[0]
    report = EmailDelivery(
        notification_id=email.notification_id, outcome="sent", at=datetime.now(UTC), referral_id=referral["id"]
    )
    deliver(settings, report)
    deliver(settings, report)
    timeline = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["timeline"]
    sent = [e for e in timeline if e["actor"] == "notifier"]
    assert len(sent) == 1 and "gp1@partners.example" in sent[0]["why"] and sent[0]["why"].endswith("sent")


def test_what_an_email_was_is_known_without_its_outbox_row(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    email = queued_emails(settings.redis_url)[0]

    async def forget_outbox() -> None:
        engine = database.create_engine(settings.db_url("referrals"))
        async with engine.begin() as connection:
            await connection.execute(delete(outbox))
        await engine.dispose()

    # The outbox is transport: the referral's record must not depend on how long it keeps rows.
    asyncio.run(forget_outbox())
    report = EmailDelivery(
        notification_id=email.notification_id,
        outcome="failed",
        at=datetime.now(UTC),
        referral_id=referral["id"],
        detail="550 mailbox unavailable",
        kind="offer",
    )
    deliver(settings, report)

    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert detail["attention"][0] == (
        "the 'offer' email to gp1@partners.example could not be delivered: 550 mailbox unavailable"
    )
    assert [e["why"] for e in detail["timeline"] if e["actor"] == "notifier"] == [
        "email 'offer' to gp1@partners.example failed: 550 mailbox unavailable"
    ]


def test_undecodable_job_fails_without_retry(settings) -> None:
    from rq import Queue, SimpleWorker
    from rq.registry import FailedJobRegistry

    connection = Redis.from_url(settings.redis_url)
    queue = queues.rq_queue(queues.REFERRALS, connection)
    queue.enqueue_call(
        queues.ROUTES[queues.REFERRALS].handler,
        args=('{"type": "nonsense"}',),
        retry=queues.ROUTES[queues.REFERRALS].retry,
        job_id="bad-1",
    )
    jobs.runtime.install(bootstrap.build(settings))
    SimpleWorker([queue], connection=connection, serializer=queue.serializer).work(burst=True)
    failed = FailedJobRegistry(queue=queue)
    assert failed.get_job_ids() == ["bad-1"]
    assert "cannot decode message" in queue.fetch_job("bad-1").latest_result().exc_string
    assert isinstance(Queue, type)


def test_ready_reports_redis_down_and_recovers_without_restart(tmp_path: Path, db_url: str) -> None:
    from services.dev.ports import free_port
    from services.dev.redis_server import RedisServer

    port = free_port()
    settings = load_settings(
        environ={},
        data_dir=str(tmp_path),
        referrals_db_url=db_url,
        redis_url=f"redis://127.0.0.1:{port}/0",
        secret_key="k" * 40,
    )
    database.upgrade(migrations=MIGRATIONS, url=settings.db_url("referrals"))
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        down = client.get("/ready")
        assert down.status_code == 503 and "redis" in down.json()["extra"]
        with RedisServer(tmp_path / "redis", port=port):
            assert client.get("/ready").status_code == 200


def test_operational_endpoints(client: TestClient) -> None:
    client.get("/health")  # Counted requests exist even when this test runs alone.
    monitoring = {"Authorization": "Bearer referrals-test-metrics-token"}
    assert client.get("/metrics").status_code == 403  # the test client's address is no IP
    assert client.get("/metrics", headers=monitoring).status_code == 200
    assert "handoff_requests_total" in client.get("/metrics", headers=monitoring).text
    schema = client.get("/schema/openapi.json").json()
    assert {"/api/v1/referrals", "/api/v1/auth/token", "/api/v1/scope/reasons"} <= set(schema["paths"])
    assert "/respond/{token}" not in schema["paths"]
