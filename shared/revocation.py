"""Staff tokens refused before they expire, in Redis, checked by both services on every staff
request (:func:`shared.web.authenticate`).

A staff token is signed and lives ``HANDOFF_STAFF_TOKEN_TTL_MINUTES`` (8 hours by default). Two
things end it sooner:

- **An account's revocation** (:meth:`Revocations.revoke`): disabling an account, changing its
  role, or "sign out everywhere" (the account itself on its logout page, an admin on the staff
  page or ``handoff user signout``). Every token of that account issued up to that moment is
  refused; a sign-in after it gets a new token, accepted at once. One key per account holds the
  latest revocation time in microseconds since the epoch.
- **A sign-in's end** (:meth:`Revocations.end_session`): logging out. The token names its sign-in
  (``sid``); one key per ended sign-in refuses every token of it, the login cookie and any copy.

Each key expires when every token it refuses has expired anyway (the token lifetime plus
:data:`CLOCK_MARGIN`), so the keys never pile up. Both checks are one Redis round trip.

The times compared come from two clocks: a token's issue time from the referrals process that
signed it, a revocation's from the process that revoked (a referrals process or the ``handoff``
command). Hosts keep NTP time; if the revoking host ran ahead by a second, a login within that
second after re-enabling an account is refused once and the next login works.

When Redis does not answer, nothing can be told about a token, and a token that may have been
revoked must not act: :meth:`Revocations.refuse` raises :class:`RevocationUnknown`, which staff
routes answer with 503 (``extra.unavailable = "redis"``) and public routes by treating the caller
as anonymous. After a failure Redis is asked again only after :data:`RETRY_SECONDS`, so that an
unreachable Redis does not cost every request a connection timeout.
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
SESSION_PREFIX = "handoff:session-ended:"
# Longer than any clock difference between the hosts that sign tokens and the Redis server.
CLOCK_MARGIN = timedelta(minutes=5)
# After Redis fails a check, tokens are refused unchecked this long before it is asked again.
RETRY_SECONDS = 2.0


class RevocationUnknown(Exception):
    """Redis did not answer, so whether a token was revoked cannot be told."""


def is_revoked(*, issued_at: datetime, revoked_at: datetime | None) -> bool:
    """Whether a token issued at ``issued_at`` is void after a revocation at ``revoked_at``. A
    token issued in the very microsecond of its revocation is void: the doubt goes against it."""
    return revoked_at is not None and issued_at <= revoked_at


class Revocations:
    """Revocations in Redis, through a synchronous client called off the event loop (the client
    each service already holds)."""

    def __init__(self, redis: Redis, *, token_ttl: timedelta) -> None:
        self._redis = redis
        self.token_ttl = token_ttl
        self._unknown_until = 0.0

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

    async def end_session(self, session_id: str) -> None:
        """Refuse every token of the sign-in ``session_id`` from now on. Redis errors propagate."""
        record = functools.partial(self._redis.set, SESSION_PREFIX + session_id, 1, ex=self.token_ttl + CLOCK_MARGIN)
        await anyio.to_thread.run_sync(record)

    async def revoked_at(self, staff_id: str) -> datetime | None:
        """When ``staff_id``'s tokens were last revoked, if any still live. Redis errors propagate."""
        value = await anyio.to_thread.run_sync(self._redis.get, KEY_PREFIX + staff_id)
        return from_microseconds(int(value)) if value is not None else None

    async def refuse(self, token: StaffToken) -> bool:
        """Whether ``token`` was revoked, or its sign-in ended; :class:`RevocationUnknown` when
        Redis does not answer."""
        if time.monotonic() < self._unknown_until:
            raise RevocationUnknown("Redis did not answer a moment ago")
        keys = [KEY_PREFIX + token.staff.id, SESSION_PREFIX + (token.session_id or "-")]
        try:
            revoked, ended = await anyio.to_thread.run_sync(self._redis.mget, keys)
        except (RedisError, OSError) as exc:
            self._unknown_until = time.monotonic() + RETRY_SECONDS
            log.warning("staff tokens refused for %.0f s: Redis did not answer (%s)", RETRY_SECONDS, type(exc).__name__)
            raise RevocationUnknown(type(exc).__name__) from exc
        revoked_at = from_microseconds(int(revoked)) if revoked is not None else None
        return ended is not None or is_revoked(issued_at=token.issued_at, revoked_at=revoked_at)
