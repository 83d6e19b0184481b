"""Running an RQ worker for one Handoff queue: JSON serializer, no fork per job, and settings
that recover a job whose worker died within a couple of minutes."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal

from redis import Redis
from rq import SimpleWorker, get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer

from shared import queues

# How a job whose worker vanished (SIGKILL, OOM, power loss) comes back. Its entry in the started
# registry expires at start + job timeout + ABANDONED_GRACE_SECONDS; the next maintenance pass
# (one worker every MAINTENANCE_INTERVAL_SECONDS) then retries it. An idle worker blocks on the
# queue for WORKER_TTL_SECONDS - 15 s between maintenance checks. So a crashed notification
# (30 s timeout) is due again at most 30 + 15 + 15 + 10 s after it started, and sent after its
# first retry interval (5 s) and the scheduler's 1 s poll: about 76 s in the worst case.
WORKER_TTL_SECONDS = 25
MAINTENANCE_INTERVAL_SECONDS = 15
# RQ's SimpleWorker adds 60 s; 15 s is enough because the worker itself interrupts a job at its
# timeout (SIGALRM), so a live job is never still running when its entry expires.
ABANDONED_GRACE_SECONDS = 15
PR_SET_PDEATHSIG = 1


class HandoffWorker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in the worker process, no fork per job) that gives up on a
    dead worker's job sooner: see ABANDONED_GRACE_SECONDS."""

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if job.timeout is None or job.timeout < 0:
            return super().get_heartbeat_ttl(job, working_time)
        return abandoned_after(int(job.timeout))


def abandoned_after(timeout: int) -> int:
    """Seconds after its start that a job with this timeout counts as abandoned if still there."""
    return timeout + ABANDONED_GRACE_SECONDS


def give_up() -> None:
    """Mark the current job as not worth retrying (e.g. a payload that cannot ever decode), so
    the exception about to be raised sends it straight to the failed registry."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0


def build(queue: str, redis_url: str, *, name: str | None = None) -> HandoffWorker:
    connection = Redis.from_url(redis_url)
    return HandoffWorker(
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
    # RQ forks its scheduler; a scheduler outliving a SIGKILLed worker keeps the queue's scheduler
    # lock, so the restarted worker could not schedule retries. With this it is told to stop
    # (SIGTERM), releases the lock and exits.
    _scheduler_dies_with_worker()
    build(queue, redis_url).work(burst=burst, with_scheduler=True, logging_level=log_level)


@functools.cache
def _scheduler_dies_with_worker() -> None:
    # Cached: registered once per process however many times run() is called (tests).
    os.register_at_fork(after_in_child=_die_with_parent)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # Not Linux: the scheduler's lock then lapses on its own after about 61 s.
        pass
