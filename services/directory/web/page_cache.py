"""Rendered public responses (pages and anonymous searches), kept per catalogue revision, with
the ETag that names them.

The revision grows in the same transaction as every partner change (see ``storage.catalogue``),
so a page is never served past the change that made it stale: the process that made the change
drops its pages at once (:meth:`PageCache.invalidate`), other replicas within
``revision_ttl`` seconds, the most they go without re-reading the revision.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import lru_cache

from litestar import Request
from litestar.response.base import ASGIResponse

CACHE_CONTROL = "public, no-cache"  # store, but ask again (a 304 when nothing changed)


class PageCache:
    def __init__(
        self, *, max_entries: int = 512, revision_ttl: float = 0.5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[tuple[int, str], tuple[bytes, int]] = OrderedDict()
        self._max_entries = max_entries
        self._revision_ttl = revision_ttl
        self._clock = clock
        self._revision: int | None = None
        self._read_at = 0.0

    def invalidate(self) -> None:
        """A partner changed in this process: re-read the revision on the next request."""
        self._revision = None

    async def revision(self, read: Callable[[], Awaitable[int]]) -> int:
        now = self._clock()
        if self._revision is None or now - self._read_at >= self._revision_ttl:
            revision = await read()
            if revision != self._revision:
                self._entries.clear()
            self._revision, self._read_at = revision, now
        return self._revision

    def get(self, revision: int, key: str) -> tuple[bytes, int] | None:
        found = self._entries.get((revision, key))
        if found is not None:
            self._entries.move_to_end((revision, key))
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, revision: int, key: str, body: bytes, status: int) -> None:
        """Keep a page, unless it is an error (a made-up slug, a malformed search): anyone can ask
        for as many of those as they like, and each would push a real page out."""
        if status != 200:
            return
        self._entries[(revision, key)] = (body, status)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


@lru_cache(maxsize=4096)
def etag(revision: int, key: str) -> str:
    return f'"r{revision}-{hashlib.blake2s(key.encode(), digest_size=8).hexdigest()}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return tag in candidates or "*" in candidates


async def cached(
    request: Request,
    revision: Callable[[], Awaitable[int]],
    key: str,
    render: Callable[[], Awaitable[tuple[bytes, int]]],
    media_type: str,
) -> ASGIResponse:
    """The response under ``key`` (``render`` gives its body and status): 304 when the client
    holds the current one, else from the app's cache, else rendered now. A prepared ASGI
    response, so a cached answer costs little more than a static file."""
    cache: PageCache = request.app.state.page_cache
    current = await cache.revision(revision)
    found = cache.get(current, key)
    if found is None:
        found = await render()
        cache.put(current, key, *found)
    body, status = found
    tag = etag(current, key)
    headers = {"etag": tag, "cache-control": CACHE_CONTROL}
    if matches(request.headers.get("if-none-match"), tag):
        return ASGIResponse(status_code=304, headers=headers)
    return ASGIResponse(body=body, status_code=status, media_type=media_type, headers=headers)


def raw_query(request: Request) -> str:
    return request.scope["query_string"].decode("latin-1")
