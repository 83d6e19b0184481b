"""Workers outlive Redis outages: real worker processes (``python -m services.cli worker …``) on a
private Redis that is stopped (mid-job, at the worker's start, while it waits for work) and started
again on the same port. The same process goes on working the jobs enqueued once Redis is back.

A worker's Redis client rides out a short outage inside each call (see shared.redis_client); the
first two cases keep Redis away until the worker has said it gave up waiting, so that what comes
after the client's patience is tested too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from redis import Redis
from rq.registry import ScheduledJobRegistry

from services.dev import processes
from services.dev.ports import free_port
from services.dev.redis_server import RedisServer
from shared import queues
from shared.messages import EmailContext, PartnerChanged, PartnerSnapshot, SendEmail

ROOT = Path(__file__).resolve().parents[2]
# A restart as the fault drills do it.
REDIS_DOWN_SECONDS = 5
# Generous limits for other processes, never asserted as speed.
LIMIT_SECONDS = 60
LOST = "worker lost Redis"


class HoldingSmtp:
    """An SMTP handler that notes each Message-ID and keeps its "250" for the first message until
    ``release`` is set: the notifier is then inside a job."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:
        content = envelope.original_content or envelope.content
        self.received.append(
            next(
                line.split(b":", 1)[1].strip().decode()
                for line in content.splitlines()
                if line.lower().startswith(b"message-id:")
            )
        )
        if len(self.received) == 1:
            self.holding.set()
            await asyncio.to_thread(self.release.wait)
        return "250 Message accepted for delivery"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own (not yet started), to stop and start again on the same port."""
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def start_worker(tmp_path: Path, private_redis: RedisServer) -> Iterator[Callable[..., subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    log = tmp_path / "worker.log"

    def start(name: str, **settings: str) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
        env.update(HANDOFF_REDIS_URL=private_redis.url, HANDOFF_DATA_DIR=str(tmp_path), **settings)
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "worker", name],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=processes.die_with_parent,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        processes.stop(process, timeout=20)


def logged(tmp_path: Path) -> str:
    path = tmp_path / "worker.log"
    return path.read_text(errors="replace") if path.exists() else ""


def wait_for(condition: Callable[[], bool], *, what: str, tmp_path: Path) -> None:
    deadline = time.monotonic() + LIMIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting {LIMIT_SECONDS} s for {what}\n{logged(tmp_path)[-4000:]}")
        time.sleep(0.1)


def finished(redis_url: str, queue: str, job_id: str) -> bool:
    with Redis.from_url(redis_url) as redis:
        job = queues.rq_queue(queue, redis).fetch_job(job_id)
        return job is not None and job.get_status() == "finished"


def email(notification_id: str) -> SendEmail:
    return SendEmail(
        notification_id=notification_id,
        kind="offer",
        to="Ruiz PT <intake@ruiz.example>",
        referral_id="r-1",
        context=EmailContext(
            recipient_name="Ruiz Physical Therapy",
            partner_name="Ruiz Physical Therapy",
            reference="HX-1234",
            urgency="urgent",
            action_url="http://127.0.0.1:8002/respond/tok3n.abc",
            expires_at=datetime(2026, 5, 12, 21, 0, tzinfo=UTC),
        ),
    )


def partner_changed(version: int) -> PartnerChanged:
    snapshot = PartnerSnapshot(
        id="pt1",
        slug="pt1",
        name="Bay Physio",
        category="physical_therapy",
        email="pt1@partners.example",
        status="active",
    )
    return PartnerChanged(partner=snapshot, version=version, changed_at=datetime.now(UTC))


def enqueue(redis_url: str, message: SendEmail | PartnerChanged, job_id: str) -> None:
    with Redis.from_url(redis_url) as redis:
        assert queues.enqueue(redis, message, job_id=job_id)


@contextlib.contextmanager
def smtp_server(handler: HoldingSmtp) -> Iterator[int]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        handler.release.set()
        controller.stop()


def test_the_notifier_outlives_redis_stopping_in_the_middle_of_a_job_and_sends_once(
    private_redis: RedisServer, start_worker: Callable[..., subprocess.Popen], tmp_path: Path
) -> None:
    handler = HoldingSmtp()
    with smtp_server(handler) as smtp_port:
        private_redis.start()
        worker = start_worker("notifier", HANDOFF_SMTP_PORT=str(smtp_port))
        enqueue(private_redis.url, email("before"), "before")
        wait_for(handler.holding.is_set, what="the first email at the SMTP server", tmp_path=tmp_path)

        private_redis.stop()
        # The server accepts the email with Redis gone: the worker must not lose the fact (a
        # retry would send it again), nor itself.
        handler.release.set()
        wait_for(
            lambda: "waiting for Redis to record it" in logged(tmp_path),
            what="the worker to give up waiting once",
            tmp_path=tmp_path,
        )
        assert worker.poll() is None, logged(tmp_path)
        private_redis.start()

        enqueue(private_redis.url, email("after"), "after")
        for job_id in ("before", "after"):
            wait_for(
                lambda job_id=job_id: finished(private_redis.url, queues.NOTIFICATIONS, job_id),
                what=f"job {job_id} to finish",
                tmp_path=tmp_path,
            )

    assert worker.poll() is None, logged(tmp_path)
    assert sorted(handler.received) == ["<after@handoff.local>", "<before@handoff.local>"]


def test_the_referrals_worker_waits_for_redis_at_start_and_outlives_a_restart(
    private_redis: RedisServer, start_worker: Callable[..., subprocess.Popen], tmp_path: Path
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'referrals.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
    env.update(HANDOFF_DATA_DIR=str(tmp_path), HANDOFF_REFERRALS_DB_URL=database)
    subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade", "referrals"], cwd=ROOT, env=env, check=True)

    # Redis is away when the worker starts: it keeps trying (the sweep's scheduling included).
    worker = start_worker("referrals", HANDOFF_REFERRALS_DB_URL=database)
    wait_for(lambda: LOST in logged(tmp_path), what="the worker to give up waiting once", tmp_path=tmp_path)
    time.sleep(REDIS_DOWN_SECONDS)
    assert worker.poll() is None, logged(tmp_path)
    private_redis.start()

    def sweep_scheduled() -> bool:
        with Redis.from_url(private_redis.url) as redis:
            registry = ScheduledJobRegistry(queues.REFERRALS, connection=redis)
            return any(job_id.startswith("referrals-sweep-") for job_id in registry.get_job_ids())

    wait_for(sweep_scheduled, what="the deadline sweep on the schedule", tmp_path=tmp_path)
    enqueue(private_redis.url, partner_changed(1), "partner-1")
    wait_for(lambda: finished(private_redis.url, queues.REFERRALS, "partner-1"), what="partner-1", tmp_path=tmp_path)

    # Redis restarted while the worker waits for work.
    private_redis.stop()
    time.sleep(REDIS_DOWN_SECONDS)
    private_redis.start()
    enqueue(private_redis.url, partner_changed(2), "partner-2")
    wait_for(lambda: finished(private_redis.url, queues.REFERRALS, "partner-2"), what="partner-2", tmp_path=tmp_path)
    assert worker.poll() is None, logged(tmp_path)
