"""The outbox relay's loop stops when its app shuts down, whenever the cancel lands: also just as a
a commit wakes it. On Python 3.11 ``asyncio.wait_for`` swallowed a cancel in that moment,
and the relay outlived the app (a test client's exit, or a server's shutdown, then waited forever)."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.outbox import Relay


class Idle(Relay):
    """A relay with nothing to send: only its loop is under test."""

    def __init__(self) -> None:
        super().__init__(sessions=async_sessionmaker(), table=None, redis=None, interval=0.05)  # type: ignore[arg-type]

    async def flush(self) -> int:
        return 0


def test_a_relay_cancelled_as_a_commit_wakes_it_stops() -> None:
    async def shut_down_while_commitd() -> bool:
        relay = Idle()
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0.01)  # the relay is waiting for a commit or its tick
        relay._wake.set()  # what a commit's hand-off does
        await asyncio.sleep(0)  # the commit has woken the wait, the relay has not resumed yet
        task.cancel()
        # Bounded so that a relay that ignored the cancel fails the test instead of hanging it.
        await asyncio.wait({task}, timeout=5)
        if not task.done():
            task.cancel()
            return False
        return task.cancelled()

    stopped = [asyncio.run(shut_down_while_commitd()) for _ in range(5)]
    assert stopped == [True] * 5
