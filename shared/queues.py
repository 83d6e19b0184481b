"""Queue names, the handler each queue's worker runs, and how to put a message on a queue.

Jobs name their handler by dotted path and carry the encoded message as their only argument,
so an enqueuing service never imports the consuming service's code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.serializers import JSONSerializer

from shared import codec, telemetry
from shared.messages import EmailDelivery, Message, PartnerChanged, PartnersChanged, SendEmail

REFERRALS = "referrals"
NOTIFICATIONS = "notifications"
# The directory worker's own queue: no message goes there, only its scheduled listing sweep.
DIRECTORY = "directory"


# A finished job's hash is kept this long so that enqueueing the same id again is refused.
DEDUPLICATION_SECONDS = 24 * 3600
JOB_TIMEOUT_SECONDS = 60
# One email is a render and one SMTP transaction (each SMTP step times out after
# HANDOFF_SMTP_TIMEOUT_SECONDS, 10 s by default) plus at most a few seconds' wait for the rate
# limit. Kept short because a worker killed mid-job is only noticed once the job's timeout (plus
# shared.worker.ABANDONED_GRACE_SECONDS) has passed: this bounds how late a crash's email is.
NOTIFICATION_TIMEOUT_SECONDS = 30


class Route(NamedTuple):
    queue: str
    handler: str
    retry: Retry | None
    timeout: int = JOB_TIMEOUT_SECONDS


ROUTES = {
    # A referrals job fails when its database is briefly away: retry soon, then back off (one
    # interval per retry, see below; about 40 min in all).
    REFERRALS: Route(
        REFERRALS, "services.referrals.jobs.handle", Retry(max=10, interval=[1, 5, 15, 30, 60, 120, 300, 600, 600, 600])
    ),
    # Growing intervals: a provider's 4xx or an SMTP outage usually clears within minutes (the
    # early tries, up to about 2 min after the first, catch a short one soon after it ends), and
    # the last tries (about 1 h 54 min after the first) outlast most provider incidents. RQ reads the
    # list from its end when it is shorter than ``max`` (5, 5, 5, 30, … for a 6-long list), so it
    # holds one interval per retry.
    NOTIFICATIONS: Route(
        NOTIFICATIONS,
        "services.notifier.jobs.handle",
        Retry(max=10, interval=[5, 15, 30, 60, 120, 300, 900, 1800, 1800, 1800]),
        NOTIFICATION_TIMEOUT_SECONDS,
    ),
}


def queue_for(message: Message) -> str:
    match message:
        case PartnerChanged() | PartnersChanged() | EmailDelivery():
            return REFERRALS
        case SendEmail():
            return NOTIFICATIONS
    raise TypeError(f"no queue for {type(message).__name__}")


def rq_queue(name: str, connection: Redis) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue(connection: Redis, message: Message, *, job_id: str, pipeline: Pipeline | None = None) -> bool:
    """Put ``message`` on its queue as job ``job_id``. Returns False when a job with that id was
    already enqueued, which makes enqueueing idempotent for a relay that runs twice. The current
    trace context rides in the job's meta, for the worker to continue (shared.worker).

    With ``pipeline`` (a transaction, put in MULTI before any command of the caller's) the job
    is written by it, and nothing is sent now: the id is then not checked (RQ checks it in a
    script of its own, outside any transaction), so the caller's transaction is what must make
    the job once. Returns True then."""
    route = ROUTES[queue_for(message)]
    traceparent = telemetry.traceparent()
    queue = rq_queue(route.queue, connection)
    try:
        queue.enqueue_call(
            route.handler,
            args=(codec.encode(message),),
            job_id=job_id,
            unique=pipeline is None,
            retry=route.retry,
            timeout=route.timeout,
            result_ttl=DEDUPLICATION_SECONDS,
            failure_ttl=30 * 24 * 3600,
            description=f"{type(message).__name__} {job_id}",
            pipeline=pipeline,
            meta={"traceparent": traceparent} if traceparent else None,
        )
    except DuplicateJobError:
        return False
    return True


def schedule_slot(
    connection: Redis, *, queue: str, handler: str, name: str, interval: int, now: datetime | None = None
) -> bool:
    """Put ``handler(interval)`` on RQ's schedule for the next multiple of ``interval`` seconds:
    a periodic job (a sweep) chained slot by slot. The job id names the slot and is enqueued
    ``unique``, so however many workers (or the job itself) schedule it, one job runs per slot.
    False when the slot was already scheduled."""
    now = now or datetime.now(UTC)
    slot = int(now.timestamp()) // interval + 1
    try:
        rq_queue(queue, connection).enqueue_at(
            datetime.fromtimestamp(slot * interval, UTC),
            handler,
            interval,
            job_id=f"{queue}-{name}-{interval}-{slot}",
            unique=True,
            # No retry: the next slot's job does whatever this one could not.
            job_timeout=JOB_TIMEOUT_SECONDS,
            result_ttl=max(600, 10 * interval),
            failure_ttl=24 * 3600,
            description=f"{name}, slot {slot}",
        )
    except DuplicateJobError:
        return False
    return True
