"""What the notifier already sent, kept in Redis: a retried or duplicated job sends nothing twice.

``handoff:notifier:sent:{notification_id}`` holds the time the SMTP server accepted the email.
``handoff:notifier:sending:{notification_id}`` is held while one worker talks to the server, so
that two workers given the same notification at the same moment cannot both send it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from shared import queues

log = logging.getLogger(__name__)

SENT_KEY = "handoff:notifier:sent:{}"
CLAIM_KEY = "handoff:notifier:sending:{}"
# Far longer than any retry schedule or duplicate delivery of one job (see shared.queues).
SENT_TTL_SECONDS = 30 * 24 * 3600
# A claim outlives the job that holds it by this much (RQ interrupts a job at its timeout, and
# the job then releases its claim). It must stay under shared.worker.ABANDONED_GRACE_SECONDS: a
# crashed worker's claim has then lapsed by the time its job is retried.
CLAIM_MARGIN_SECONDS = 5
CLAIM_TTL_SECONDS = queues.NOTIFICATION_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS
# Once the SMTP server has accepted an email, its sent-marker is all that keeps a retry from
# sending it again, so writing it outlasts a Redis restart: tried again every second (besides the
# client's own retries) for up to a job's timeout, which interrupts the job first under RQ.
MARK_PATIENCE_SECONDS = queues.NOTIFICATION_TIMEOUT_SECONDS
MARK_PAUSE_SECONDS = 1.0


class Ledger:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def sent_at(self, notification_id: str) -> datetime | None:
        """When the email was accepted by the SMTP server, or None if it never was."""
        value = self._redis.get(SENT_KEY.format(notification_id))
        return None if value is None else datetime.fromisoformat(value.decode() if isinstance(value, bytes) else value)

    def mark_sent(self, notification_id: str, *, at: datetime | None = None) -> datetime:
        at = at or datetime.now(UTC)
        self._redis.set(SENT_KEY.format(notification_id), at.isoformat(), ex=SENT_TTL_SECONDS)
        return at

    def claim(self, notification_id: str, *, ttl_seconds: int = CLAIM_TTL_SECONDS) -> bool:
        """Take the right to send this notification now; False if another worker holds it."""
        return bool(self._redis.set(CLAIM_KEY.format(notification_id), "1", nx=True, ex=ttl_seconds))

    def claim_unsent(
        self, notification_id: str, *, ttl_seconds: int = CLAIM_TTL_SECONDS
    ) -> tuple[bool, datetime | None]:
        """Claim the notification and read its sent-marker in one round trip: (claimed, sent_at).
        A notification already sent must not be sent again even when the claim was taken."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(CLAIM_KEY.format(notification_id), "1", nx=True, ex=ttl_seconds)
            pipe.get(SENT_KEY.format(notification_id))
            claimed, sent = pipe.execute()
        return bool(claimed), None if sent is None else datetime.fromisoformat(sent.decode())

    def mark_sent_and_release(
        self, notification_id: str, *, at: datetime | None = None, also: Callable[[Pipeline], object] | None = None
    ) -> datetime:
        """Record the server's acceptance and drop the claim, in one round trip, waiting for a
        Redis that is away for up to MARK_PATIENCE_SECONDS (then its error propagates).
        ``also`` adds writes that must land with the marker or not at all (the delivery report)
        to the same transaction; it may be called again when the transaction is tried again."""
        at = at or datetime.now(UTC)
        give_up_at = time.monotonic() + MARK_PATIENCE_SECONDS
        while True:
            try:
                with self._redis.pipeline(transaction=True) as pipe:
                    pipe.multi()  # explicitly: RQ enqueues into a pipeline only when it is
                    pipe.set(SENT_KEY.format(notification_id), at.isoformat(), ex=SENT_TTL_SECONDS)
                    pipe.delete(CLAIM_KEY.format(notification_id))
                    if also is not None:
                        also(pipe)
                    pipe.execute()
                return at
            except (RedisError, OSError) as exc:
                if time.monotonic() >= give_up_at:
                    raise
                log.warning("notification %s was sent; waiting for Redis to record it (%s)", notification_id, exc)
                time.sleep(MARK_PAUSE_SECONDS)

    def release(self, notification_id: str) -> None:
        # A plain delete is safe: the claim outlives any job that holds it (CLAIM_TTL_SECONDS).
        self._redis.delete(CLAIM_KEY.format(notification_id))
