"""The referrals worker's jobs: apply one message from the ``referrals`` queue, and the deadline
sweep. RQ finds them by dotted path (see :mod:`shared.queues`); their runtime is held in
:data:`runtime`, installed by :func:`services.referrals.worker.main` or built on first use."""

from __future__ import annotations

import functools
import logging
from datetime import datetime

from redis import Redis

from services.referrals import bootstrap
from shared import codec, ops_metrics, queues
from shared.messages import EmailDelivery, PartnerChanged, PartnersChanged
from shared.worker import RuntimeHolder, give_up

log = logging.getLogger(__name__)

runtime: RuntimeHolder[bootstrap.Runtime] = RuntimeHolder(functools.partial(bootstrap.build, use="worker"))


def handle(payload: str) -> None:
    """Decode and apply one message. Undecodable or unexpected messages fail without retry."""
    try:
        message = codec.decode(payload)
    except codec.UndecodableMessage:
        give_up()
        raise
    runtime.run(_apply(runtime.current(), message))


async def _apply(current: bootstrap.Runtime, message: object) -> None:
    match message:
        case PartnerChanged():
            applied = await current.referrals.apply_partner_changed(message)
            log.info("partner %s v%d %s", message.partner.id, message.version, "applied" if applied else "ignored")
        case PartnersChanged():
            stored = await current.referrals.apply_partner_changes(message.changes)
            log.info("%d partner changes: %d applied", len(message.changes), stored)
        case EmailDelivery():
            await current.referrals.record_delivery(message)
        case _:
            give_up()
            raise TypeError(f"the referrals queue does not take {type(message).__name__} messages")
    # Whatever the message caused (next offers, emails) leaves now rather than at a relay's tick.
    await current.relay.flush()


# ------------------------------------------------------------------ the deadline sweep

SWEEP_HANDLER = "services.referrals.jobs.sweep"


def schedule_sweep(connection: Redis, *, interval: int, now: datetime | None = None) -> bool:
    """Put the next deadline sweep on RQ's schedule, at the next multiple of ``interval`` seconds.

    The job id names that slot and is enqueued ``unique``: however many workers (or the sweep
    job itself) schedule it, one job runs per slot. False when the slot was already scheduled."""
    return queues.schedule_slot(
        connection, queue=queues.REFERRALS, handler=SWEEP_HANDLER, name="sweep", interval=interval, now=now
    )


def sweep(interval: int) -> None:
    """One pass of the deadline sweep (see :meth:`Referrals.sweep`), the next pass scheduled first
    so that a failing pass does not stop the chain."""
    current = runtime.current()
    schedule_sweep(current.redis, interval=interval)
    runtime.run(_sweep(current))


async def _sweep(current: bootstrap.Runtime) -> None:
    report = await current.referrals.sweep()
    await current.relay.flush()
    ops_metrics.sweep_finished(current.redis)
    log.info("deadline sweep: %d reminded, %d expired", report.reminded, report.expired)
