"""The directory worker's job: the listing sweep (:mod:`services.directory.listing_sweep`), run on
RQ's schedule every ``HANDOFF_SWEEP_INTERVAL_SECONDS``. RQ finds it by dotted path; its runtime
is held in :data:`runtime`, installed by :func:`services.directory.worker.main` or built on first
use."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime

from redis import Redis

from services.directory import bootstrap
from shared import queues
from shared.worker import RuntimeHolder

log = logging.getLogger(__name__)

runtime: RuntimeHolder[bootstrap.Runtime] = RuntimeHolder(functools.partial(bootstrap.build, use="worker"))

SWEEP_HANDLER = "services.directory.jobs.sweep"


def schedule_sweep(connection: Redis, *, interval: int, now: datetime | None = None) -> bool:
    """Put the next listing sweep on RQ's schedule, at the next multiple of ``interval`` seconds.
    The job id names that slot and is enqueued ``unique``: however many workers schedule it, one
    job runs per slot (and each email is sent once anyway: see the sweep). False when the slot
    was already scheduled."""
    return queues.schedule_slot(
        connection, queue=queues.DIRECTORY, handler=SWEEP_HANDLER, name="sweep", interval=interval, now=now
    )


def sweep(interval: int) -> None:
    """One pass of the listing sweep, the next pass scheduled first so that a failing pass does
    not end the chain."""
    current = runtime.current()
    schedule_sweep(current.redis, interval=interval)
    runtime.run(_sweep(current))


async def _sweep(current: bootstrap.Runtime) -> None:
    report = await current.sweep.run(now=datetime.now(UTC))
    # The emails it staged leave now rather than at a relay's tick.
    await current.relay.flush()
    log.info(
        "listing sweep: %d asked to confirm, %d reminded, %d flagged, %d asked about reopening, %d licence warnings",
        report.asked,
        report.reminded,
        report.flagged,
        report.reopening,
        report.licences,
    )
