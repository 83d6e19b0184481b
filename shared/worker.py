"""Running an RQ worker for one Handoff queue: JSON serializer, no fork per job, settings that
recover a job whose worker died within a couple of minutes, a worker that outlives Redis
restarts, and the holder of the runtime its jobs use."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import inspect
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from opentelemetry.trace import SpanKind
from redis.backoff import EqualJitterBackoff
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, get_current_job
from rq.executions import Execution
from rq.job import Job
from rq.serializers import JSONSerializer

from shared import logs, queues, redis_client, telemetry
from shared.config import Settings, load_settings
from shared.heartbeat import Heartbeat

log = logging.getLogger(__name__)

# How a job whose worker vanished (SIGKILL, OOM, power loss) comes back. Its entry in the started
# registry expires at start + job timeout + ABANDONED_GRACE_SECONDS; the next maintenance pass
# (one worker every MAINTENANCE_INTERVAL_SECONDS) then retries it. An idle worker blocks on the
# queue for DEQUEUE_TIMEOUT_SECONDS between maintenance checks. So a crashed notification
# (30 s timeout) is due again at most 30 + 15 + 15 + 10 s after it started, and sent after its
# first retry interval (5 s) and the scheduler's 1 s poll: about 76 s in the worst case.
WORKER_TTL_SECONDS = 25
MAINTENANCE_INTERVAL_SECONDS = 15
# RQ 3 derives it from the TTL (``Worker.dequeue_timeout``); the connection's read timeout must
# outlast it, or every idle wait for a job would end in a timeout error.
DEQUEUE_TIMEOUT_SECONDS = WORKER_TTL_SECONDS - 15
# RQ's SimpleWorker adds 60 s; 15 s is enough because the worker itself interrupts a job at its
# timeout (SIGALRM), so a live job is never still running when its entry expires.
ABANDONED_GRACE_SECONDS = 15
# While Redis is away a worker tries again after 0.5-1 s, then twice as long each time, up to
# 5-10 s apart: back within seconds of a restart, without hammering a Redis that stays down.
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_CAP_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


class HandoffWorker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in the worker process, no fork per job) that gives up on a
    dead worker's job sooner (see ABANDONED_GRACE_SECONDS), waits at most
    RECONNECT_CAP_SECONDS between tries while Redis is away, and tears down cleanly without it."""

    max_connection_wait_time = RECONNECT_CAP_SECONDS
    stopping = False  # a warm shutdown was asked for (SIGTERM, SIGINT)
    started = False  # registered and listening: Redis answered since it was built
    _torn_down = False

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        # The job continues the trace of whatever enqueued it (shared.queues puts it in the meta).
        with telemetry.span(
            f"rq {job.func_name}",
            parent=(job.meta or {}).get("traceparent"),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rq",
                "messaging.destination.name": queue.name,
                "messaging.message.id": job.id,
            },
        ):
            return super().perform_job(job, queue, execution)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if job.timeout is None or job.timeout < 0:
            return super().get_heartbeat_ttl(job, working_time)
        return abandoned_after(int(job.timeout))

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        self.started = True

    def handle_warm_shutdown_request(self) -> None:
        self.stopping = True
        super().handle_warm_shutdown_request()

    def teardown(self) -> None:
        """RQ's teardown, once, and complete when Redis is away: RQ's stops at the first Redis
        error, leaving its pub/sub listener thread to retry every 2 s for the life of the process.
        The worker's registration then expires on its own."""
        if self._torn_down:
            return
        self._torn_down = True
        try:
            super().teardown()
        except (RedisError, OSError) as exc:
            log.debug("worker %s: torn down without Redis (%s)", self.name, exc)
            if self.pubsub_thread is not None:
                self.pubsub_thread.stop()
                self.pubsub_thread.join(timeout=1)
            if self.pubsub is not None:
                self.pubsub.close()


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
    """A worker for ``queue``. RQ names its client on the connection here: Redis must answer."""
    connection = redis_client.connect(redis_url, use="worker", blocks_for=DEQUEUE_TIMEOUT_SECONDS)
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


def serve(
    settings: Settings, queue: str, *, burst: bool = False, on_connect: Callable[[], object] | None = None
) -> None:
    """:func:`run` for a service's worker: Redis, logging and the heartbeat as ``settings`` say."""
    run(
        queue,
        settings.redis_url,
        burst=burst,
        log_level=settings.log_level,
        log_format=settings.log_format,
        on_connect=on_connect,
        heartbeat=Heartbeat(data_dir=settings.data_path, queue=queue, interval=settings.worker_heartbeat_seconds),
    )


