"""Rate limits for sign-in and anonymous public search: a fixed window per client, counted in
Redis so that every replica of a service shares it.

A route over its limit answers 429 with ``Retry-After`` (seconds until its window ends); see
:func:`shared.web.refused` for how the answer reads. Litestar's own ``RateLimitMiddleware`` is not
used, because in the version pinned (2.25) it reads a client's history from its store and writes it
back under a lock local to one process, so replicas count past the limit between them; its 429
carries ``RateLimit-*`` headers but no ``Retry-After``; a store that cannot be reached turns every
request into a 500, where a Redis outage must never lock staff out; and it keeps one limit per app
keyed on the client address alone, where sign-in needs a count per address and email.

Sign-in is counted per client address *and email tried*: one person (or one attacker) at the
clinic's shared address who exhausts the attempts for one account does not lock colleagues out of
theirs. Each address also has a ceiling of :data:`ADDRESS_CEILING` times the limit over all
emails, which bounds trying one password against many accounts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import NamedTuple

from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.handlers import BaseRouteHandler
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import redis_client
from shared.web import StaffCheckUnavailable, authenticate

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# An address may try this many times the per-email limit over all emails.
ADDRESS_CEILING = 5
# After Redis fails, requests pass unchecked this long before it is asked again: an unreachable
# Redis would otherwise cost every request a connection timeout and the log a warning each.
FAIL_OPEN_SECONDS = 5.0
KEY_PREFIX = "handoff:ratelimit:"

# One round trip, atomic: count the request in every bucket, start a bucket's window with its
# first request (or whenever it has no expiry, so a key can never outlive its window), and answer
# the seconds left in the longest window whose count is over its limit (0: under every limit).
_HIT = """
local wait = 0
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local ttl = redis.call('TTL', key)
  if ttl < 0 then
    redis.call('EXPIRE', key, ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  if count > tonumber(ARGV[i + 1]) and ttl > wait then
    wait = ttl
  end
end
return wait
"""


class Bucket(NamedTuple):
    """One count: ``limit`` requests per window for ``key``."""

    key: str
    limit: int


Rule = Callable[[Request], Awaitable[list[Bucket]]]


class Counter:
    """Fixed windows of ``window`` seconds in Redis."""

    def __init__(self, client: Redis, *, window: int = WINDOW_SECONDS) -> None:
        self._hit = client.register_script(_HIT)
        self._window = window

    async def hit(self, buckets: list[Bucket]) -> int:
        """Count one request in each bucket. Returns the seconds to wait (at least 1) when any
        bucket is over its limit, else 0. Redis errors propagate."""
        keys = [KEY_PREFIX + bucket.key for bucket in buckets]
        wait = int(await self._hit(keys=keys, args=[self._window, *(bucket.limit for bucket in buckets)]))
        return max(wait, 1) if wait else 0


class RateLimits:
    """The rate limits of one web app, by route: ``rules`` maps ``(method, path template)`` (as
    ``app.routes`` lists them, e.g. ``("GET", "/partners-in-health/{slug}")``) to the rule giving
    a request's buckets. :meth:`lifespan` opens the Redis client and :meth:`guard` (an app-level
    guard) enforces them; a request Redis cannot count is let through with a warning."""

    def __init__(self, redis_url: str, rules: Mapping[tuple[str, str], Rule | None]) -> None:
        self._redis_url = redis_url
        self._rules = {route: rule for route, rule in rules.items() if rule is not None}
        self._counter: Counter | None = None
        self._unchecked_until = 0.0

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        routes = {(method, route.path_format) for route in app.routes for method in getattr(route, "methods", ())}
        if unknown := set(self._rules) - routes:
            raise ValueError(f"rate limits for routes the app does not have: {sorted(unknown)}")
        if not self._rules:
            yield
            return
        client = redis_client.connect_async(self._redis_url, use="web")
        self._counter = Counter(client)
        try:
            yield
        finally:
            self._counter = None
            await client.aclose()

    async def guard(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:
        route = (str(connection.scope.get("method", "")), str(connection.scope.get("path_template", "")))
        rule = self._rules.get(route)
        if rule is not None:
            await self.enforce(connection, rule)  # type: ignore[arg-type]  # an HTTP route's connection is its Request

    async def enforce(self, request: Request, rule: Rule | None) -> None:
        """Count ``request`` under ``rule`` (nothing for None) and refuse it (429) when over the
        limit. The guard does this before a route's handler; a handler may do it afterwards, for
        requests only their outcome makes worth counting (a page that does not exist)."""
        if rule is None or self._counter is None or time.monotonic() < self._unchecked_until:
            return
        buckets = await rule(request)
        if not buckets:
            return
        try:
            wait = await self._counter.hit(buckets)
        except (RedisError, OSError) as exc:
            self._unchecked_until = time.monotonic() + FAIL_OPEN_SECONDS
            log.warning(
                "rate limits not enforced for %.0f s: Redis did not answer (%s)", FAIL_OPEN_SECONDS, type(exc).__name__
            )
            return
        if wait:
            raise TooManyRequestsException(
                f"too many requests; try again in {wait} seconds",
                headers={"Retry-After": str(wait)},
                extra={"retry_after": wait},
            )


def client_address(request: Request) -> str:
    """The client's address (uvicorn takes it from ``X-Forwarded-For`` only when the peer is a
    trusted proxy, see deploy/README.md)."""
    return request.client.host if request.client else "unknown"


def sign_in(per_minute: int) -> Rule | None:
    """Sign-in attempts: ``per_minute`` per address and email, and :data:`ADDRESS_CEILING` times
    that per address. None (no limit) for 0."""
    if not per_minute:
        return None

    async def buckets(request: Request) -> list[Bucket]:
        address = client_address(request)
        # A digest: the key names the account without keeping an email address in Redis.
        tried = hashlib.sha256((await _email_tried(request)).encode()).hexdigest()[:24]
        return [
            Bucket(f"login:{address}", per_minute * ADDRESS_CEILING),
            Bucket(f"login:{address}:{tried}", per_minute),
        ]

    return buckets


def anonymous_search(per_minute: int) -> Rule | None:
    """Public search and partner pages: ``per_minute`` per address, for anyone without a valid
    staff token or login cookie (staff, the admin pages and API tooling are never held back).
    None (no limit) for 0."""
    if not per_minute:
        return None

    async def buckets(request: Request) -> list[Bucket]:
        try:
            await authenticate(request)
        except (NotAuthorizedException, StaffCheckUnavailable):
            return [Bucket(f"search:{client_address(request)}", per_minute)]
        return []

    return buckets


def with_query(rule: Rule | None) -> Rule | None:
    """``rule`` for requests with a query string (a filtered or searched page), nothing for the
    plain page: that one is served from a cache, and counting it would cost more than serving it
    (about a third of its throughput, measured with tests/bench/bench_directory)."""
    if rule is None:
        return None

    async def buckets(request: Request) -> list[Bucket]:
        return await rule(request) if request.scope.get("query_string") else []

    return buckets


async def _email_tried(request: Request) -> str:
    """The email of a sign-in form or JSON body, normalised; "" when there is none to read (the
    handler then refuses the body itself). The body is cached, so the handler reads it again."""
    try:
        if request.content_type[0] == "application/json":
            body = await request.json()
            email = body.get("email", "") if isinstance(body, dict) else ""
        else:
            email = (await request.form()).get("email", "")
    except Exception:
        return ""
    return email.strip().lower() if isinstance(email, str) else ""
