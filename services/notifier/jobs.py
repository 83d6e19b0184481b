"""The notifier's RQ job: decode a ``SendEmail``, send it at most once, report the outcome.

Every outcome goes back to the referrals service as an ``EmailDelivery``: ``sent``; ``deferred``
(a temporary failure, RQ will retry); ``failed`` (permanent, or retries exhausted). A job that can
never succeed gives up and raises, so it lands in RQ's failed registry with its reason.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

from rq import get_current_job

from services.notifier import runtime as notifier_runtime
from services.notifier.mailer import PermanentFailure, TemporaryFailure, compose
from services.notifier.rendering import CannotRender
from services.notifier.runtime import Runtime
from shared import codec, queues
from shared.messages import EmailDelivery, SendEmail
from shared.worker import give_up

log = logging.getLogger(__name__)

Outcome = Literal["sent", "deferred", "failed"]


class RejectedJob(Exception):
    """A job the notifier can never do; raised after ``give_up()`` so it is not retried."""


class SendingElsewhere(Exception):
    """Another worker is sending this notification right now. Raised so that RQ retries the
    job later, when it will find the notification sent and only report it."""


def handle(payload: str) -> None:
    """RQ entry point, enqueued as ``services.notifier.jobs.handle`` (see ``shared.queues``)."""
    try:
        message = codec.decode(payload)
    except codec.UndecodableMessage:
        give_up()
        raise
    match message:
        case SendEmail():
            deliver(message, runtime=notifier_runtime.current())
        case _:
            give_up()
            raise RejectedJob(f"the notifier only sends SendEmail, not {type(message).__name__}")


def deliver(command: SendEmail, *, runtime: Runtime) -> None:
    """Send ``command``'s email unless it was sent already, then report the outcome."""
    notification_id = command.notification_id
    sent_at = runtime.ledger.sent_at(notification_id)
    if sent_at is None:
        try:
            sent_at = _send_once(command, runtime=runtime)
        except (CannotRender, PermanentFailure) as exc:
            log.warning("notification %s (%s) failed for good: %s", notification_id, command.kind, exc)
            _report(runtime, command, "failed", detail=str(exc))
            give_up()
            raise
        except TemporaryFailure as exc:
            if _will_retry():
                log.info("notification %s (%s) deferred: %s", notification_id, command.kind, exc)
                _report(runtime, command, "deferred", detail=str(exc))
            else:
                log.warning("notification %s (%s) failed after its last retry: %s", notification_id, command.kind, exc)
                _report(runtime, command, "failed", detail=f"gave up retrying: {exc}")
            raise
        log.info("notification %s (%s) sent", notification_id, command.kind)
    else:
        # A retry after the report was lost, or a duplicate job: never send twice, report again.
        log.info("notification %s (%s) was already sent", notification_id, command.kind)
    _report(runtime, command, "sent", at=sent_at)


def _send_once(command: SendEmail, *, runtime: Runtime) -> datetime:
    """Send under the notification's claim; returns when the SMTP server accepted it."""
    settings = runtime.settings
    message = compose(
        rendered=runtime.renderer.render(command.kind, command.context),
        to=command.to,
        notification_id=command.notification_id,
        mail_from=settings.mail_from,
        reply_to=settings.mail_reply_to,
    )
    if not runtime.ledger.claim(command.notification_id):
        raise SendingElsewhere(f"another worker is sending notification {command.notification_id}")
    try:
        # Checked again under the claim: a worker may have finished it since the first look.
        sent_at = runtime.ledger.sent_at(command.notification_id)
        if sent_at is None:
            runtime.mailer.send(message)
            sent_at = runtime.ledger.mark_sent(command.notification_id)
        return sent_at
    finally:
        runtime.ledger.release(command.notification_id)


def _report(
    runtime: Runtime, command: SendEmail, outcome: Outcome, *, detail: str = "", at: datetime | None = None
) -> None:
    """Tell the referrals service what became of ``command``. One job per notification and
    outcome: reporting again (a retried job) is refused by the queue as a duplicate."""
    delivery = EmailDelivery(
        notification_id=command.notification_id,
        outcome=outcome,
        at=at or datetime.now(UTC),
        referral_id=command.referral_id,
        detail=detail,
    )
    queues.enqueue(runtime.redis, delivery, job_id=f"delivery-{command.notification_id}-{outcome}")


def _will_retry() -> bool:
    # Outside RQ nobody retries, so a temporary failure is final there.
    job = get_current_job()
    return job is not None and bool(job.retries_left)
