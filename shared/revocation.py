"""Staff tokens revoked before they expire.

A staff token is signed and lives ``HANDOFF_STAFF_TOKEN_TTL_MINUTES`` (8 hours by default). The
referrals service holds the staff accounts and checks them on every request; the directory has
only the token. So when referrals disables an account or changes its role (admin page or
``handoff user``), it records the moment here, in Redis, and the directory refuses every token
of that account issued up to that moment (:func:`shared.web.authenticate`) as it refuses an
invalid one. A login after the change gets a new token, which is accepted at once.

One key per account holds its latest revocation time in microseconds since the epoch. It expires
when every token it refuses has expired anyway (the token lifetime plus :data:`CLOCK_MARGIN`), so
the keys never pile up.

The two times compared come from two clocks: a token's issue time from the referrals process that
signed it, a revocation's from the process that revoked (the referrals service or the ``handoff``
command). Hosts keep NTP time; if the revoking host ran ahead by a second, a login within that
second after re-enabling an account is refused once and the next login works.

When Redis does not answer the check, tokens are accepted with a logged warning, as the rate
limits are (:mod:`shared.ratelimit`): a Redis outage must never lock every admin out of the
directory, and during it the directory only falls back to trusting tokens until they expire, as
it did before revocations existed. The referrals service never relies on this: it checks its
accounts table itself.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from redis import Redis
from redis.exceptions import RedisError

from shared.auth import StaffToken, from_microseconds, microseconds
from shared.config import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "handoff:staff-revoked:"
# Longer than any clock difference between the hosts that sign tokens and the Redis server.
CLOCK_MARGIN = timedelta(minutes=5)
# After Redis fails a check, tokens pass unchecked this long before it is asked again: an
# unreachable Redis would otherwise cost every staff request a connection timeout.
FAIL_OPEN_SECONDS = 5.0


def is_revoked(*, issued_at: datetime, revoked_at: datetime | None) -> bool:
    """Whether a token issued at ``issued_at`` is void after a revocation at ``revoked_at``. A
    token issued in the very microsecond of its revocation is void: the doubt goes against it."""
    return revoked_at is not None and issued_at <= revoked_at


class Revocations:
    """Revocation times in Redis, through a synchronous client called off the event loop (the
    client each service already holds)."""

    def __init__(self, redis: Redis, *, token_ttl: timedelta) -> None:
        self._redis = redis
        self.token_ttl = token_ttl
        self._unchecked_until = 0.0

    @classmethod
    def for_settings(cls, redis: Redis, settings: Settings) -> Revocations:
        return cls(redis, token_ttl=timedelta(minutes=settings.staff_token_ttl_minutes))

    async def revoke(self, staff_id: str, *, now: datetime | None = None) -> None:
        """Refuse every token of ``staff_id`` issued up to ``now``. Redis errors propagate: the
        caller tells whoever asked that those tokens still work."""
        now = now or datetime.now(UTC)
        record = functools.partial(
            self._redis.set, KEY_PREFIX + staff_id, microseconds(now), ex=self.token_ttl + CLOCK_MARGIN
        )
        await anyio.to_thread.run_sync(record)

    async def revoked_at(self, staff_id: str) -> datetime | None:
        """When ``staff_id``'s tokens were last revoked, if any still live. Redis errors propagate."""
        value = await anyio.to_thread.run_sync(self._redis.get, KEY_PREFIX + staff_id)
        return from_microseconds(int(value)) if value is not None else None

    async def refuse(self, token: StaffToken) -> bool:
        """Whether ``token`` was revoked. False, with a warning, when Redis does not answer."""
        if time.monotonic() < self._unchecked_until:
            return False
        try:
            revoked_at = await self.revoked_at(token.staff.id)
        except (RedisError, OSError) as exc:
            self._unchecked_until = time.monotonic() + FAIL_OPEN_SECONDS
            log.warning(
                "revoked staff tokens not refused for %.0f s: Redis did not answer (%s)",
                FAIL_OPEN_SECONDS,
                type(exc).__name__,
            )
            return False
        return is_revoked(issued_at=token.issued_at, revoked_at=revoked_at)
