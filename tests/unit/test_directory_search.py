"""Search rules without I/O: ``near`` parsing and geometry, keyset cursors, the page cache."""

from __future__ import annotations

import math

import pytest

from services.directory.fields import Location
from services.directory.search import (
    After,
    InvalidSearch,
    Near,
    decode_cursor,
    encode_cursor,
    language_keys,
    parse_near,
)
from services.directory.web.page_cache import PageCache, etag, front, matches
from services.directory.web.pages import early_key
from shared.geo import distance_km

ST_PETE = Location(27.7723, -82.6386)


@pytest.mark.parametrize("value", ["abc", "27.7", "27.7,", ",82", "27.7;-82.6", "91,0", "0,181", "nan,0", "inf,0"])
def test_near_must_be_lat_comma_lon_in_range(value: str) -> None:
    with pytest.raises(InvalidSearch) as caught:
        parse_near(value)
    assert caught.value.field == "near"


def test_near_parses_with_spaces() -> None:
    assert parse_near(" 27.77 , -82.64 ") == Location(27.77, -82.64)


@pytest.mark.parametrize("radius", [-3, 0, 501, math.inf, math.nan])
def test_radius_must_be_positive_and_bounded(radius: float) -> None:
    with pytest.raises(InvalidSearch) as caught:
        Near(ST_PETE, radius)
    assert caught.value.field == "radius_km"


@pytest.mark.parametrize("origin", [ST_PETE, Location(64.8, -147.7), Location(-33.9, 151.2), Location(0, 179.9)])
@pytest.mark.parametrize("radius", [1, 25, 300])
def test_the_bounding_box_holds_every_point_within_the_radius(origin: Location, radius: float) -> None:
    near = Near(origin, radius)
    min_lat, max_lat, min_lon, max_lon = near.bounding_box()
    for bearing in range(0, 360, 15):
        # A point just inside the radius, by the destination-point formula.
        d = (radius * 0.999) / 6371.0088
        lat1, lon1, theta = math.radians(origin.lat), math.radians(origin.lon), math.radians(bearing)
        lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(theta))
        lon2 = lon1 + math.atan2(
            math.sin(theta) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2)
        )
        point = Location(math.degrees(lat2), (math.degrees(lon2) + 540) % 360 - 180)
        assert distance_km(origin, point) <= radius
        assert min_lat <= point.lat <= max_lat
        assert min_lon <= point.lon <= max_lon


def test_cursors_round_trip_and_refuse_others() -> None:
    by_name = After("name", "Bay PT", "id-1")
    by_distance = After("distance", 3.25, "id-2")
    assert decode_cursor(encode_cursor(by_name), near=False) == by_name
    assert decode_cursor(encode_cursor(by_distance), near=True) == by_distance
    assert decode_cursor(None, near=False) is None
    for bad, near in [
        ("garbage!", False),
        ("e30", False),
        (encode_cursor(by_name), True),
        (encode_cursor(by_distance), False),
    ]:
        with pytest.raises(InvalidSearch) as caught:
            decode_cursor(bad, near=near)
        assert caught.value.field == "cursor"


def test_language_keys_match_whole_languages() -> None:
    assert language_keys(("English", "Spanish")) == "|english|spanish|"
    assert "|span|" not in language_keys(("Spanish",))


def test_page_cache_keeps_pages_per_revision_and_rereads_after_a_change_or_ttl() -> None:
    import asyncio

    now = [0.0]
    revisions = [1]
    reads = []

    async def read() -> int:
        reads.append(1)
        return revisions[0]

    cache = PageCache(revision_ttl=0.5, clock=lambda: now[0])

    async def scenario() -> None:
        assert await cache.revision(read) == 1
        cache.put(1, "/p", b"page", 200, media_type="text/html")
        revisions[0] = 2
        now[0] = 0.2
        assert await cache.revision(read) == 1  # within the ttl: not re-read
        kept = cache.get(1, "/p")
        assert kept is not None and kept.response.body == b"page" and kept.response.status_code == 200
        cache.invalidate()  # this process changed a partner
        assert await cache.revision(read) == 2
        assert cache.get(1, "/p") is None
        revisions[0] = 3
        now[0] = 0.8
        assert await cache.revision(read) == 3  # another replica's change, after the ttl

    asyncio.run(scenario())
    assert len(reads) == 3


def test_requests_that_find_the_revision_due_share_one_read_and_a_change_voids_it() -> None:
    import asyncio

    reads: list[int] = []

    async def scenario() -> None:
        release = asyncio.Event()

        async def settle() -> None:  # let every task started so far run up to its wait
            for _ in range(5):
                await asyncio.sleep(0)

        cache = PageCache()

        async def read() -> int:  # the revision as it was when the read began
            reads.append(1)
            begun = len(reads)
            await release.wait()
            return begun

        waiting = [asyncio.ensure_future(cache.revision(read)) for _ in range(5)]
        await settle()
        assert len(reads) == 1  # five requests, one read
        release.set()
        assert await asyncio.gather(*waiting) == [1] * 5
        assert cache.fresh() == 1

        release.clear()
        cache.invalidate()
        before = asyncio.ensure_future(cache.revision(read))  # began before a change committed
        await settle()
        cache.invalidate()
        after = asyncio.ensure_future(cache.revision(read))
        await settle()
        release.set()
        assert (await before, await after) == (2, 3)
        assert cache.fresh() == 3  # the read begun before the change is not kept

    asyncio.run(scenario())


