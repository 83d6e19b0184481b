"""The SMTP provider's rate limit, shared by every notifier worker: a token bucket in Redis.

A provider counts messages per account, not per worker, so the bucket lives in Redis under a key
named after the account, and one Lua script reads and updates it atomically (the GCRA form of a
token bucket: one "theoretical arrival time" per account). The clock is Redis's own, so workers
on machines whose clocks disagree still share one bucket.

A worker that asks for a slot either gets one now, gets one reserved a short while ahead (and
sleeps until then), or is told how long the wait would be when that is longer than it should
block: the job is then scheduled again for later, without costing one of its retries.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from redis import Redis

KEY = "handoff:notifier:rate:{}"
# Longest a job sleeps for its slot instead of being scheduled again. Well under the job's
# timeout (shared.queues.NOTIFICATION_TIMEOUT_SECONDS) so that the send itself still has time.
MAX_WAIT_SECONDS = 5.0

# KEYS[1] bucket key. ARGV: emission interval (µs), burst tolerance (µs), longest wait (µs).
# Returns {1, wait µs} when a slot was taken (send after waiting), {0, wait µs} when the wait
# would be longer than allowed (nothing taken).
_ACQUIRE = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local longest = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > longest then return {0, wait} end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return {1, wait}
"""


def account_key(*, host: str, port: int, username: str) -> str:
    """The bucket's key for one SMTP account; hashed so that no user name sits in Redis."""
    digest = hashlib.sha256(f"{host.lower()}:{port}:{username}".encode()).hexdigest()[:16]
    return KEY.format(digest)


class RateLimiter:
    """At most ``per_minute`` sends per minute for one account, across every process that uses
    the same Redis and key; bursts of up to one second's worth. ``per_minute`` 0 means no limit."""

    def __init__(
        self,
        redis: Redis,
        *,
        key: str,
        per_minute: int,
        max_wait: float = MAX_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must be 0 (no limit) or more")
        self.key = key
        self.per_minute = per_minute
        self.max_wait = max_wait
        self._sleep = sleep
        self._script = redis.register_script(_ACQUIRE)
        if per_minute:
            self._interval_us = 60_000_000 / per_minute
            burst = max(1, math.ceil(per_minute / 60))
            self._tolerance_us = self._interval_us * (burst - 1)

    def acquire(self) -> float:
        """Take a slot, sleeping first if it is a little ahead. Returns 0.0 once the caller may
        send, or the seconds until a slot frees up when that is longer than ``max_wait`` (nothing
        was taken then: ask again after that long)."""
        if not self.per_minute:
            return 0.0
        taken, wait_us = self._script(
            keys=[self.key], args=[int(self._interval_us), int(self._tolerance_us), int(self.max_wait * 1_000_000)]
        )
        wait = int(wait_us) / 1_000_000
        if not taken:
            return wait
        if wait > 0:
            self._sleep(wait)
        return 0.0
