"""The notifier's RQ job: decode a ``SendEmail``, send it at most once, report the outcome.

Every outcome goes back to the referrals service as an ``EmailDelivery``: ``sent``; ``deferred``
(a temporary failure, RQ will retry); ``failed`` (permanent, or retries exhausted). A job that can
never succeed gives up and raises, so it lands in RQ's failed registry with its reason.

Two waits are not failures and cost none of the job's retries: the provider's rate limit says
"later", or another worker is sending the same notification right now. The job then returns an
RQ ``Retry``, which schedules it again, and reports nothing.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Literal

from opentelemetry.trace import SpanKind
from redis.client import Pipeline
from rq import Retry, get_current_job

from services.notifier import bootstrap
from services.notifier.bootstrap import Runtime
from services.notifier.ledger import CLAIM_MARGIN_SECONDS
from services.notifier.mailer import PermanentFailure, TemporaryFailure, compose
from services.notifier.rendering import CannotRender
from shared import codec, ops_metrics, queues, telemetry
from shared.messages import EmailDelivery, SendEmail
from shared.worker import RuntimeHolder, give_up

log = logging.getLogger(__name__)

# The runtime of this process's jobs: installed by the worker's entry point, else built on first use.
runtime: RuntimeHolder[Runtime] = RuntimeHolder(bootstrap.build)

Outcome = Literal["sent", "deferred", "failed"]


class RejectedJob(Exception):
    """A job the notifier can never do; raised after ``give_up()`` so it is not retried."""


# A wait is never a reason to give up on an email: in effect unbounded (RQ needs a number).
WAITS_ALLOWED = 1_000_000
# Another worker holds the notification's claim: look again after its send should be over.
SENDING_ELSEWHERE_RECHECK_SECONDS = 5


class Later(Exception):
    """Not now, and not a failure: schedule the job again in ``seconds``."""

    def __init__(self, reason: str, *, seconds: float) -> None:
        super().__init__(reason)
        self.seconds = seconds


def handle(payload: str) -> Retry | None:
    """RQ entry point, enqueued as ``services.notifier.jobs.handle`` (see ``shared.queues``)."""
    try:
        message = codec.decode(payload)
    except codec.UndecodableMessage:
        give_up()
        raise
    match message:
        case SendEmail():
            return deliver(message, runtime=runtime.current())
        case _:
            give_up()
            raise RejectedJob(f"the notifier only sends SendEmail, not {type(message).__name__}")


def deliver(command: SendEmail, *, runtime: Runtime) -> Retry | None:
    """Send ``command``'s email unless it was sent already, then report the outcome. Returns a
    ``Retry`` for RQ when the email must wait (see the module docstring)."""
    notification_id = command.notification_id
    try:
        _send_once(command, runtime=runtime)
    except Later as exc:
        log.info("notification %s (%s) waits %.1f s: %s", notification_id, command.kind, exc.seconds, exc)
        return Retry(max=WAITS_ALLOWED, interval=[max(1, math.ceil(exc.seconds))])
    except (CannotRender, PermanentFailure) as exc:
        log.warning("notification %s (%s) failed for good: %s", notification_id, command.kind, exc)
        _report(runtime, command, "failed", detail=str(exc))
        give_up()
        raise
    except TemporaryFailure as exc:
        if will_retry():
            log.info("notification %s (%s) deferred: %s", notification_id, command.kind, exc)
            _report(runtime, command, "deferred", detail=str(exc))
        else:
            log.warning("notification %s (%s) failed after its last retry: %s", notification_id, command.kind, exc)
            _report(runtime, command, "failed", detail=f"gave up retrying: {exc}")
        raise
    return None


def _send_once(command: SendEmail, *, runtime: Runtime) -> None:
    """Send under the notification's claim, unless it was sent already, and report it sent."""
    notification_id = command.notification_id
    claimed, sent_at = runtime.ledger.claim_unsent(notification_id, ttl_seconds=_claim_ttl())
    if sent_at is not None:
        # A retry after the report was lost, or a duplicate job: never send twice, report again.
        if claimed:
            runtime.ledger.release(notification_id)
        log.info("notification %s (%s) was already sent", notification_id, command.kind)
        _report(runtime, command, "sent", at=sent_at)
        return
    if not claimed:
        raise Later(
            f"another worker is sending notification {notification_id}", seconds=SENDING_ELSEWHERE_RECHECK_SECONDS
        )
    try:
        settings = runtime.settings
        message = compose(
            rendered=runtime.renderer.render(command.kind, command.context),
            to=command.to,
            notification_id=notification_id,
            mail_from=settings.mail_from,
            reply_to=settings.mail_reply_to,
        )
        wait = runtime.limiter.acquire()
        if wait:
            raise Later("the SMTP account's rate limit is reached", seconds=wait)
        with telemetry.span("smtp send", kind=SpanKind.CLIENT, attributes={"handoff.email.kind": command.kind}):
            runtime.mailer.send(message)
    except BaseException:
        runtime.ledger.release(notification_id)
        raise
    # The duplicate window: from the server's "250" above until this write lands (one Redis
    # round trip). A worker that dies in between leaves no marker, and the retry sends again.
    # The report rides in the marker's transaction: one round trip instead of four, and a
    # marker never lands without its report (a retry would only report again, see above).
    sent_at = datetime.now(UTC)
    runtime.ledger.mark_sent_and_release(
        notification_id, at=sent_at, also=lambda pipe: _report(runtime, command, "sent", at=sent_at, pipeline=pipe)
    )
    log.info("notification %s (%s) sent", notification_id, command.kind)


def _report(
    runtime: Runtime,
    command: SendEmail,
    outcome: Outcome,
    *,
    detail: str = "",
    at: datetime | None = None,
    pipeline: Pipeline | None = None,
) -> None:
    """Tell the referrals service what became of ``command``. One job per notification and
    outcome: reporting again (a retried job) is refused by the queue as a duplicate. With
    ``pipeline``, the report is written by its transaction instead, unchecked: only the
    transaction that marks the email sent reports that way, once (should Redis's answer to it
    be lost and the transaction run twice, the referrals service records a delivery once)."""
    delivery = EmailDelivery(
        notification_id=command.notification_id,
        outcome=outcome,
        at=at or datetime.now(UTC),
        referral_id=command.referral_id,
        detail=detail,
        kind=command.kind,
    )
    queues.enqueue(runtime.redis, delivery, job_id=f"delivery-{command.notification_id}-{outcome}", pipeline=pipeline)
    ops_metrics.count_email(pipeline or runtime.redis, "retried" if outcome == "deferred" else outcome)


def will_retry() -> bool:
    """Whether RQ will try the current job again after it raises. Outside RQ nobody retries,
    so a temporary failure is final there."""
    job = get_current_job()
    return job is not None and bool(job.retries_left)


def _claim_ttl() -> int:
    # The claim must outlive this very job, whose timeout the enqueuer chose.
    job = get_current_job()
    if job is not None and job.timeout and job.timeout > 0:
        return int(job.timeout) + CLAIM_MARGIN_SECONDS
    return queues.NOTIFICATION_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS
