"""A database held by someone else past the app's wait for it (shared.database.LOCK_WAIT_MS) on
SQLite and PostgreSQL: the request answers a clear 503 with Retry-After, writes nothing, and the
same request sent again under its Idempotency-Key goes through, once."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from services.referrals.storage import idempotency_keys, outbox, referrals
from shared.web import RETRY_AFTER_SECONDS
from tests.support.databases import locked
from tests.support.referrals import CLIENT, CONSENT, count, login

BODY = {"client": CLIENT, "consent": CONSENT, "reasons": ["calf_swelling_one_side"], "partner_ids": ["gp1"]}


@pytest.mark.slow  # a request waits out the lock: LOCK_WAIT_MS
def test_a_locked_database_answers_503_and_the_same_request_later_goes_through(
    client: TestClient,
    settings,
) -> None:
    headers = {**login(client), "Idempotency-Key": "sent-during-the-lock"}
    with locked(settings.db_url("referrals")):
        refused = client.post("/api/v1/referrals", json=BODY, headers=headers)
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    answer = refused.json()
    assert answer["status_code"] == 503 and answer["extra"] == {"unavailable": "database"}
    assert "try again" in answer["detail"] and "Traceback" not in refused.text and "SELECT" not in refused.text
    assert [count(settings, table) for table in (referrals, outbox, idempotency_keys)] == [0, 0, 0]

    again = client.post("/api/v1/referrals", json=BODY, headers=headers)
    assert again.status_code == 201, again.text
    replay = client.post("/api/v1/referrals", json=BODY, headers=headers)
    assert replay.status_code == 201 and replay.json() == again.json()
    assert count(settings, referrals) == 1
