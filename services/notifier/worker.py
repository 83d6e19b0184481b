"""``handoff worker notifier``: works the ``notifications`` queue until stopped."""

from __future__ import annotations

from services.notifier import runtime
from services.notifier.runtime import Runtime
from shared import queues
from shared import worker as rq_worker
from shared.config import Settings


def main(settings: Settings, *, burst: bool = False) -> None:
    """Send queued emails with ``settings`` until SIGTERM/SIGINT (or, with ``burst``, until the
    queue is empty), then close the SMTP and Redis connections."""
    runtime.install(Runtime.from_settings(settings))
    try:
        rq_worker.run(queues.NOTIFICATIONS, settings.redis_url, burst=burst, log_level=settings.log_level)
    finally:
        runtime.uninstall()
