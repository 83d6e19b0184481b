"""The notifier's side of the integration tests: an offer email to send, settings aimed at the
test's Redis and SMTP server, a burst of the real RQ worker, and what it left on the queues."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from redis import Redis
from rq import Queue

from shared import codec, queues
from shared import worker as rq_worker
from shared.config import Settings, load_settings
from shared.messages import EmailContext, EmailDelivery, SendEmail

LINK = "http://127.0.0.1:8002/respond/tok3n.abc"


def offer(notification_id: str = "n-1", **changes: object) -> SendEmail:
    fields: dict = {
        "notification_id": notification_id,
        "kind": "offer",
        "to": "Ruiz PT <intake@ruiz.example>",
        "referral_id": "r-1",
        "context": EmailContext(
            recipient_name="Ruiz Physical Therapy",
            partner_name="Ruiz Physical Therapy",
            reference="HX-1234",
            urgency="urgent",
            action_url=LINK,
            expires_at=datetime(2026, 5, 12, 21, 0, tzinfo=UTC),
        ),
    }
    return SendEmail(**{**fields, **changes})


def notifier_settings(redis_url: str, smtp_port: int, data_dir: Path) -> Settings:
    return load_settings(
        {}, redis_url=redis_url, smtp_port=smtp_port, data_dir=str(data_dir), clinic_name="Sunshine Massage"
    )


def work(redis_url: str) -> None:
    """One burst of the real notifier worker: every job queued now, then it returns."""
    worker = rq_worker.build(queues.NOTIFICATIONS, redis_url)
    # Without RQ's command channel (stop or kill a worker by message), which a burst has no use
    # for: its thread outlives the burst by a second, RQ's join timeout, every time.
    worker.subscribe = lambda: None  # type: ignore[method-assign]
    worker.work(burst=True)


def deliveries(redis: Redis) -> dict[str, EmailDelivery]:
    """The reports waiting on the referrals queue, by job id."""
    jobs = queues.rq_queue(queues.REFERRALS, redis).get_jobs()
    assert all(job.func_name == queues.ROUTES[queues.REFERRALS].handler for job in jobs)
    return {job.id: codec.decode(job.args[0]) for job in jobs}


def notifications(redis: Redis) -> Queue:
    return queues.rq_queue(queues.NOTIFICATIONS, redis)


def idle(redis: Redis) -> bool:
    """Nothing queued, running or waiting for a retry on the notifications queue. The running
    jobs are counted before the scheduled ones because counting them cleans up: a dead worker's
    job is rescheduled right then, and must be seen. Counted one by one, the registries can still
    miss a retry the scheduler queues between two counts."""
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)
    return queue.count == 0 and queue.started_job_registry.count == 0 and queue.scheduled_job_registry.count == 0
