"""``handoff worker referrals``: applies partner changes and delivery reports."""

from __future__ import annotations

from services.referrals import bootstrap, jobs
from shared import queues, worker
from shared.config import Settings


def main(settings: Settings, *, burst: bool = False) -> None:
    jobs.use(bootstrap.build(settings))
    worker.run(queues.REFERRALS, settings.redis_url, burst=burst, log_level=settings.log_level)
