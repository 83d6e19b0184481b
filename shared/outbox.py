"""Transactional outbox: a service writes the messages it must send into its own database in the
same transaction as the change they describe; a relay enqueues them on Redis afterwards.

No dual write can then lose a message: if Redis is down the rows wait, and if the relay dies
between enqueueing and marking a row sent, enqueueing it again is refused because the outbox id
is the RQ job id (see :func:`shared.queues.enqueue`).

The commit wakes the relay: rows staged in a session of the relay's own session maker are handed
to it when that transaction commits (a SQLAlchemy ``after_commit`` hook), and it enqueues them
at once without reading them back, then marks them sent. Anything else (rows staged by another
process, a hand-off lost to a crash or an outage, a transaction that rolled anything back) is
found by the flush at every tick, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

import anyio.to_thread
from opentelemetry.trace import SpanKind
from redis import Redis
from sqlalchemy import Column, DateTime, Index, Insert, MetaData, String, Table, Text, event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from shared import codec, queues, telemetry
from shared.messages import Message

log = logging.getLogger(__name__)

BATCH = 200
# Keys in a session's ``info``: the relay its maker hands commits to, and what it staged so far.
_RELAY = "handoff.outbox.relay"
_STAGED = "handoff.outbox.staged"
_HOOKED = "handoff.outbox.hooked"


class Staged(NamedTuple):
    """An outbox row as the relay enqueues it."""

    id: str
    queue: str
    payload: str
    traceparent: str | None


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table, declared in each publishing service's own metadata."""
    return Table(
        "outbox",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("queue", String(40), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        # The trace context of the request or job that staged the message (W3C traceparent), so
        # that its trace goes on in the relay and the consumer; None when traces are off.
        Column("traceparent", String(55), nullable=True),
        Index("ix_outbox_unsent", "sent_at", "created_at"),
    )


async def add(session: AsyncSession, table: Table, message: Message, *, message_id: str | None = None) -> str:
    """Stage ``message`` in the caller's transaction; returns its outbox id (the future job id)."""
    row = Staged(
        id=message_id or str(uuid.uuid4()),
        queue=queues.queue_for(message),
        payload=codec.encode(message),
        traceparent=telemetry.traceparent(),
    )
    await session.execute(_insert(table), {**row._asdict(), "created_at": datetime.now(UTC)})
    relay = session.info.get(_RELAY)
    if isinstance(relay, Relay):
        relay.hold(session.sync_session, row)
    return row.id


@functools.cache
def _insert(table: Table) -> Insert:
    # Built once per outbox table: building the statement at each call cost more of the event
    # loop's time than SQLite takes to run it.
    return insert(table)


class Relay:
    """Moves unsent outbox rows to their RQ queues. Safe to run in several processes at once."""

    def __init__(self, *, sessions: async_sessionmaker, table: Table, redis: Redis, interval: float = 0.5) -> None:
        self._sessions = sessions
        self._table = table
        self._redis = redis
        self._interval = interval
        self._wake = asyncio.Event()
        # Rows of committed transactions, handed over by their sessions' after_commit hook.
        self._committed: list[Staged] = []
        self._running = False
        # Every session of this maker knows its relay (a session's info starts as a copy of this).
        sessions.configure(info={**sessions.kw.get("info", {}), _RELAY: self})

    def hold(self, session: Session, row: Staged) -> None:
        """Keep ``row``, just staged in ``session``, to hand over when its transaction commits.
        Any rollback in that session, a savepoint's included, drops what it held: those rows,
        if they were committed after all, leave with the next flush. Nothing is held while the
        relay is not running (a worker or command flushes after its own commits)."""
        if not self._running:
            return
        if not session.info.get(_HOOKED):
            session.info[_HOOKED] = True
            event.listen(session, "after_commit", self._handed_over)
            event.listen(session, "after_soft_rollback", _forget)
        session.info.setdefault(_STAGED, []).append(row)

    def _handed_over(self, session: Session) -> None:
        held = session.info.pop(_STAGED, None)
        if held:
            self._committed.extend(held)
            self._wake.set()

    async def publish_committed(self) -> int:
        """Enqueue the rows handed over by commits, without reading them back, then mark them
        sent; returns how many. If Redis or the database fails part way, the rows are still
        unsent in the table and the next flush sends them (enqueueing twice is refused)."""
        rows, self._committed = self._committed, []
        if not rows:
            return 0
        sent = await anyio.to_thread.run_sync(self._enqueue_all, rows)
        async with self._sessions.begin() as session:
            await session.execute(
                update(self._table).where(self._table.c.id.in_(sent)).values(sent_at=datetime.now(UTC))
            )
        return len(sent)

    async def flush(self) -> int:
        """Enqueue every unsent row; returns how many rows were marked sent."""
        total = 0
        while True:
            async with self._sessions() as session:
                rows = (
                    await session.execute(
                        select(self._table.c.id, self._table.c.queue, self._table.c.payload, self._table.c.traceparent)
                        .where(self._table.c.sent_at.is_(None))
                        .order_by(self._table.c.created_at, self._table.c.id)
                        .limit(BATCH)
                    )
                ).all()
            if not rows:
                return total
            sent = await anyio.to_thread.run_sync(self._enqueue_all, rows)
            async with self._sessions.begin() as session:
                await session.execute(
                    update(self._table).where(self._table.c.id.in_(sent)).values(sent_at=datetime.now(UTC))
                )
            total += len(sent)
            if len(rows) < BATCH:
                return total

    def _enqueue_all(self, rows: list[Staged]) -> list[str]:
        sent = []
        for row in rows:
            with telemetry.span(f"outbox relay {row.queue}", parent=row.traceparent, kind=SpanKind.PRODUCER):
                queues.enqueue(self._redis, codec.decode(row.payload), job_id=row.id)
            sent.append(row.id)
        return sent

    async def run(self) -> None:
        """Forever: enqueue what commits hand over the moment they do, and flush at every tick.
        Outages are logged and retried."""
        self._running = True
        try:
            await self._rounds()
        finally:
            self._running = False
            self._committed = []

    async def _rounds(self) -> None:
        failures = 0
        flush = True
        while True:
            # Cleared before working, not after: a commit while this round runs must wake the
            # next one at once instead of waiting for the next tick.
            self._wake.clear()
            try:
                await self.publish_committed()
                if flush or failures:
                    await self.flush()
                failures = 0
            except Exception as exc:  # Redis or the database is away: the rows wait, we retry.
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("outbox relay could not flush (attempt %d): %s", failures, exc)
            delay = self._interval if failures == 0 else min(self._interval * 2**failures, 10.0)
            # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for swallows a cancel that
            # lands just as a commit wakes it, and the relay then outlived its app's shutdown.
            flush = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
                    flush = False


def _forget(session: Session, _previous: object) -> None:
    session.info.pop(_STAGED, None)
