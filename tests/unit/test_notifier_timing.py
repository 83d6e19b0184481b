"""The numbers that decide how soon a crashed worker's email is retried agree with each other."""

from __future__ import annotations

from services.notifier import ledger, throttle
from shared import queues
from shared import worker as rq_worker
from shared.config import Settings


def test_a_crashed_senders_claim_lapses_before_its_job_is_retried() -> None:
    # Otherwise the recovered job would find the claim and have to wait once more.
    assert ledger.CLAIM_MARGIN_SECONDS < rq_worker.ABANDONED_GRACE_SECONDS


def test_a_live_job_never_loses_its_claim() -> None:
    assert ledger.CLAIM_TTL_SECONDS > queues.ROUTES[queues.NOTIFICATIONS].timeout


def test_a_job_has_time_for_a_rate_limit_wait_and_a_slow_server() -> None:
    smtp_timeout = Settings().smtp_timeout_seconds
    assert queues.NOTIFICATION_TIMEOUT_SECONDS >= throttle.MAX_WAIT_SECONDS + 2 * smtp_timeout


def test_an_abandoned_job_expires_soon_after_its_timeout() -> None:
    timeout = queues.ROUTES[queues.NOTIFICATIONS].timeout
    expires = rq_worker.abandoned_after(timeout)
    assert timeout < expires <= timeout + 15
    # Worst case from a crash to the retry being taken: expiry, one maintenance interval, one
    # blocking dequeue (RQ blocks worker_ttl - 15 s; an idle worker checks maintenance between
    # them), then the first retry's delay.
    dequeue_block = rq_worker.WORKER_TTL_SECONDS - 15
    first_retry = queues.ROUTES[queues.NOTIFICATIONS].retry.intervals[0]
    worst = expires + rq_worker.MAINTENANCE_INTERVAL_SECONDS + dequeue_block + first_retry
    assert worst <= 90


def test_every_retry_waits_at_least_as_long_as_the_one_before() -> None:
    retry = queues.ROUTES[queues.NOTIFICATIONS].retry
    # One interval per retry: RQ reads a shorter list from its end.
    assert len(retry.intervals) == retry.max
    assert retry.intervals == sorted(retry.intervals)
