"""The referrals composition root: :func:`build` makes one process's runtime (web app, worker,
``handoff user``), used by tests too. Nothing connects until the runtime is first used."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from services.referrals import rules as rules_module
from services.referrals.service import Clock, Referrals, system_clock
from services.referrals.storage import outbox
from shared import database, redis_client
from shared.config import Settings
from shared.outbox import Relay
from shared.revocation import Revocations


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker
    redis: Redis
    relay: Relay
    referrals: Referrals
    # Revoked staff tokens and ended sign-ins, checked on every staff request (shared.revocation).
    revocations: Revocations
    rules: rules_module.Rules = field(repr=False)

    async def close(self) -> None:
        await self.engine.dispose()
        self.redis.close()


def build(settings: Settings, *, clock: Clock = system_clock, use: redis_client.Use = "web") -> Runtime:
    """The runtime of a process that serves requests, works jobs or runs a command (``use``)."""
    rules = rules_module.load()  # Fails fast, naming the line, before anything connects.
    # One SQLite connection per process: requests queue for it in order rather than sleeping in
    # SQLite's busy handler (see shared.database.create_engine).
    engine = database.create_engine(
        settings.db_url("referrals"), sqlite_connections=1, pool=database.Pool.from_settings(settings)
    )
    sessions = database.sessions(engine)
    redis = redis_client.connect(settings.redis_url, use=use)
    relay = Relay(sessions=sessions, table=outbox, redis=redis, interval=settings.relay_interval_seconds)
    referrals = Referrals(sessions=sessions, rules=rules, settings=settings, clock=clock)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        relay=relay,
        referrals=referrals,
        revocations=Revocations.for_settings(redis, settings),
        rules=rules,
    )
