"""The referrals service's partner replica keeps up with the directory (issue 16, item 13): a
20,000-row import once took over 7 minutes to reach it, one message and one job per partner, and
meanwhile paused or re-addressed partners were still offered referrals. Changes now travel in
batches and are applied a batch per transaction. The directory's service and relay and the
referrals worker (``--burst``) on a real Redis and databases (the referrals one on PostgreSQL
too, when configured)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis import Redis
from sqlalchemy import select

from services.directory import bootstrap as directory_bootstrap
from services.directory import csv_io
from services.directory.storage import MIGRATIONS as DIRECTORY_MIGRATIONS
from services.referrals import worker
from services.referrals.storage import MIGRATIONS as REFERRALS_MIGRATIONS
from services.referrals.storage import partners as replica
from shared import database, queues
from shared.config import Settings, load_settings

ROWS = 1_200


def partners_csv(count: int) -> str:
    rows = "".join(f"Partner {n},physical_therapy,p{n}@pt.example,33701\n" for n in range(count))
    return "name,category,email,postal_code\n" + rows


def replica_rows(settings: Settings) -> dict[str, tuple[int, str, str]]:
    """The replica: partner id → (version, status, email)."""

    async def read() -> dict[str, tuple[int, str, str]]:
        engine = database.create_engine(settings.db_url("referrals"))
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(replica.c.id, replica.c.version, replica.c.status, replica.c.email)
                )
                return {row.id: (row.version, row.status, row.email) for row in rows}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_an_import_reaches_the_replica_in_a_few_batched_jobs(tmp_path: Path, db_url: str, redis_url: str) -> None:
    settings = load_settings(environ={}, data_dir=str(tmp_path), redis_url=redis_url, referrals_db_url=db_url)
    database.upgrade(migrations=DIRECTORY_MIGRATIONS, url=settings.db_url("directory"))
    database.upgrade(migrations=REFERRALS_MIGRATIONS, url=settings.db_url("referrals"))

    async def directory(change) -> object:
        runtime = directory_bootstrap.build(settings, use="cli")
        try:
            done = await change(runtime.directory)
            await runtime.relay.flush()
            return done
        finally:
            await runtime.close()

    report = asyncio.run(directory(lambda d: d.import_rows(csv_io.read_rows(partners_csv(ROWS)))))
    assert report.created == ROWS
    jobs = len(queues.rq_queue(queues.REFERRALS, Redis.from_url(redis_url)))
    assert jobs <= 3, f"{jobs} jobs for {ROWS} partners"
    worker.main(settings, burst=True)
    stored = replica_rows(settings)
    assert len(stored) == ROWS and {version for version, _, _ in stored.values()} == {1}

    # Then one partner paused and another re-addressed: each its own message, applied in order.
    first, second = sorted(stored)[:2]
    asyncio.run(directory(lambda d: d.update(partner_id=first, version=1, status="paused")))
    asyncio.run(directory(lambda d: d.update(partner_id=second, version=1, changes={"email": "new@pt.example"})))
    worker.main(settings, burst=True)
    stored = replica_rows(settings)
    assert stored[first][:2] == (2, "paused") and stored[second] == (2, "active", "new@pt.example")
    # Republishing everything changes nothing: the replica already holds every version.
    asyncio.run(directory(lambda d: d.republish()))
    worker.main(settings, burst=True)
    assert replica_rows(settings) == stored
