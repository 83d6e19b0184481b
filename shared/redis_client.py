"""Every Redis client a Handoff process opens comes from here, with timeouts, retries and health
checks chosen for what the client is for (``use``):

- ``web``: a request waits on it, so it fails fast. ``/ready`` and a request that finds Redis
  away answer 503 within a few seconds: one try, one retry, each bounded by a 1 s connect and a
  2 s read timeout. The web processes' outbox relays, rate limits and revocation checks use it.
- ``worker``: a job waits on it, and an RQ worker blocks on its queue for up to the dequeue
  timeout, so the read timeout is that much longer (``blocks_for``, see :mod:`shared.worker`).
  Its retries ride out a Redis restart inside any call (:func:`patience`: at least about 9 s):
  a job waits rather than failing, and RQ's own bookkeeping after a job does not end its work
  loop (which would leave the job to be found abandoned a minute later). Longer outages are
  :func:`shared.worker.run`'s.
- ``cli``: a person waits on it, once: patient timeouts, a few retries, no health checks.

Between tries a client waits between half and all of ``backoff_base`` doubled per failure (up
to ``backoff_cap``). Clients connect on their first command, never here, and reconnect by
themselves after Redis restarts; a health check (a PING before a command on a connection idle
that long) finds a connection that died while idle before a command is lost on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis.asyncio
import redis.asyncio.retry
from redis import Redis
from redis.backoff import EqualJitterBackoff
from redis.retry import Retry

Use = Literal["web", "worker", "cli"]


@dataclass(frozen=True, kw_only=True)
class Profile:
    """How patient one kind of client is (times in seconds): a command is tried ``1 + retries``
    times."""

    connect_timeout: float
    read_timeout: float
    retries: int
    backoff_base: float
    backoff_cap: float
    health_check_interval: int


PROFILES: dict[Use, Profile] = {
    "web": Profile(
        connect_timeout=1, read_timeout=2, retries=1, backoff_base=0.05, backoff_cap=0.25, health_check_interval=10
    ),
    "worker": Profile(
        connect_timeout=2, read_timeout=10, retries=10, backoff_base=0.25, backoff_cap=2, health_check_interval=10
    ),
    "cli": Profile(
        connect_timeout=5, read_timeout=10, retries=3, backoff_base=0.25, backoff_cap=2, health_check_interval=0
    ),
}


def connect(url: str, *, use: Use, blocks_for: float = 0) -> Redis:
    """A client of the Redis at ``url`` for ``use``. ``blocks_for``: the longest a command on this
    client waits on the server by design (a worker's blocking dequeue); the read timeout is that
    much longer, so the wait is never taken for a dead connection."""
    profile = PROFILES[use]
    return Redis.from_url(
        url,
        socket_connect_timeout=profile.connect_timeout,
        socket_timeout=profile.read_timeout + blocks_for,
        retry=Retry(_backoff(profile), profile.retries),
        health_check_interval=profile.health_check_interval,
    )


def connect_async(url: str, *, use: Use) -> redis.asyncio.Redis:
    """The asyncio client of the Redis at ``url`` for ``use``, as :func:`connect`."""
    profile = PROFILES[use]
    return redis.asyncio.Redis.from_url(
        url,
        socket_connect_timeout=profile.connect_timeout,
        socket_timeout=profile.read_timeout,
        retry=redis.asyncio.retry.Retry(_backoff(profile), profile.retries),
        health_check_interval=profile.health_check_interval,
    )


def patience(use: Use) -> float:
    """The shortest a client for ``use`` keeps trying a command while Redis refuses connections:
    the least it waits between its tries."""
    profile = PROFILES[use]
    return sum(
        min(profile.backoff_cap, profile.backoff_base * 2**failures) / 2 for failures in range(1, profile.retries + 1)
    )


def _backoff(profile: Profile) -> EqualJitterBackoff:
    # Jittered, so that the processes cut off by one restart do not all return at the same instant.
    return EqualJitterBackoff(cap=profile.backoff_cap, base=profile.backoff_base)
