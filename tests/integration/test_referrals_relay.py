"""The referrals outbox relay on a real database and Redis: a row committed while a flush is
running leaves at once, not at the relay's next tick (the nudge is not lost)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from redis import Redis

from services.referrals.storage import MIGRATIONS, outbox
from shared import database, queues
from shared import outbox as outbox_module
from shared.messages import EmailContext, SendEmail

# Far longer than the test waits: only a nudge can make the second row leave in time.
TICK_SECONDS = 120.0


class HeldRelay(outbox_module.Relay):
    """A relay whose first enqueue waits until the test lets it go."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def _enqueue_all(self, rows: list) -> list[str]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(timeout=30)
        return super()._enqueue_all(rows)


def email(notification_id: str) -> SendEmail:
    return SendEmail(
        notification_id=notification_id,
        kind="offer",
        to="p@partners.example",
        context=EmailContext(reference="HX-TEST0001", urgency="routine", action_url="http://localhost:8002/respond/x"),
    )


def test_a_nudge_during_a_flush_is_not_lost(tmp_path: Path, redis_url: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'referrals.db'}"
    database.upgrade(migrations=MIGRATIONS, url=url)
    redis = Redis.from_url(redis_url)
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)

    async def scenario() -> list[str]:
        engine = database.create_engine(url)
        sessions = database.sessions(engine)
        relay = HeldRelay(sessions=sessions, table=outbox, redis=redis, interval=TICK_SECONDS)

        async def add(notification_id: str) -> None:
            async with sessions.begin() as session:
                await outbox_module.add(session, outbox, email(notification_id), message_id=notification_id)
            relay.nudge()

        running = asyncio.create_task(relay.run())
        try:
            await add("first")
            await asyncio.to_thread(relay.entered.wait, 30)  # the first flush is now mid-way
            await add("second")  # committed and nudged while that flush runs
            relay.release.set()
            for _ in range(200):  # up to ~10 s, far below the tick
                if len(queue.get_job_ids()) == 2:
                    break
                await asyncio.sleep(0.05)
            return queue.get_job_ids()
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await engine.dispose()

    assert sorted(asyncio.run(scenario())) == ["first", "second"]
    redis.close()