def run(
    queue: str,
    redis_url: str,
    *,
    burst: bool = False,
    log_level: str = "INFO",
    log_format: logs.Format = "text",
    on_connect: Callable[[], object] | None = None,
    heartbeat: Heartbeat | None = None,
) -> None:
    """Work ``queue`` until stopped (SIGTERM/SIGINT finish the current job first), or with
    ``burst`` until it is empty.

    Redis going away never ends the process. The worker's client rides out a restart inside each
    call (see shared.redis_client). RQ's worker survives a longer outage while it waits for a job,
    but stops when one of its other calls (registration, heartbeats after a job, finishing a job,
    maintenance, starting the scheduler) finds Redis gone, or when Redis is away at start. This
    then logs once, waits (RECONNECT_FIRST_SECONDS doubling up to RECONNECT_CAP_SECONDS, with
    jitter), builds a new worker and works again. ``on_connect`` runs before each start: start-up
    Redis calls of the service's own, retried with the rest. A job cut off mid-way comes back as an
    abandoned job (see ABANDONED_GRACE_SECONDS). ``heartbeat`` beats for the whole run, outages
    included (see shared.heartbeat)."""
    logs.configure(level=log_level, fmt=log_format)
    if heartbeat is not None:
        heartbeat.start()
    # RQ forks its scheduler; a scheduler outliving a SIGKILLed worker keeps the queue's scheduler
    # lock, so the restarted worker could not schedule retries. With this it is told to stop
    # (SIGTERM), releases the lock and exits.
    _scheduler_dies_with_worker()
    backoff = EqualJitterBackoff(cap=RECONNECT_CAP_SECONDS, base=RECONNECT_FIRST_SECONDS)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    failures = 0  # failed starts in a row, since the last worker that got going
    stale = None  # the scheduler of the last worker, whose lock a new one must not wait out
    try:
        while True:
            _stop_on_signal()  # RQ's handlers belong to a worker that is gone
            worker = None
            try:
                worker = build(queue, redis_url)
                if on_connect is not None:
                    on_connect()
                if stale is not None:
                    stale.release_locks()
                    stale.connection.close()
                    stale = None
                if failures:
                    log.info("Redis answers again: working the %s queue", queue)
                worker.work(burst=burst, with_scheduler=True, logging_level=log_level)
                if burst or worker.stopping:
                    return
                problem = "RQ's work loop ended on the error logged above"
            except (RedisError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            finally:
                if worker is not None:
                    worker.teardown()
                    worker.connection.close()
            if worker is not None and worker.started:
                failures = 0  # it got going: this is a new outage
                stale = worker.scheduler or stale
            failures += 1
            _stop_on_signal()
            if failures == 1:
                log.warning(
                    "%s worker lost Redis (%s); trying again every few seconds until it answers", queue, problem
                )
            else:
                log.debug("%s worker: Redis still away (%s)", queue, problem)
            time.sleep(backoff.compute(failures))
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _stop_on_signal() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


def _stop(signum: int, _frame: object) -> None:
    # Outside RQ's work loop there is no job to finish: stop at once.
    raise SystemExit(0)


@functools.cache
def _scheduler_dies_with_worker() -> None:
    # Cached: registered once per process however many times run() is called (tests).
    os.register_at_fork(after_in_child=_die_with_parent)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # Not Linux: the scheduler's lock then lapses on its own after about 61 s.
        pass


# ---------------------------------------------------------------------- the jobs' runtime


class Closable(Protocol):
    def close(self) -> object: ...


R = TypeVar("R", bound=Closable)
T = TypeVar("T")


class RuntimeHolder(Generic[R]):
    """The runtime (settings, clients, services) the jobs of a worker process use, and the one
    event loop its async jobs run on (a database pool stays on the loop it was opened on).

    RQ finds a job function by its dotted path and calls it with the payload alone, so the job
    cannot be handed its dependencies; it takes them from the holder in its module. The worker's
    entry point installs a runtime before working (tests install their own); a process that runs
    a job without one, such as a bare ``rq worker``, gets one built from the ``HANDOFF_*``
    environment on first use. Nothing connects until a job needs it."""

    def __init__(self, build: Callable[[Settings], R]) -> None:
        self._build = build
        self._runtime: R | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self, runtime: R) -> None:
        """Make ``runtime`` the one every job in this process uses (closing the one before)."""
        if runtime is self._runtime:
            return
        self.uninstall()
        self._runtime = runtime

    def current(self) -> R:
        """The installed runtime, built from the environment's settings if none was installed."""
        if self._runtime is None:
            self._runtime = self._build(load_settings())
        return self._runtime

    def run(self, work: Awaitable[T]) -> T:
        """Run ``work`` to the end on the process's event loop."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(work)

    def uninstall(self) -> None:
        """Close and forget the installed runtime, if any, and its event loop."""
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            closing = runtime.close()
            if inspect.isawaitable(closing):
                self.run(closing)
        if self._loop is not None:
            self._loop.close()
            self._loop = None
