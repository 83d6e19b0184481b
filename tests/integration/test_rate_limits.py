"""Rate limits on a real Redis: the fixed window itself (counting, expiry, atomic across clients),
then sign-in and anonymous public search answering 429 with Retry-After over HTTP, and a Redis
outage letting everyone through."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
import redis.asyncio
from litestar.testing import TestClient
from redis import Redis

from services.dev.ports import free_port
from services.directory.storage import MIGRATIONS as DIRECTORY_MIGRATIONS
from services.directory.web.app import create_app as directory_app
from services.referrals.web.app import create_app as referrals_app
from shared import database
from shared.config import ConfigError, Settings, load_settings
from shared.ratelimit import ADDRESS_CEILING, KEY_PREFIX, Bucket, Counter, RateLimits
from shared.web import STAFF_COOKIE
from tests.support.directory import SECRET, bearer
from tests.support.referrals import PASSWORD, csrf


def run_hits(redis_url: str, batches: list[list[Bucket]], *, window: int = 60, clients: int = 1) -> list[int]:
    """Each batch hit once, concurrently, spread over ``clients`` separate Redis clients (as
    replicas would be); the waits in batch order."""

    async def go() -> list[int]:
        connections = [redis.asyncio.Redis.from_url(redis_url) for _ in range(clients)]
        counters = [Counter(c, window=window) for c in connections]
        try:
            return await asyncio.gather(*(counters[i % clients].hit(b) for i, b in enumerate(batches)))
        finally:
            for connection in connections:
                await connection.aclose()

    return asyncio.run(go())


# --- the window -----------------------------------------------------------------------------------


def test_a_bucket_admits_its_limit_then_says_how_long_to_wait(redis_url: str) -> None:
    waits = [run_hits(redis_url, [[Bucket("a", 3)]])[0] for _ in range(5)]
    assert waits[:3] == [0, 0, 0]
    assert all(0 < wait <= 60 for wait in waits[3:]), waits
    assert run_hits(redis_url, [[Bucket("b", 3)]]) == [0]  # another key has its own count


def test_the_fullest_bucket_decides_and_every_bucket_counts(redis_url: str) -> None:
    assert run_hits(redis_url, [[Bucket("wide", 10), Bucket("narrow", 1)]]) == [0]
    assert run_hits(redis_url, [[Bucket("wide", 10), Bucket("narrow", 1)]])[0] > 0
    client = Redis.from_url(redis_url)
    assert int(client.get(KEY_PREFIX + "wide")) == 2 and int(client.get(KEY_PREFIX + "narrow")) == 2
    client.close()


def test_the_window_ends_and_counting_starts_again(redis_url: str) -> None:
    assert sorted(run_hits(redis_url, [[Bucket("a", 1)]] * 2, window=1)) == [0, 1]
    deadline = time.monotonic() + 15
    while run_hits(redis_url, [[Bucket("a", 1)]], window=1) != [0]:
        assert time.monotonic() < deadline, "the 1 s window never ended"
        time.sleep(0.2)


def test_a_counter_left_without_expiry_gets_one(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    client.set(KEY_PREFIX + "stuck", 100)
    assert 0 < run_hits(redis_url, [[Bucket("stuck", 5)]])[0] <= 60
    assert 0 < client.ttl(KEY_PREFIX + "stuck") <= 60
    client.close()


def test_concurrent_replicas_admit_exactly_the_limit(redis_url: str) -> None:
    waits = run_hits(redis_url, [[Bucket("burst", 10)]] * 60, clients=4)
    assert waits.count(0) == 10 and len(waits) == 60


# --- settings -----------------------------------------------------------------------------------


def test_limits_are_settings_where_0_turns_them_off() -> None:
    defaults = load_settings(environ={})
    assert defaults.login_rate_limit > 0 and defaults.search_rate_limit > 0
    off = load_settings(environ={"HANDOFF_LOGIN_RATE_LIMIT": "0", "HANDOFF_SEARCH_RATE_LIMIT": "0"})
    assert (off.login_rate_limit, off.search_rate_limit) == (0, 0)
    with pytest.raises(ConfigError, match="HANDOFF_SEARCH_RATE_LIMIT"):
        load_settings(environ={"HANDOFF_SEARCH_RATE_LIMIT": "-1"})


def test_a_limit_on_a_route_the_app_lacks_stops_it_starting(tmp_path: Path, redis_url: str) -> None:
    from litestar import Litestar

    from shared.ratelimit import anonymous_search

    limits = RateLimits(redis_url, {("GET", "/no-such-route"): anonymous_search(5)})
    with pytest.raises(Exception) as failed:
        with TestClient(Litestar(route_handlers=[], lifespan=[limits.lifespan])):
            pass
    assert "ValueError" in repr(failed.value) and "/no-such-route" in repr(failed.value)


# --- sign-in ----------------------------------------------------------------------------------------


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, login_rate_limit=3)


def sign_in(client: TestClient, email: str, password: str = "wrong password") -> object:
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def test_sign_in_is_limited_per_address_and_email(limited: Settings) -> None:
    with TestClient(referrals_app(limited)) as client:
        assert [sign_in(client, "tess@clinic.example").status_code for _ in range(3)] == [401, 401, 401]
        refused = sign_in(client, "TESS@clinic.example ", PASSWORD)  # the right password, too late
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 60
        body = refused.json()
        assert set(body) == {"status_code", "detail", "extra"} and body["status_code"] == 429
        assert body["extra"]["retry_after"] == int(refused.headers["retry-after"])
        assert "access_token" not in refused.text

        # The login form shares the count, and shows a page rather than JSON.
        page = client.post(
            "/login",
            data={"email": "tess@clinic.example", "password": PASSWORD, "_csrf_token": csrf(client.get("/login").text)},
        )
        assert page.status_code == 429 and page.headers["retry-after"]
        assert page.headers["content-type"].startswith("text/html") and "Too many requests" in page.text
        assert STAFF_COOKIE not in client.cookies

        # A colleague at the same address is not locked out of their own account.
        assert sign_in(client, "ada@clinic.example", PASSWORD).status_code == 200


def test_one_address_trying_many_accounts_meets_a_ceiling(limited: Settings) -> None:
    ceiling = limited.login_rate_limit * ADDRESS_CEILING
    with TestClient(referrals_app(limited)) as client:
        answers = [sign_in(client, f"guess{i}@clinic.example").status_code for i in range(ceiling + 1)]
        assert answers[:ceiling] == [401] * ceiling and answers[ceiling] == 429
        assert sign_in(client, "ada@clinic.example", PASSWORD).status_code == 429


def test_sign_in_without_a_limit_is_never_refused(settings: Settings) -> None:
    with TestClient(referrals_app(msgspec.structs.replace(settings, login_rate_limit=0))) as client:
        assert {sign_in(client, "tess@clinic.example").status_code for _ in range(15)} == {401}


def test_a_malformed_sign_in_body_is_still_a_400(limited: Settings) -> None:
    with TestClient(referrals_app(limited)) as client:
        bad = client.post("/api/v1/auth/token", content=b'{"email": ', headers={"content-type": "application/json"})
        assert bad.status_code == 400


# --- behind a proxy: real processes, as uvicorn reads X-Forwarded-For (issue 16, item 5) ------------


@contextlib.contextmanager
def referrals_process(settings: Settings, **env: str) -> Iterator[str]:
    """``handoff serve referrals`` on a free port with ``settings`` (and ``env``); its base URL."""
    port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")},
        "HANDOFF_REFERRALS_DB_URL": settings.referrals_db_url,
        "HANDOFF_REDIS_URL": settings.redis_url,
        "HANDOFF_SECRET_KEY": settings.secret_key,
        "HANDOFF_DATA_DIR": settings.data_dir,
        "HANDOFF_REFERRALS_PORT": str(port),
        **env,
    }
    handoff = str(Path(sys.executable).with_name("handoff"))
    process = subprocess.Popen([handoff, "serve", "referrals"], env=environ, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1][-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "handoff serve referrals never answered /health"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.communicate(timeout=30)


def wrong_sign_ins(url: str, forwarded_for: list[str]) -> list[int]:
    with httpx.Client(base_url=url, timeout=30) as client:
        return [
            client.post(
                "/api/v1/auth/token",
                json={"email": "tess@clinic.example", "password": "wrong password"},
                headers={"X-Forwarded-For": address},
            ).status_code
            for address in forwarded_for
        ]


def test_a_forged_x_forwarded_for_buys_no_fresh_bucket(settings: Settings) -> None:
    """70 sign-ins, each claiming another address, once got 70 x 401 and no 429."""
    with referrals_process(settings) as url:
        answers = wrong_sign_ins(url, [f"203.0.113.{n}" for n in range(1, 71)])
    assert answers[:10] == [401] * 10 and set(answers[10:]) == {429}


def test_behind_a_trusted_proxy_each_client_keeps_its_own_bucket(settings: Settings) -> None:
    with referrals_process(settings, HANDOFF_TRUSTED_PROXIES="127.0.0.1/32, ::1") as url:
        one = wrong_sign_ins(url, ["198.51.100.7"] * 12)
        other = wrong_sign_ins(url, ["198.51.100.8"])
    assert one == [401] * 10 + [429] * 2 and other == [401]


# --- public search ----------------------------------------------------------------------------------


@pytest.fixture
def directory(tmp_path: Path, redis_url: str) -> Settings:
    settings = load_settings(
        environ={}, data_dir=str(tmp_path / "data"), redis_url=redis_url, secret_key=SECRET, search_rate_limit=4
    )
    database.upgrade(migrations=DIRECTORY_MIGRATIONS, url=settings.db_url("directory"))
    return settings


def test_anonymous_searches_share_one_limit(directory: Settings) -> None:
    with TestClient(directory_app(directory)) as client:
        answers = [
            client.get(path).status_code
            for path in (
                "/api/v1/partners",
                "/partners-in-health?q=physio",
                "/api/v1/partners/nobody",
                "/partners-in-health?zip=33701&kind=clinical",
            )
        ]
        assert answers == [200, 200, 404, 200]
        refused = client.get("/api/v1/partners", params={"q": "physio"})
        assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.json()["status_code"] == 429 and set(refused.json()) == {"status_code", "detail", "extra"}
        page = client.get("/partners-in-health", params={"q": "massage"})
        assert page.status_code == 429 and page.headers["retry-after"] and "<h1>Too many requests</h1>" in page.text
        # The plain page is cached: served, never counted. A partner page that does not exist is
        # counted (issue 16, item 11), so it is refused too.
        assert client.get("/partners-in-health").status_code == 200
        assert client.get("/partners-in-health/nobody").status_code == 429
        # Everything else on the service is not counted.
        assert client.get("/api/v1/categories").status_code == 200 and client.get("/health").status_code == 200


def test_made_up_partner_pages_are_counted_and_never_cached(directory: Settings) -> None:
    """Issue 16, item 11: random slugs were each a cache entry and a query, never rate-limited,
    and pushed real pages out of the cache."""
    with TestClient(directory_app(directory)) as client:
        admin = bearer("admin")
        partner = client.post(
            "/api/v1/partners",
            json={"name": "Bay Physio", "category": "physical_therapy", "email": "bay@physio.example"},
            headers=admin,
        ).json()
        real = f"/partners-in-health/{partner['slug']}"
        cache = client.app.state.page_cache
        for _ in range(6):  # cached after the first: served, never counted
            assert client.get(real).status_code == 200
        assert [client.get(f"/partners-in-health/made-up-{n}").status_code for n in range(5)] == [404] * 4 + [429]
        assert len(cache) == 1  # only the real page
        assert client.get(real).status_code == 200
        # Staff looking up a partner that is gone are not held back.
        client.cookies.set(STAFF_COOKIE, admin["Authorization"].split()[1])
        assert {client.get(f"/partners-in-health/gone-{n}").status_code for n in range(6)} == {404}
        assert len(cache) == 1


def test_staff_are_never_limited_on_search(directory: Settings) -> None:
    with TestClient(directory_app(directory)) as client:
        for _ in range(8):
            assert client.get("/api/v1/partners", headers=bearer("therapist")).status_code == 200
        client.cookies.set(STAFF_COOKIE, bearer("admin")["Authorization"].split()[1])
        for _ in range(8):
            assert client.get("/partners-in-health", params={"q": "physio"}).status_code == 200
        # A forged token is no way around the limit.
        client.cookies.clear()
        forged = {"Authorization": "Bearer not-a-token"}
        assert [client.get("/api/v1/partners", headers=forged).status_code for _ in range(5)][-1] == 429


# --- Redis away -------------------------------------------------------------------------------------


def test_an_unreachable_redis_lets_everyone_through_with_a_warning(
    tmp_path: Path,
    closed_redis_url: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.ratelimit")
    away = msgspec.structs.replace(settings, login_rate_limit=1, redis_url=closed_redis_url)
    with TestClient(referrals_app(away)) as client:
        for _ in range(3):
            assert sign_in(client, "tess@clinic.example", PASSWORD).status_code == 200
    assert any("rate limits not enforced" in r.getMessage() for r in caplog.records if r.name == "shared.ratelimit")

    directory = load_settings(
        environ={}, data_dir=str(tmp_path / "d"), redis_url=closed_redis_url, secret_key=SECRET, search_rate_limit=1
    )
    database.upgrade(migrations=DIRECTORY_MIGRATIONS, url=directory.db_url("directory"))
    with TestClient(directory_app(directory)) as client:
        assert {client.get("/api/v1/partners").status_code for _ in range(3)} == {200}
