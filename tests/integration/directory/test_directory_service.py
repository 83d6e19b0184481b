"""The directory's service layer and outbox relay on a real database and a real Redis: every
committed change is staged in the same transaction and enqueued exactly once."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import pytest
from redis import Redis
from sqlalchemy import func, select, update

from services.directory.domain import PartnerDetails, StaleVersion
from services.directory.fields import InvalidPartner, Location
from services.directory.search import Near, PartnerQuery
from services.directory.service import PartnerService
from services.directory.storage import MIGRATIONS, outbox
from shared import codec, database, queues
from shared.outbox import Relay

DETAILS = PartnerDetails(name="Bay Physical Therapy", category="physical_therapy", email="intake@baypt.example")


@dataclass
class World:
    service: PartnerService
    relay: Relay
    redis: Redis
    sessions: object
    nudges: list[int] = field(default_factory=list)

    def job_ids(self) -> list[str]:
        return queues.rq_queue(queues.REFERRALS, self.redis).job_ids

    async def outbox_count(self) -> int:
        async with self.sessions() as session:
            return (await session.execute(select(func.count()).select_from(outbox))).scalar_one()


def run(db_url: str, redis_url: str, scenario: Callable[[World], Awaitable[None]]) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    async def main() -> None:
        engine = database.create_engine(db_url)
        redis = Redis.from_url(redis_url)
        sessions = database.sessions(engine)
        nudges: list[int] = []
        world = World(
            service=PartnerService(sessions=sessions, nudge=lambda: nudges.append(1)),
            relay=Relay(sessions=sessions, table=outbox, redis=redis),
            redis=redis,
            sessions=sessions,
            nudges=nudges,
        )
        try:
            await scenario(world)
        finally:
            redis.close()
            await engine.dispose()

    asyncio.run(main())


def test_a_relay_that_flushes_twice_enqueues_once(db_url: str, redis_url: str) -> None:
    async def scenario(world: World) -> None:
        partner = await world.service.create(details=DETAILS)

        assert await world.relay.flush() == 1
        assert await world.relay.flush() == 0
        [job_id] = world.job_ids()

        # A relay that died after enqueueing but before marking the row sent sends it again:
        # the outbox id is the job id, so Redis still holds one job.
        async with world.sessions.begin() as session:
            await session.execute(update(outbox).values(sent_at=None))
        assert await world.relay.flush() == 1
        assert world.job_ids() == [job_id]

        job = queues.rq_queue(queues.REFERRALS, world.redis).fetch_job(job_id)
        message = codec.decode(job.args[0])
        assert (message.partner.id, message.version) == (partner.id, 1)

    run(db_url, redis_url, scenario)


def test_each_committed_change_stages_one_message_and_nudges_the_relay(db_url: str, redis_url: str) -> None:
    async def scenario(world: World) -> None:
        partner = await world.service.create(details=DETAILS)
        renamed = await world.service.update(partner_id=partner.id, version=1, changes={"name": "Bay PT"})
        unchanged = await world.service.update(partner_id=partner.id, version=2, changes={"name": "Bay PT"})
        archived = await world.service.archive(partner_id=partner.id)
        again = await world.service.archive(partner_id=partner.id)

        assert [p.version for p in (partner, renamed, unchanged, archived, again)] == [1, 2, 2, 3, 3]
        assert await world.outbox_count() == 3
        assert len(world.nudges) == 3
        assert await world.relay.flush() == 3
        versions = [codec.decode(j.args[0]).version for j in queues.rq_queue("referrals", world.redis).get_jobs()]
        assert versions == [1, 2, 3]

    run(db_url, redis_url, scenario)


def test_a_refused_change_stores_and_stages_nothing(db_url: str, redis_url: str) -> None:
    async def scenario(world: World) -> None:
        partner = await world.service.create(details=DETAILS)

        with pytest.raises(InvalidPartner):
            await world.service.update(partner_id=partner.id, version=1, changes={"email": "nope"})
        with pytest.raises(InvalidPartner):
            await world.service.create(details=PartnerDetails(name="X", category="astrology", email="x@y.example"))

        assert (await world.service.get(partner_id=partner.id)).details.email == DETAILS.email
        assert await world.outbox_count() == 1
        assert len(world.nudges) == 1

    run(db_url, redis_url, scenario)


def test_concurrent_edits_of_one_version_let_exactly_one_win(db_url: str, redis_url: str) -> None:
    async def scenario(world: World) -> None:
        partner = await world.service.create(details=DETAILS)

        results = await asyncio.gather(
            *(
                world.service.update(partner_id=partner.id, version=1, changes={"practice": f"Practice {n}"})
                for n in range(4)
            ),
            return_exceptions=True,
        )

        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1 and winners[0].version == 2
        assert all(isinstance(e, StaleVersion) and e.current_version == 2 for e in losers), losers
        assert await world.outbox_count() == 2

    run(db_url, redis_url, scenario)


def test_hidden_partners_are_found_only_when_asked_for(db_url: str, redis_url: str) -> None:
    async def scenario(world: World) -> None:
        unlisted = await world.service.create(details=replace(DETAILS, listed=False))
        pending = await world.service.create(details=DETAILS, status="pending")

        assert (await world.service.search(PartnerQuery())).partners == []
        for hidden in (unlisted, pending):
            assert (await world.service.get(partner_id=hidden.id, include_hidden=True)) == hidden
            assert (await world.service.get_by_slug(slug=hidden.slug, include_hidden=True)) == hidden
        assert {unlisted.slug, pending.slug} == {"bay-physical-therapy", "bay-physical-therapy-2"}

    run(db_url, redis_url, scenario)


def test_reads_do_not_wait_for_a_writer_on_sqlite(tmp_path) -> None:
    """The public pages keep answering during a long write (an import): on SQLite their reads
    use an engine whose transactions take no write lock."""
    from sqlalchemy import text

    url = f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}"
    database.upgrade(migrations=MIGRATIONS, url=url)

    async def scenario() -> None:
        engine = database.create_engine(url)
        reads = database.create_engine(url, reads_only=True)
        service = PartnerService(sessions=database.sessions(engine), reads=reads)
        await service.create(details=DETAILS)
        try:
            async with engine.begin() as writer:
                await writer.execute(text("UPDATE catalogue SET revision = revision + 1"))
                found = await asyncio.wait_for(service.search(PartnerQuery()), timeout=2)
                assert [p.details.name for p in found.partners] == [DETAILS.name]
                assert await asyncio.wait_for(service.catalogue_revision(), timeout=2) == 1
        finally:
            await reads.dispose()
            await engine.dispose()

    asyncio.run(scenario())


def test_a_near_search_pages_through_partners_nearest_first_dense_or_sparse(db_url: str, redis_url: str) -> None:
    """Near searches first look within a sixteenth and a quarter of the radius (dense places):
    every page, whichever circle found it, is what ranking the whole radius gives."""
    origin = Location(27.7731, -82.6400)
    rng = random.Random(19)
    # Dense within 2 km, then sparser out to 45 km, and a few outside the 50 km radius.
    spans = [2.0] * 30 + [12.0] * 12 + [45.0] * 8 + [80.0] * 4

    async def scenario(world: World) -> None:
        for n, span in enumerate(spans):
            km = rng.uniform(0, span)
            bearing = rng.uniform(0, 2 * math.pi)
            point = Location(
                origin.lat + km * math.cos(bearing) / 111.2,
                origin.lon + km * math.sin(bearing) / (111.2 * math.cos(math.radians(origin.lat))),
            )
            await world.service.create(details=replace(DETAILS, name=f"Partner {n:02d}", location=point))
        near = Near(origin=origin)
        everyone = [hit.partner for hit in (await world.service.search(PartnerQuery(), limit=100)).hits]
        truth = sorted(
            (p for p in everyone if near.squared_km(p.details.location) <= near.radius_km**2),
            key=lambda p: (near.squared_km(p.details.location), p.id),
        )
        assert 40 < len(truth) < len(spans)
        for limit in (1, 5, 20, 100):
            seen, cursor = [], None
            while True:
                page = await world.service.search(PartnerQuery(near=near), limit=limit, cursor=cursor)
                seen += [hit.partner.id for hit in page.hits]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen == [p.id for p in truth], limit

    run(db_url, redis_url, scenario)
