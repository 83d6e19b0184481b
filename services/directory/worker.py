"""``handoff worker directory``: runs the listing sweep (confirmation requests and reminders,
"needs review" flags, reopening questions, licence warnings) every
``HANDOFF_SWEEP_INTERVAL_SECONDS`` through RQ's scheduler, on the ``directory`` queue."""

from __future__ import annotations

from services.directory import bootstrap, jobs
from shared import queues, worker
from shared.config import Settings


def main(settings: Settings, *, burst: bool = False) -> None:
    """Work the ``directory`` queue with ``settings`` until SIGTERM/SIGINT (or, with ``burst``,
    until it is empty), then close the database and Redis connections."""
    runtime = bootstrap.build(settings, use="worker")
    jobs.runtime.install(runtime)

    def seed_the_sweep() -> None:
        # Every worker seeds the chain, at each (re)connection too (see the referrals worker).
        jobs.schedule_sweep(runtime.redis, interval=settings.sweep_interval_seconds)

    try:
        worker.serve(settings, queues.DIRECTORY, burst=burst, on_connect=seed_the_sweep)
    finally:
        jobs.runtime.uninstall()
