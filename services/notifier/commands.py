"""The notifier's admin tasks behind ``handoff notifier failed|requeue``: each opens a Redis
client for a command, reads or requeues the failed email jobs (:mod:`services.notifier.failures`)
and closes it."""

from __future__ import annotations

from services.notifier import failures
from shared import redis_client
from shared.config import Settings


def failed(settings: Settings) -> list[failures.FailedNotification]:
    """Every failed email job, oldest failure first."""
    with redis_client.connect(settings.redis_url, use="cli") as redis:
        return failures.list_failed(redis)


def requeue(settings: Settings, job_ids: list[str] | None) -> list[str]:
    """Send the failed jobs ``job_ids`` (every failed job for None) again; returns their ids.
    Raises :class:`~services.notifier.failures.NotFailed` for an id that is not a failed job."""
    with redis_client.connect(settings.redis_url, use="cli") as redis:
        return failures.requeue_all(redis) if job_ids is None else failures.requeue(redis, job_ids)
