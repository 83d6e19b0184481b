"""What the notifier already sent, kept in Redis: a retried or duplicated job sends nothing twice.

``handoff:notifier:sent:{notification_id}`` holds the time the SMTP server accepted the email.
``handoff:notifier:sending:{notification_id}`` is held while one worker talks to the server, so
that two workers given the same notification at the same moment cannot both send it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from redis import Redis

from shared import queues

SENT_KEY = "handoff:notifier:sent:{}"
CLAIM_KEY = "handoff:notifier:sending:{}"
# Far longer than any retry schedule or duplicate delivery of one job (see shared.queues).
SENT_TTL_SECONDS = 30 * 24 * 3600
# Longer than RQ lets a job run, so a live sender never loses its claim; a crashed one's lapses.
CLAIM_TTL_SECONDS = queues.JOB_TIMEOUT_SECONDS + 30


class Ledger:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def sent_at(self, notification_id: str) -> datetime | None:
        """When the email was accepted by the SMTP server, or None if it never was."""
        value = self._redis.get(SENT_KEY.format(notification_id))
        return None if value is None else datetime.fromisoformat(value.decode())

    def mark_sent(self, notification_id: str, *, at: datetime | None = None) -> datetime:
        at = at or datetime.now(UTC)
        self._redis.set(SENT_KEY.format(notification_id), at.isoformat(), ex=SENT_TTL_SECONDS)
        return at

    def claim(self, notification_id: str) -> bool:
        """Take the right to send this notification now; False if another worker holds it."""
        return bool(self._redis.set(CLAIM_KEY.format(notification_id), "1", nx=True, ex=CLAIM_TTL_SECONDS))

    def release(self, notification_id: str) -> None:
        # A plain delete is safe: the claim outlives any job that holds it (CLAIM_TTL_SECONDS).
        self._redis.delete(CLAIM_KEY.format(notification_id))
