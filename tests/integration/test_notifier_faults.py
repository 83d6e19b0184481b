"""Faults survived by real notifier processes (``python -m services.cli worker notifier``) on a
real Redis, sending to a real SMTP server: a worker SIGKILLed mid-batch and restarted, and an
SMTP server that is down for a while. Every email arrives; duplicates are counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from redis import Redis

from services.dev import processes
from services.dev.ports import free_port
from shared import codec, queues
from tests.support.notifier import idle, offer
from tests.support.polling import wait_for
from tests.support.smtp import Counting, SmtpServer

ROOT = Path(__file__).resolve().parents[2]
# Fault drills on the notifier alone: each waits for real processes to recover, within the limits below.
pytestmark = [pytest.mark.drill, pytest.mark.timeout(600)]
EMAILS = 40
# Time limits for waiting on the processes, never asserted as speed: generous so a slow CI
# machine passes, bounded so a broken recovery fails instead of hanging.
RECOVERY_LIMIT_SECONDS = 150
DELIVERY_LIMIT_SECONDS = 60


class WorkerProcess:
    """``python -m services.cli worker notifier`` with the test's Redis and SMTP in its env."""

    def __init__(self, *, redis_url: str, smtp_port: int, data_dir: Path, log: Path, **settings: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
        env.update(
            HANDOFF_REDIS_URL=redis_url,
            HANDOFF_SMTP_PORT=str(smtp_port),
            HANDOFF_DATA_DIR=str(data_dir),
            HANDOFF_LOG_LEVEL="INFO",
            **settings,
        )
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker", "notifier"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the worker process itself, as the OOM killer would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        processes.stop(self.process, timeout=20)
        self._log.close()


@pytest.fixture
def start_worker(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(smtp_port: int, **settings: str) -> WorkerProcess:
        worker = WorkerProcess(
            redis_url=redis_url, smtp_port=smtp_port, data_dir=tmp_path, log=tmp_path / "worker.log", **settings
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def enqueue_batch(redis: Redis, count: int, *, timeout: int | None = None) -> list[str]:
    """``count`` offers on the notifications queue, as the referrals relay enqueues them (same
    handler and retries); ``timeout`` shortens the job timeout to keep a crash test short."""
    route = queues.ROUTES[queues.NOTIFICATIONS]
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)
    ids = [f"n-{i:03d}" for i in range(count)]
    for notification_id in ids:
        queue.enqueue_call(
            route.handler,
            args=(codec.encode(offer(notification_id)),),
            job_id=notification_id,
            retry=route.retry,
            timeout=timeout or route.timeout,
        )
    return ids


def reports(redis: Redis, outcome: str) -> set[str]:
    """Notification ids with a delivery report of ``outcome`` on the referrals queue."""
    jobs = queues.rq_queue(queues.REFERRALS, redis).get_jobs()
    found = (codec.decode(job.args[0]) for job in jobs)
    return {report.notification_id for report in found if report.outcome == outcome}


def settled(redis: Redis, ids: list[str]) -> bool:
    """Every one of ``ids`` reported sent (the proof each job finished, which :func:`idle`
    alone is not), and the notifications queue idle."""
    return reports(redis, "sent") == set(ids) and idle(redis)


def message_ids(ids: list[str]) -> set[str]:
    return {f"<{notification_id}@handoff.local>" for notification_id in ids}


def test_a_worker_killed_mid_batch_is_recovered_and_every_email_arrives(
    redis: Redis, start_worker: Callable[[int], WorkerProcess], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    handler = Counting(hold_at=EMAILS // 2)
    with SmtpServer(handler) as server:
        # A 3 s job timeout instead of 30 s: recovery waits for the timeout plus the grace.
        ids = enqueue_batch(redis, EMAILS, timeout=3)
        first = start_worker(server.port)
        wait_for(handler.holding.is_set, limit=DELIVERY_LIMIT_SECONDS, what="half the batch", log=log)
        scheduler = first.children()

        # The server has the message; the worker has not seen its "250" nor marked it sent.
        first.kill()
        handler.release.set()
        assert handler.held_id in message_ids(ids)
        # The scheduler the worker forked stops with it, freeing the queue's scheduler lock.
        for child in scheduler:
            wait_for(
                lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE,  # noqa: B023  (waited for before the loop moves on)
                limit=10,
                what="the scheduler to stop",
            )

        start_worker(server.port)
        wait_for(
            lambda: set(handler.received) == message_ids(ids),
            limit=RECOVERY_LIMIT_SECONDS,
            what="every email after the restart",
            log=log,
        )
        wait_for(lambda: settled(redis, ids), limit=DELIVERY_LIMIT_SECONDS, what="the queue to settle", log=log)

    duplicates = {message_id: n - 1 for message_id, n in handler.received.items() if n > 1}
    # The stated window: only the job in flight between acceptance and marker can go twice.
    assert duplicates == {handler.held_id: 1}
    assert reports(redis, "sent") == set(ids)
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)
    assert queue.failed_job_registry.count == 0


def test_smtp_down_for_a_while_then_back_delivers_every_email_once(
    redis: Redis, start_worker: Callable[[int], WorkerProcess], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    port = free_port()  # nothing listens here yet
    ids = enqueue_batch(redis, EMAILS)
    start_worker(port)

    # Every email has been tried and deferred before the server comes back.
    wait_for(
        lambda: reports(redis, "deferred") == set(ids),
        limit=DELIVERY_LIMIT_SECONDS,
        what="every email to be deferred",
        log=log,
    )
    assert reports(redis, "sent") == set()

    handler = Counting()
    with SmtpServer(handler, port=port):
        # The retries come from RQ's scheduler in the worker, 5 s after each failure.
        wait_for(
            lambda: set(handler.received) == message_ids(ids),
            limit=DELIVERY_LIMIT_SECONDS,
            what="every email once the server is back",
            log=log,
        )
        wait_for(lambda: settled(redis, ids), limit=DELIVERY_LIMIT_SECONDS, what="the queue to settle", log=log)

    assert all(count == 1 for count in handler.received.values())
    assert reports(redis, "sent") == set(ids)
    assert queues.rq_queue(queues.NOTIFICATIONS, redis).failed_job_registry.count == 0


class Stamping(Counting):
    """Counts like :class:`Counting` and notes when each message was accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted_at: list[float] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.accepted_at.append(time.time())
        return await super().handle_DATA(server, session, envelope)


def test_the_rate_limit_paces_two_workers_without_dropping_or_spending_retries(
    redis: Redis, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    handler = Stamping()
    count = 6
    with SmtpServer(handler) as server:
        ids = enqueue_batch(redis, count)
        # 20 a minute is one every 3 s, in one bucket for both workers: a job whose slot is up
        # to 5 s ahead sleeps for it, one whose slot is further ahead is scheduled again.
        start_worker(server.port, HANDOFF_SMTP_RATE_PER_MINUTE="20")
        start_worker(server.port, HANDOFF_SMTP_RATE_PER_MINUTE="20")
        wait_for(
            lambda: set(handler.received) == message_ids(ids),
            limit=DELIVERY_LIMIT_SECONDS,
            what="every email under the rate limit",
            log=log,
        )
        wait_for(lambda: settled(redis, ids), limit=DELIVERY_LIMIT_SECONDS, what="the queue to settle", log=log)

    assert all(n == 1 for n in handler.received.values())
    # A lower bound only (a slow machine spreads them further): 6 emails at one per 3 s need
    # 15 s; a second of slack for when each send started after its slot.
    assert handler.accepted_at[-1] - handler.accepted_at[0] >= (count - 1) * 3 - 1
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)
    jobs = [queue.fetch_job(job_id) for job_id in ids]
    assert any(job.number_of_retries for job in jobs)  # some were scheduled again…
    retries = queues.ROUTES[queues.NOTIFICATIONS].retry.max
    assert all(job.retries_left == retries for job in jobs)  # …at no cost to their retries
    assert reports(redis, "sent") == set(ids) and reports(redis, "deferred") == set()
    assert queue.failed_job_registry.count == 0
