"""``handoff worker referrals``: applies partner changes and delivery reports, and runs the
deadline sweep every ``HANDOFF_SWEEP_INTERVAL_SECONDS`` through RQ's scheduler."""

from __future__ import annotations

from services.referrals import bootstrap, jobs
from shared import queues, worker
from shared.config import Settings


def main(settings: Settings, *, burst: bool = False) -> None:
    """Work the ``referrals`` queue with ``settings`` until SIGTERM/SIGINT (or, with ``burst``,
    until it is empty), then close the database and Redis connections."""
    runtime = bootstrap.build(settings, use="worker")
    jobs.runtime.install(runtime)

    def seed_the_sweep() -> None:
        # Every worker seeds the chain, at each (re)connection too: a sweep that could not
        # schedule its successor while Redis was away would otherwise end it. The slot's unique
        # job id keeps it to one sweep per interval.
        jobs.schedule_sweep(runtime.redis, interval=settings.sweep_interval_seconds)

    try:
        worker.serve(settings, queues.REFERRALS, burst=burst, on_connect=seed_the_sweep)
    finally:
        jobs.runtime.uninstall()
