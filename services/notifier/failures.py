"""The notifications that RQ gave up on, for ``handoff notifier failed`` and ``requeue``.

Each failed job is shown by what an operator needs to act on it and nothing more: the
notification id, the kind of email, the recipient's domain (never the whole address) and the
last line of the exception. Requeueing gives a job its full retry schedule again; the sent ledger
still makes sure that an email the server already accepted is only reported, never sent again.
"""

from __future__ import annotations

from datetime import datetime

from msgspec import Struct
from redis import Redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job

from shared import codec, queues
from shared.messages import SendEmail


class FailedNotification(Struct, kw_only=True, frozen=True):
    job_id: str
    notification_id: str
    kind: str
    recipient_domain: str
    reason: str
    failed_at: datetime | None


class NotFailed(LookupError):
    """No failed notification job has this id."""


def list_failed(redis: Redis) -> list[FailedNotification]:
    """Every job in the notifications queue's failed registry, oldest failure first."""
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)
    found = []
    for job_id in queue.failed_job_registry.get_job_ids():
        try:
            job = queue.fetch_job(job_id)
        except NoSuchJobError:
            job = None
        if job is None:
            continue  # Expired between the two reads.
        found.append(_describe(job))
    return sorted(found, key=lambda failed: (failed.failed_at is None, failed.failed_at or datetime.min, failed.job_id))


def requeue(redis: Redis, job_ids: list[str]) -> list[str]:
    """Put the failed jobs ``job_ids`` back on the queue with their retries restored; returns
    their ids. Raises :class:`NotFailed` (before requeueing any) for an id that is not failed."""
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)
    registry = queue.failed_job_registry
    failed = set(registry.get_job_ids())
    missing = [job_id for job_id in job_ids if job_id not in failed]
    if missing:
        raise NotFailed(f"not a failed notification job: {', '.join(missing)}")
    retry = queues.ROUTES[queues.NOTIFICATIONS].retry
    requeued = []
    for job_id in job_ids:
        job = queue.fetch_job(job_id)
        if job is None:
            continue
        # A job that failed has no retries left; an operator requeues after fixing the cause,
        # so it deserves the whole schedule again rather than a single attempt.
        if retry is not None:
            job.retries_left = retry.max
            job.retry_intervals = retry.intervals
        try:
            registry.requeue(job)
        except InvalidJobOperation:
            continue  # Another operator requeued it a moment ago.
        requeued.append(job_id)
    return requeued


def requeue_all(redis: Redis) -> list[str]:
    """Requeue every failed notification job."""
    registry = queues.rq_queue(queues.NOTIFICATIONS, redis).failed_job_registry
    return requeue(redis, registry.get_job_ids())


def format_line(failed: FailedNotification) -> str:
    """One line of ``handoff notifier failed``."""
    when = failed.failed_at.strftime("%Y-%m-%d %H:%M:%SZ") if failed.failed_at else "-"
    to = f"@{failed.recipient_domain}" if failed.recipient_domain else "-"
    return f"{failed.job_id}\t{failed.notification_id or '-'}\t{failed.kind or '-'}\t{to}\t{when}\t{failed.reason}"


HEADER = "JOB\tNOTIFICATION\tKIND\tTO\tFAILED AT (UTC)\tREASON"


def _describe(job: Job) -> FailedNotification:
    notification_id = kind = domain = ""
    try:
        message = codec.decode(job.args[0]) if job.args else None
    except (codec.UndecodableMessage, TypeError):
        message = None
    if isinstance(message, SendEmail):
        notification_id, kind = message.notification_id, message.kind
        domain = message.to.rpartition("@")[2].strip(" >").lower()
    result = job.latest_result()
    exc_string = (result.exc_string if result is not None else "") or job.exc_info or ""
    return FailedNotification(
        job_id=job.id,
        notification_id=notification_id,
        kind=kind,
        recipient_domain=domain,
        reason=_last_line(exc_string) or "no reason recorded",
        failed_at=job.ended_at,
    )


def _last_line(exc_string: str) -> str:
    lines = [line.strip() for line in exc_string.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
