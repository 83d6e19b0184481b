"""Rendered public responses (pages and anonymous searches), kept per catalogue revision, with
the ETag that names them.

The revision grows in the same transaction as every partner change (see ``storage.catalogue``),
so a page is never served past the change that made it stale: the process that made the change
drops its pages at once (:meth:`PageCache.invalidate`), other replicas within
``revision_ttl`` seconds, the most they go without re-reading the revision. Requests that find
the revision due share one read of it.

A kept page that needs no per-request check (:func:`front`: the plain public page and a
partner's page, never rate-limited and the same for everyone) is answered before routing and the
app's middleware, with headers encoded when it was kept: the access-log line, the request id and
the request counter are written as the middleware would, cheaply.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import NamedTuple

from litestar import Request
from litestar._asgi.utils import is_valid_host
from litestar.response.base import ASGIResponse
from litestar.types import HTTPScope, Send

from shared import access, logs

CACHE_CONTROL = "public, no-cache"  # store, but ask again (a 304 when nothing changed)


class Page(NamedTuple):
    """A response ready to send again, and the 304 that stands for it."""

    tag: str
    response: ASGIResponse
    not_modified: ASGIResponse


class PageCache:
    def __init__(
        self, *, max_entries: int = 512, revision_ttl: float = 0.5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[tuple[int, str], Page] = OrderedDict()
        self._max_entries = max_entries
        self._revision_ttl = revision_ttl
        self._clock = clock
        self._revision: int | None = None
        self._read_at = 0.0
        self._reading: asyncio.Future[int] | None = None
        self._rendering: dict[tuple[int, str], asyncio.Future[Page]] = {}

    def invalidate(self) -> None:
        """A partner changed in this process: re-read the revision on the next request."""
        self._revision = None
        # A read begun before the change may return the revision before it: it is not kept.
        self._reading = None

    def fresh(self) -> int | None:
        """The revision when it was read less than ``revision_ttl`` ago, else None."""
        if self._revision is None or self._clock() - self._read_at >= self._revision_ttl:
            return None
        return self._revision

    async def revision(self, read: Callable[[], Awaitable[int]]) -> int:
        current = self.fresh()
        if current is not None:
            return current
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read(read))
        return await asyncio.shield(self._reading)

    async def _read(self, read: Callable[[], Awaitable[int]]) -> int:
        try:
            revision = await read()
        finally:
            # Unless invalidated meanwhile (then the next request reads again): this read is
            # the revision from now on.
            ours = self._reading is asyncio.current_task()
            if ours:
                self._reading = None
        if ours:
            if revision != self._revision:
                self._entries.clear()
            self._revision, self._read_at = revision, self._clock()
        return revision

    def get(self, revision: int, key: str) -> Page | None:
        found = self._entries.get((revision, key))
        if found is not None:
            self._entries.move_to_end((revision, key))
        return found

    async def page(
        self, revision: int, key: str, render: Callable[[], Awaitable[tuple[bytes, int]]], *, media_type: str
    ) -> Page:
        """The page under ``key``: kept, else rendered once for every request asking meanwhile."""
        found = self.get(revision, key)
        if found is not None:
            return found
        rendering = self._rendering.get((revision, key))
        if rendering is None:
            rendering = asyncio.ensure_future(self._render(revision, key, render, media_type))
            self._rendering[(revision, key)] = rendering
        return await asyncio.shield(rendering)

    async def _render(
        self, revision: int, key: str, render: Callable[[], Awaitable[tuple[bytes, int]]], media_type: str
    ) -> Page:
        try:
            body, status = await render()
        finally:
            del self._rendering[(revision, key)]
        return self.put(revision, key, body, status, media_type=media_type)

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, revision: int, key: str, body: bytes, status: int, *, media_type: str) -> Page:
        """The response for ``body``, kept unless it is an error (a made-up slug, a malformed
        search): anyone can ask for as many of those as they like, and each would push a real
        page out."""
        tag = etag(revision, key)
        headers = {"etag": tag, "cache-control": CACHE_CONTROL}
        page = Page(
            tag,
            ASGIResponse(body=body, status_code=status, media_type=media_type, headers=headers),
            ASGIResponse(status_code=304, headers=headers),
        )
        if status == 200:
            self._entries[(revision, key)] = page
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return page


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
    *,
    cache: PageCache,
) -> ASGIResponse:
    """The response under ``key`` (``render`` gives its body and status): 304 when the client
    holds the current one, else from ``cache``, else rendered now. A prepared ASGI
    response, so a cached answer costs little more than a static file."""
    page = await cache.page(await cache.revision(revision), key, render, media_type=media_type)
    return page.not_modified if matches(request.headers.get("if-none-match"), page.tag) else page.response


def raw_query(request: Request) -> str:
    return request.scope["query_string"].decode("latin-1")


# (cache key, route template) of a request that may be answered before the app, or None.
KeyOf = Callable[[str, bytes], tuple[str, str] | None]
Front = Callable[[HTTPScope, Send], Awaitable[bool]]


def front(
    cache: PageCache,
    *,
    key_of: KeyOf,
    trailer: list[tuple[bytes, bytes]],
    count: Callable[[str, str, int, float], None],
) -> Front:
    """``answer(scope, send)``: send the kept page a GET asks for and return True, or return
    False (not kept, the revision is due, or not a page ``key_of`` names) and leave the request
    to the app. ``trailer``: the headers the app's ``before_send`` adds to every response;
    ``count``: the Prometheus middleware's counter (shared.metrics.counter)."""
    request_id = access.HEADER.encode()

    async def answer(scope: HTTPScope, send: Send) -> bool:
        started = time.perf_counter()
        if scope["method"] != "GET":
            return False
        found = key_of(scope["path"], scope["query_string"])
        if found is None:
            return False
        revision = cache.fresh()
        page = None if revision is None else cache.get(revision, found[0])
        if page is None:
            return False
        held = host = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                held = value
            elif name == b"host":
                host = value
        if host is not None and not is_valid_host(host):
            return False  # the app's router refuses it (400)
        rid = access.request_id_of(scope)
        response = page.response
        if held is not None and matches(held.decode("latin-1"), page.tag):
            response = page.not_modified
        headers = [*response.encode_headers(), (request_id, rid.encode()), *trailer]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": False})
        token = logs.request_id.set(rid)
        try:
            access.record(scope, route=found[1], status=response.status_code, started=started)
        finally:
            logs.request_id.reset(token)
        count("GET", found[1], response.status_code, time.perf_counter() - started)
        return True

    return answer
