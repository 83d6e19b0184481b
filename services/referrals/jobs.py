"""The referrals worker's job: apply one message from the ``referrals`` queue.

RQ finds this function by its dotted path (see :mod:`shared.queues`), so the process-wide
runtime is held here, set by :func:`services.referrals.worker.main` or built on first use.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from redis import Redis
from rq.exceptions import DuplicateJobError

from services.referrals import bootstrap
from shared import codec, queues
from shared.config import load_settings
from shared.messages import EmailDelivery, PartnerChanged
from shared.worker import give_up

log = logging.getLogger(__name__)


class _Process:
    """One event loop and one runtime for the life of the worker process (no fork per job)."""

    def __init__(self, runtime: bootstrap.Runtime | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.runtime = runtime or bootstrap.build(load_settings())


_process: _Process | None = None


def use(runtime: bootstrap.Runtime | None = None) -> None:
    """Set the runtime jobs in this process use (the worker entry point and tests call this)."""
    global _process
    _process = _Process(runtime)


def handle(payload: str) -> None:
    """Decode and apply one message. Undecodable or unexpected messages fail without retry."""
    if _process is None:
        use()
    try:
        message = codec.decode(payload)
    except codec.UndecodableMessage:
        give_up()
        raise
    _process.loop.run_until_complete(_apply(_process.runtime, message))


async def _apply(runtime: bootstrap.Runtime, message: object) -> None:
    match message:
        case PartnerChanged():
            applied = await runtime.referrals.apply_partner_changed(message)
            log.info("partner %s v%d %s", message.partner.id, message.version, "applied" if applied else "ignored")
        case EmailDelivery():
            await runtime.referrals.record_delivery(message)
        case _:
            give_up()
            raise TypeError(f"the referrals queue does not take {type(message).__name__} messages")
    # Whatever the message caused (next offers, emails) leaves now rather than at a relay's tick.
    await runtime.relay.flush()


# ------------------------------------------------------------------ the deadline sweep

SWEEP_HANDLER = "services.referrals.jobs.sweep"


def schedule_sweep(connection: Redis, *, interval: int, now: datetime | None = None) -> bool:
    """Put the next deadline sweep on RQ's schedule, at the next multiple of ``interval`` seconds.

    The job id names that slot and is enqueued ``unique``: however many workers (or the sweep
    job itself) schedule it, one job runs per slot. False when the slot was already scheduled."""
    now = now or datetime.now(UTC)
    slot = int(now.timestamp()) // interval + 1
    queue = queues.rq_queue(queues.REFERRALS, connection)
    try:
        queue.enqueue_at(
            datetime.fromtimestamp(slot * interval, UTC),
            SWEEP_HANDLER,
            interval,
            job_id=f"referrals-sweep-{interval}-{slot}",
            unique=True,
            # No retry: the next slot's sweep does whatever this one could not.
            job_timeout=queues.JOB_TIMEOUT_SECONDS,
            result_ttl=max(600, 10 * interval),
            failure_ttl=24 * 3600,
            description=f"deadline sweep, slot {slot}",
        )
    except DuplicateJobError:
        return False
    return True


def sweep(interval: int) -> None:
    """One pass of the deadline sweep (see :meth:`Referrals.sweep`), the next pass scheduled first
    so that a failing pass does not stop the chain."""
    if _process is None:
        use()
    schedule_sweep(_process.runtime.redis, interval=interval)
    report = _process.loop.run_until_complete(_sweep(_process.runtime))
    log.info("deadline sweep: %d reminded, %d expired", report.reminded, report.expired)


async def _sweep(runtime: bootstrap.Runtime):
    report = await runtime.referrals.sweep()
    await runtime.relay.flush()
    return report
