"""The referrals outbox relay on a real database and Redis: a row committed while a flush is
running leaves at once, not at the relay's next tick (its hand-off is not lost)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from redis import Redis

from services.referrals.storage import MIGRATIONS, outbox
from shared import database, queues
from shared import outbox as outbox_module
from shared.messages import EmailContext, SendEmail

# Far longer than the test waits: only the commit's hand-off can make the second row leave in time.
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


def test_a_commit_during_a_flush_is_not_lost(tmp_path: Path, redis_url: str) -> None:
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

        running = asyncio.create_task(relay.run())
        try:
            await add("first")
            await asyncio.to_thread(relay.entered.wait, 30)  # the first flush is now mid-way
            await add("second")  # committed, and handed over, while that flush runs
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


class CountingRelay(outbox_module.Relay):
    """A relay that counts its flushes (reads of the outbox table)."""

    flushes = 0

    async def flush(self) -> int:
        self.flushes += 1
        return await super().flush()


def test_a_commit_hands_its_rows_over_and_a_rollback_hands_nothing(tmp_path: Path, redis_url: str) -> None:
    """The commit wakes the relay with its rows (no nudge, no read of the outbox); a transaction
    that rolled back hands nothing over, and nothing of it is ever sent."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'referrals.db'}"
    database.upgrade(migrations=MIGRATIONS, url=url)
    redis = Redis.from_url(redis_url)
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)

    class Refused(Exception):
        pass

    async def scenario() -> tuple[list[str], int, int]:
        engine = database.create_engine(url)
        sessions = database.sessions(engine)
        relay = CountingRelay(sessions=sessions, table=outbox, redis=redis, interval=TICK_SECONDS)
        running = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(0.2)  # the first round's flush (of nothing) is done
            try:
                async with sessions.begin() as session:
                    await outbox_module.add(session, outbox, email("rolled-back"), message_id="rolled-back")
                    raise Refused
            except Refused:
                pass
            async with sessions.begin() as session:
                await outbox_module.add(session, outbox, email("committed"), message_id="committed")
            for _ in range(200):  # up to ~10 s, far below the tick
                if queue.get_job_ids():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # the relay marks what it sent
            async with sessions() as session:
                unsent = len((await session.execute(outbox.select().where(outbox.c.sent_at.is_(None)))).all())
            return queue.get_job_ids(), relay.flushes, unsent
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await engine.dispose()

    jobs, flushes, unsent = asyncio.run(scenario())
    assert jobs == ["committed"]
    assert flushes == 1, "only the relay's first round reads the outbox; the commit handed the row over"
    assert unsent == 0
    redis.close()


def test_rows_of_a_rolled_back_savepoint_are_never_sent(tmp_path: Path, redis_url: str) -> None:
    """A savepoint rolled back inside a transaction that commits: its row is gone, so the hand-off
    is dropped and the flush sends what was committed, never the undone row."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'referrals.db'}"
    database.upgrade(migrations=MIGRATIONS, url=url)
    redis = Redis.from_url(redis_url)
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)

    async def scenario() -> list[str]:
        engine = database.create_engine(url)
        sessions = database.sessions(engine)
        relay = outbox_module.Relay(sessions=sessions, table=outbox, redis=redis, interval=0.5)
        running = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(0.1)
            async with sessions.begin() as session:
                await outbox_module.add(session, outbox, email("kept"), message_id="kept")
                savepoint = await session.begin_nested()
                await outbox_module.add(session, outbox, email("undone"), message_id="undone")
                await savepoint.rollback()
            for _ in range(200):
                if queue.get_job_ids():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.2)  # two more ticks: time for anything else to leave
            return queue.get_job_ids()
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await engine.dispose()

    assert asyncio.run(scenario()) == ["kept"]
    redis.close()
