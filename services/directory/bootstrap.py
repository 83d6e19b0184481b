"""The directory's composition root: :func:`build` makes one process's runtime (the web app's
lifespan, ``handoff seed`` and ``handoff partners``), used by tests too. Nothing connects until
the runtime is first used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from redis import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from services.directory import storage
from services.directory.listing_sweep import Cycle, ListingSweep
from services.directory.listings import Listings
from services.directory.service import PartnerService
from shared import database, redis_client
from shared.config import Settings
from shared.outbox import Relay
from shared.revocation import Revocations


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    reads: AsyncEngine  # the engine itself, except on SQLite (see shared.database.create_engine)
    redis: Redis
    relay: Relay
    directory: PartnerService
    # The self-service listing: manage links, the partner's changes, the admin's review.
    listings: Listings
    # The directory worker's sweep: confirmation cycle, reopening days, licence warnings.
    sweep: ListingSweep
    # Which staff tokens the referrals service revoked (the directory has no staff accounts).
    revocations: Revocations

    async def close(self) -> None:
        self.redis.close()
        if self.reads is not self.engine:
            await self.reads.dispose()
        await self.engine.dispose()


def build(settings: Settings, *, use: redis_client.Use = "web", on_commit: Callable[[], None] | None = None) -> Runtime:
    """The runtime of a process that serves requests or runs a command (``use``). ``on_commit``
    is called after every commit that staged a message."""
    url = settings.db_url("directory")
    engine = database.create_engine(url, pool=database.Pool.from_settings(settings))
    # On SQLite, reads get their own engine whose transactions take no write lock.
    reads = database.create_engine(url, reads_only=True) if url.startswith("sqlite") else engine
    sessions: async_sessionmaker = database.sessions(engine)
    redis = redis_client.connect(settings.redis_url, use=use)
    relay = Relay(sessions=sessions, table=storage.outbox, redis=redis, interval=settings.relay_interval_seconds)

    def committed() -> None:
        # The relay needs no nudge: the commit itself hands it what was staged (shared.outbox).
        if on_commit is not None:
            on_commit()

    directory = PartnerService(sessions=sessions, nudge=committed, reads=reads)
    listings = Listings(
        directory=directory,
        sessions=sessions,
        reads=reads,
        keyring=settings.keyring(),
        base_url=settings.public_url("directory"),
        admin_email=settings.clinic_email,
        timezone=settings.clinic_timezone,
        nudge=committed,
    )
    return Runtime(
        settings=settings,
        engine=engine,
        reads=reads,
        redis=redis,
        relay=relay,
        directory=directory,
        listings=listings,
        sweep=ListingSweep(
            listings=listings,
            sessions=sessions,
            reads=reads,
            cycle=Cycle(
                every=timedelta(days=settings.attestation_days),
                grace=timedelta(days=settings.attestation_grace_days),
                unlist=settings.unlist_unconfirmed,
            ),
            admin_url=settings.public_url("directory"),
        ),
        revocations=Revocations.for_settings(redis, settings),
    )
