"""Transactional outbox: a service writes the messages it must send into its own database in the
same transaction as the change they describe; a relay enqueues them on Redis afterwards.

No dual write can then lose a message: if Redis is down the rows wait, and if the relay dies
between enqueueing and marking a row sent, enqueueing it again is refused because the outbox id
is the RQ job id (see :func:`shared.queues.enqueue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime

import anyio.to_thread
from opentelemetry.trace import SpanKind
from redis import Redis
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import codec, queues, telemetry
from shared.messages import Message

log = logging.getLogger(__name__)

BATCH = 200


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
    message_id = message_id or str(uuid.uuid4())
    await session.execute(
        insert(table).values(
            id=message_id,
            queue=queues.queue_for(message),
            payload=codec.encode(message),
            created_at=datetime.now(UTC),
            traceparent=telemetry.traceparent(),
        )
    )
    return message_id


class Relay:
    """Moves unsent outbox rows to their RQ queues. Safe to run in several processes at once."""

    def __init__(self, *, sessions: async_sessionmaker, table: Table, redis: Redis, interval: float = 0.5) -> None:
        self._sessions = sessions
        self._table = table
        self._redis = redis
        self._interval = interval
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        """Ask the running relay to flush now rather than at its next tick (after a commit)."""
        self._wake.set()

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

    def _enqueue_all(self, rows: list) -> list[str]:
        sent = []
        for row in rows:
            with telemetry.span(f"outbox relay {row.queue}", parent=row.traceparent, kind=SpanKind.PRODUCER):
                queues.enqueue(self._redis, codec.decode(row.payload), job_id=row.id)
            sent.append(row.id)
        return sent

    async def run(self) -> None:
        """Flush forever: at every tick, and at once when nudged. Outages are logged and retried."""
        failures = 0
        while True:
            # Cleared before flushing, not after: a nudge for a row committed while this flush
            # runs must wake the next one at once instead of being lost until the next tick.
            self._wake.clear()
            try:
                await self.flush()
                failures = 0
            except Exception as exc:  # Redis or the database is away: the rows wait, we retry.
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("outbox relay could not flush (attempt %d): %s", failures, exc)
            delay = self._interval if failures == 0 else min(self._interval * 2**failures, 10.0)
            # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for swallows a cancel that
            # lands just as a nudge wakes it, and the relay then outlived its app's shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
