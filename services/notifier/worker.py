"""``handoff worker notifier``: works the ``notifications`` queue until stopped."""

from __future__ import annotations

from services.notifier import bootstrap, jobs
from shared import queues, worker
from shared.config import Settings
from shared.heartbeat import Heartbeat


def main(settings: Settings, *, burst: bool = False) -> None:
    """Send queued emails with ``settings`` until SIGTERM/SIGINT (or, with ``burst``, until the
    queue is empty), then close the SMTP and Redis connections."""
    jobs.runtime.install(bootstrap.build(settings))
    try:
        worker.run(
            queues.NOTIFICATIONS,
            settings.redis_url,
            burst=burst,
            log_level=settings.log_level,
            log_format=settings.log_format,
            heartbeat=Heartbeat(
                data_dir=settings.data_path, queue=queues.NOTIFICATIONS, interval=settings.worker_heartbeat_seconds
            ),
        )
    finally:
        jobs.runtime.uninstall()