def test_a_page_asked_for_by_many_at_once_is_rendered_once() -> None:
    import asyncio

    renders: list[int] = []

    async def scenario() -> None:
        cache = PageCache()

        async def render() -> tuple[bytes, int]:
            renders.append(1)
            await asyncio.sleep(0.01)
            return b"<p>All</p>", 200

        pages = await asyncio.gather(*(cache.page(1, "/p?", render, media_type="text/html") for _ in range(8)))
        assert {page.response.body for page in pages} == {b"<p>All</p>"} and len(cache) == 1
        assert (await cache.page(1, "/p?", render, media_type="text/html")) is pages[0]

    asyncio.run(scenario())
    assert len(renders) == 1


def test_the_front_answers_kept_pages_and_leaves_every_other_request_to_the_app() -> None:
    import asyncio

    now = [0.0]
    cache = PageCache(revision_ttl=0.5, clock=lambda: now[0])
    counted: list[tuple[str, str, int]] = []
    trailer = [(b"x-frame-options", b"DENY")]
    answer = front(cache, key_of=early_key, trailer=trailer, count=lambda m, r, s, _: counted.append((m, r, s)))

    async def revision() -> int:
        return 7

    def request(path: str, query: bytes = b"", *, method: str = "GET", headers=()) -> tuple[bool, list[dict]]:
        sent: list[dict] = []

        async def send(message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": list(headers)}
        return asyncio.run(answer(scope, send)), sent  # type: ignore[arg-type]

    asyncio.run(cache.revision(revision))
    page = cache.put(7, "/partners-in-health/bay-pt", b"<p>Bay PT</p>", 200, media_type="text/html")
    cache.put(7, "/partners-in-health?", b"<p>All</p>", 200, media_type="text/html")

    answered, sent = request("/partners-in-health/bay-pt", b"utm=x", headers=[(b"x-request-id", b"edge-req-0019")])
    assert answered and [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"<p>Bay PT</p>"
    assert sent[0]["headers"] == [*page.response.encode_headers(), (b"x-request-id", b"edge-req-0019"), *trailer]
    answered, sent = request("/partners-in-health/bay-pt", headers=[(b"if-none-match", page.tag.encode())])
    assert answered and sent[0]["status"] == 304 and sent[1]["body"] == b""
    assert request("/partners-in-health")[0]
    assert counted == [
        ("GET", "/partners-in-health/{slug}", 200),
        ("GET", "/partners-in-health/{slug}", 304),
        ("GET", "/partners-in-health", 200),
    ]

    # Left to the app: a searched page (rate-limited), a page not kept, another method or path,
    # a malformed Host (the router's 400), and everything once the revision is due again.
    for path, query, method, headers in [
        ("/partners-in-health", b"q=bay", "GET", []),
        ("/partners-in-health/made-up", b"", "GET", []),
        ("/partners-in-health/bay-pt", b"", "POST", []),
        ("/partners-in-health/bay-pt/manage-link", b"", "GET", []),
        ("/partners-in-health/", b"", "GET", []),
        ("/partners-in-health/bay-pt", b"", "GET", [(b"host", b"bad host/")]),
    ]:
        assert request(path, query, method=method, headers=headers) == (False, []), (path, query, method)
    now[0] = 0.5
    assert request("/partners-in-health/bay-pt") == (False, [])
    assert len(counted) == 3


def test_etags_differ_by_revision_and_page_and_match_weak_forms() -> None:
    tag = etag(4, "/partners-in-health")
    assert tag != etag(5, "/partners-in-health") and tag != etag(4, "/partners-in-health/x")
    assert matches(tag, tag) and matches(f'"x", W/{tag}', tag) and matches("*", tag)
    assert not matches(None, tag) and not matches('"r3-0"', tag)


def test_the_ranking_key_orders_like_the_great_circle_within_a_search() -> None:
    import random

    rng = random.Random(3)
    near = Near(ST_PETE, 100)
    points = [Location(ST_PETE.lat + rng.uniform(-0.9, 0.9), ST_PETE.lon + rng.uniform(-1, 1)) for _ in range(300)]
    # Any two partners whose distances differ by more than 1% come in great-circle order.
    for a in points:
        for b in points:
            da, db = near.distance_km(a), near.distance_km(b)
            if da < db * 0.99:
                assert near.squared_km(a) < near.squared_km(b)
    for point in points:
        assert math.isclose(math.sqrt(near.squared_km(point)), near.distance_km(point), rel_tol=0.005)
