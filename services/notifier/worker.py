"""``handoff worker notifier``: works the ``notifications`` queue until stopped."""

from __future__ import annotations

from services.notifier import bootstrap, jobs
from shared import queues, worker
from shared.config import Settings


def main(settings: Settings, *, burst: bool = False) -> None:
    """Send queued emails with ``settings`` until SIGTERM/SIGINT (or, with ``burst``, until the
    queue is empty), then close the SMTP and Redis connections."""
    jobs.runtime.install(bootstrap.build(settings))
    try:
        worker.serve(settings, queues.NOTIFICATIONS, burst=burst)
    finally:
        jobs.runtime.uninstall()
