"""How many SQL statements one referral's create runs, by statement, and what a create costs the
process in wall and CPU time, the event loop's thread apart (not a test: pytest does not
collect it). A figure that needs no quiet machine: each statement costs the event loop SQLAlchemy
and driver work (about 0.1 ms on SQLite, more on PostgreSQL, whose every statement is a round
trip), whatever else the machine is doing.

    .venv/bin/python -m tests.bench.count_statements [--creates 20] [--urgency-reason CODE]

Makes a fresh SQLite referrals database in a temporary directory (the test suite's seed: two
staff, a handful of partners), then issues ``--creates`` referrals through the service (as
``POST /api/v1/referrals`` does, ranked suggestions choosing the partners) and prints the
statements per create, grouped by their first words, then the time per create over ``--timed``
more (in this process, no HTTP: the create alone).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from pathlib import Path

import msgspec
from sqlalchemy import event

from services.referrals import bootstrap
from services.referrals.intake import ReferralDraft
from shared.auth import Staff
from shared.config import load_settings
from tests.support.referrals import CLIENT, CONSENT, seed

TESS = Staff(id="", email="tess@clinic.example", role="therapist")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=20)
    parser.add_argument("--reason", default="calf_swelling_one_side", help="the referral's one reason")
    parser.add_argument("--timed", type=int, default=500, help="creates timed after the counted ones")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="count-statements-") as tmp:
        settings = load_settings(
            {"HANDOFF_DATA_DIR": tmp, "HANDOFF_REFERRALS_DB_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'r.db'}"}
        )
        seed(settings)
        return asyncio.run(_count(settings, args.creates, args.reason, args.timed))


async def _count(settings, creates: int, reason: str, timed: int) -> dict[str, float]:
    runtime = bootstrap.build(settings)
    seen: collections.Counter[str] = collections.Counter()
    try:
        staff = await _therapist(runtime)
        draft = msgspec.convert({"client": CLIENT, "consent": CONSENT, "reasons": [reason]}, ReferralDraft)
        await runtime.referrals.create(staff=staff, draft=draft)  # warm: caches, first connection

        def count(_conn, _cursor, statement: str, *_args: object) -> None:
            seen[" ".join(statement.split()[:3])[:60]] += 1

        event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
        for _ in range(creates):
            await runtime.referrals.create(staff=staff, draft=draft)
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)
        wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
        for _ in range(timed):
            await runtime.referrals.create(staff=staff, draft=draft)
        if timed:
            per = {
                "wall": time.perf_counter() - wall,
                "CPU": time.process_time() - cpu,
                "the event loop's thread": time.thread_time() - loop,
            }
            print("per create, " + ", ".join(f"{name} {took / timed * 1000:.2f} ms" for name, took in per.items()))
    finally:
        await runtime.close()
    per_create = {name: n / creates for name, n in seen.most_common()}
    for name, n in per_create.items():
        print(f"{n:5.1f}  {name}")
    print(f"{sum(per_create.values()):5.1f}  statements per create in all")
    return per_create


async def _therapist(runtime: bootstrap.Runtime) -> Staff:
    from sqlalchemy import select

    from services.referrals.storage import staff_users

    async with runtime.sessions() as session:
        staff_id = (
            await session.execute(select(staff_users.c.id).where(staff_users.c.email == TESS.email))
        ).scalar_one()
    return msgspec.structs.replace(TESS, id=staff_id)


if __name__ == "__main__":
    main()
