"""``handoff worker referrals``: applies partner changes and delivery reports, and runs the
deadline sweep every ``HANDOFF_SWEEP_INTERVAL_SECONDS`` through RQ's scheduler."""

from __future__ import annotations

from services.referrals import bootstrap, jobs
from shared import queues, worker
from shared.config import Settings


def main(settings: Settings, *, burst: bool = False) -> None:
    runtime = bootstrap.build(settings)
    jobs.use(runtime)
    # Every worker seeds the chain; the slot's unique job id keeps it to one sweep per interval.
    jobs.schedule_sweep(runtime.redis, interval=settings.sweep_interval_seconds)
    worker.run(queues.REFERRALS, settings.redis_url, burst=burst, log_level=settings.log_level)
