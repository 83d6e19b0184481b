"""Running an RQ worker for one Handoff queue: JSON serializer, no fork per job, and settings
that recover a job whose worker died within a couple of minutes."""

from __future__ import annotations

import logging

from redis import Redis
from rq import SimpleWorker, get_current_job
from rq.serializers import JSONSerializer

from shared import queues

# A worker that vanishes (SIGKILL, power loss) stops refreshing its key after this many seconds;
# the next maintenance pass then moves its started job back for a retry.
WORKER_TTL_SECONDS = 35
MAINTENANCE_INTERVAL_SECONDS = 30


def give_up() -> None:
    """Mark the current job as not worth retrying (e.g. a payload that cannot ever decode), so
    the exception about to be raised sends it straight to the failed registry."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0


def build(queue: str, redis_url: str, *, name: str | None = None) -> SimpleWorker:
    connection = Redis.from_url(redis_url)
    return SimpleWorker(
        [queues.rq_queue(queue, connection)],
        name=name,
        connection=connection,
        serializer=JSONSerializer,
        worker_ttl=WORKER_TTL_SECONDS,
        maintenance_interval=MAINTENANCE_INTERVAL_SECONDS,
        # Kept short so a finished job is forgotten soon, but see shared.queues for dedup TTLs.
        default_result_ttl=queues.DEDUPLICATION_SECONDS,
    )


def run(queue: str, redis_url: str, *, burst: bool = False, log_level: str = "INFO") -> None:
    """Work ``queue`` until stopped (SIGTERM/SIGINT finish the current job first)."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    build(queue, redis_url).work(burst=burst, with_scheduler=True, logging_level=log_level)
