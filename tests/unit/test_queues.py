"""Queue routes: every message has one queue and a retry schedule RQ reads as written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared import queues
from shared.messages import EmailContext, EmailDelivery, PartnerChanged, PartnerSnapshot, SendEmail


@pytest.mark.parametrize("name", list(queues.ROUTES))
def test_one_retry_interval_per_retry(name: str) -> None:
    # RQ reads a list shorter than max from its end (1, 1, 1, … 5, 30): keep one per retry.
    retry = queues.ROUTES[name].retry
    assert len(retry.intervals) == retry.max
    assert retry.intervals == sorted(retry.intervals)


def test_each_message_has_its_queue() -> None:
    now = datetime.now(UTC)
    snapshot = PartnerSnapshot(id="p", slug="p", name="P", category="podiatry", email="p@x.org", status="active")
    assert queues.queue_for(PartnerChanged(partner=snapshot, version=1, changed_at=now)) == queues.REFERRALS
    assert queues.queue_for(EmailDelivery(notification_id="n", outcome="sent", at=now)) == queues.REFERRALS
    email = SendEmail(notification_id="n", kind="offer", to="p@x.org", context=EmailContext())
    assert queues.queue_for(email) == queues.NOTIFICATIONS
