"""Handoff at scale (issue 19; not a test: pytest does not collect it): a directory of a million
partners, a 100,000-row partner import on its way to the referrals replica, and a referrals
database of a million referrals on PostgreSQL.

    .venv/bin/python -m tests.bench.bench_scale [--partners 1000000] [--import-rows 100000]
                                                [--referrals 1000000] [--db-url postgresql://…]
                                                [--rate 20] [--seconds 10] [--requests 200]
                                                [--cache ~/.cache/handoff-bench]
                                                [--only directory import referrals] [--build-only]

The generated data is built once and kept under ``--cache`` (outside the repository), named by
its size: the directory as a SQLite file (``directory-1000000.db``, made with the directory
benchmark's own generator, a fifth of it around St. Petersburg, FL), the referrals as a
PostgreSQL database on ``--db-url``'s server (``handoff_bench_referrals_1000000``, its marker
in the cache directory). A later run reuses them; delete them to build again.

  directory  serves the million-partner directory (``create_app`` under uvicorn, as ``handoff
             serve directory`` runs it) and, beside it, a bare Litestar app answering the very
             bytes the real one answered. Open-loop latency at ``--rate`` requests/s for
             ``--seconds``: the near + category search from 2,000 different points (every one
             a miss of the response cache: the search itself), and the public page.
  import     ``handoff partners import`` of ``--import-rows`` generated rows into a fresh
             directory with ``handoff worker referrals`` running (tests/bench/bench_replica):
             rows/s of the import, and the time until the referrals replica holds them all.
  referrals  ``handoff serve referrals`` on the million-referral database (one therapist's:
             the worst case for their list), ``--requests`` sequential requests each: the
             referral list (``GET /api/v1/referrals``) and the dashboard (``GET /``, 90 days,
             and ``GET /?days=365``), beside a bare app answering the same bytes (the kept
             database vacuumed first, as autovacuum would leave it). Needs PostgreSQL (``--db-url``, or
             ``HANDOFF_TEST_POSTGRES_URL``); without it the part is left out and says so.

Returns (:func:`run`) and prints the figures. ``--partners 20000 --import-rows 2000 --referrals
20000 --seconds 2 --requests 20`` is the smallest useful run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from litestar import Litestar, Response, get

from tests.bench import bench_directory, bench_replica
from tests.bench.figures import Figure, markdown, percentile, unthrottled

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "handoff-bench"
SEARCH_AIM_MS = 25.0
PAGE_AIM_MS = 25.0
IMPORT_AIM_ROWS_PER_S = 5000.0
REPLICA_AIM_SECONDS = 60.0
REFERRALS_AIM_MS = 100.0


# --- the million-partner directory ---------------------------------------------------------------


def directory_db(cache: Path, partners: int) -> Path:
    """The generated directory of ``partners`` partners, built into ``cache`` the first time."""
    from services.directory.storage import MIGRATIONS
    from shared import database

    path = cache / f"directory-{partners}.db"
    if path.exists():
        print(f"# directory of {partners:,} partners: kept in {path}", flush=True)
        return path
    cache.mkdir(parents=True, exist_ok=True)
    building = path.with_suffix(".building")
    for leftover in cache.glob(building.name + "*"):
        leftover.unlink()
    url = f"sqlite+aiosqlite:///{building}"
    started = time.perf_counter()
    database.upgrade(migrations=MIGRATIONS, url=url)
    bench_directory.load_partners(url, partners)
    building.rename(path)
    print(f"# directory of {partners:,} partners built in {time.perf_counter() - started:.0f} s: {path}", flush=True)
    return path


def directory(cache: Path, *, partners: int, rate: int, seconds: int) -> list[Figure]:
    from urllib.request import urlopen

    from services.dev.ports import free_port
    from services.dev.redis_server import RedisServer

    db = directory_db(cache, partners)
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, RedisServer(Path(tmp) / "redis") as redis:
        work = Path(tmp)
        env = {
            "HANDOFF_DIRECTORY_DB_URL": f"sqlite+aiosqlite:///{db}",
            "HANDOFF_REDIS_URL": redis.url,
            "HANDOFF_SECRET_KEY": "bench-secret-of-at-least-32-bytes-long",
            "HANDOFF_DATA_DIR": str(work),
            "HANDOFF_LOG_LEVEL": "WARNING",
            **unthrottled(),
        }
        try:
            real_port, bare_port = free_port(), free_port()
            processes.append(bench_directory.serve("real_app", real_port, env))
            real = f"http://127.0.0.1:{real_port}"
            with urlopen(real + bench_directory.PAGE) as response:
                (work / "page.html").write_bytes(response.read())
            with urlopen(real + bench_directory.SEARCH) as response:
                (work / "search.json").write_bytes(response.read())
            processes.append(
                bench_directory.serve(
                    "bare_app",
                    bare_port,
                    {"BENCH_PAGE_FILE": str(work / "page.html"), "BENCH_JSON_FILE": str(work / "search.json")},
                )
            )
            bare = f"http://127.0.0.1:{bare_port}"
            measured = {
                (what, app): bench_directory.fixed_rate(
                    base + path, rate=rate, seconds=seconds, connections=4, varied=what == "search"
                )
                for what, path in (("search", bench_directory.SEARCH), ("page", bench_directory.PAGE))
                for app, base in (("real", real), ("bare", bare))
            }
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)

    def figure(what: str, name: str, aim_ms: float) -> Figure:
        real, bare = measured[(what, "real")], measured[(what, "bare")]
        return Figure(
            name=f"{name}, {partners:,} partners: p99",
            figure=real["p99_ms"],
            unit="ms",
            baseline="bare Litestar handler answering the same bytes, same rate",
            baseline_figure=bare["p99_ms"],
            aim=f"≤ {aim_ms:g} ms",
            met=real["p99_ms"] <= aim_ms,
            notes=f"{rate}/s for {seconds} s, {real['requests']} requests ({real['failures']} failed), "
            f"p50 {real['p50_ms']:.1f} ms (baseline {bare['p50_ms']:.1f})",
        )

    return [
        figure("search", "near + category search from 2,000 points (uncached)", SEARCH_AIM_MS),
        figure("page", "public page", PAGE_AIM_MS),
    ]


# --- a 100,000-row import ------------------------------------------------------------------------


def partner_import(*, rows: int) -> list[Figure]:
    return bench_replica.run(rows=rows, aim_seconds=REPLICA_AIM_SECONDS, aim_rows_per_s=IMPORT_AIM_ROWS_PER_S)


# --- a million referrals on PostgreSQL -----------------------------------------------------------

# One referral in ten of each status, as a long-running clinic's history looks: most closed.
STATUSES = [
    "completed",
    "completed",
    "completed",
    "cancelled",
    "failed",
    "accepted",
    "in-progress",
    "requested",
    "on-hold",
    "rejected",
]
# The offer each referral's status implies.
OFFER_STATUS = {
    "completed": "accepted",
    "accepted": "accepted",
    "in-progress": "accepted",
    "on-hold": "accepted",
    "requested": "offered",
    "failed": "declined",
    "rejected": "declined",
    "cancelled": "withdrawn",
}
# Three years of referrals, the newest a minute old.
SPAN_SECONDS = 3 * 365 * 24 * 3600


def _generate_sql(count: int, staff_id: str) -> list[tuple[str, dict]]:
    """Statements that fill an empty referrals database with ``count`` referrals (one client in
    five referred again, one offer each, an outcome for the completed ones), all ``staff_id``'s."""
    clients = max(1, count * 4 // 5)
    statuses = "ARRAY[" + ",".join(f"'{s}'" for s in STATUSES) + "]"
    offer_case = "CASE r.status " + " ".join(f"WHEN '{s}' THEN '{o}'" for s, o in OFFER_STATUS.items()) + " END"
    params = {"n": count, "clients": clients, "staff": staff_id, "span": SPAN_SECONDS}
    return [
        (
            "INSERT INTO clients (id, name, phone, phone_digits, language, postal_code, email_consent, "
            "created_by, created_at) "
            "SELECT 'bench-client-' || g, 'Bench Client ' || g, '+1727555' || lpad((g % 10000)::text, 4, '0'), "
            "'1727555' || lpad((g % 10000)::text, 4, '0'), 'en', '33701', false, :staff, "
            "now() - make_interval(secs => (:n - g)::float8 * :span / :n) "
            "FROM generate_series(1, :clients) AS g",
            params,
        ),
        (
            "INSERT INTO referrals (id, reference, status, urgency, reasons, note, client_id, next_step, consent, "
            "created_by, created_at, updated_at) "
            f"SELECT 'bench-referral-' || g, 'HX-B' || lpad(g::text, 7, '0'), ({statuses})[1 + g % 10], "
            "(ARRAY['routine','soon','urgent'])[1 + g % 3], '[\"rehab_exercise_needed\"]'::json, "
            "'Observed during a benchmark.', 'bench-client-' || (1 + g % :clients), 'partner_contacts_client', "
            '\'{"given": true, "method": "verbal", "scope": ["clinical"]}\'::json, :staff, '
            "now() - make_interval(secs => (:n - g)::float8 * :span / :n), "
            "now() - make_interval(secs => (:n - g)::float8 * :span / :n) "
            "FROM generate_series(1, :n) AS g",
            params,
        ),
        (
            "INSERT INTO offers (id, referral_id, partner_id, position, status, offered_at, expires_at, responded_at) "
            "SELECT 'bench-offer-' || substr(r.id, 16), r.id, "
            "'bench-' || lpad((abs(hashtext(r.id)) % 100)::text, 3, '0'), "
            f"0, {offer_case}, r.created_at, r.created_at + interval '3 days', "
            "CASE WHEN r.status IN ('requested', 'cancelled') THEN NULL ELSE r.created_at + interval '5 hours' END "
            "FROM referrals AS r",
            {},
        ),
        (
            "INSERT INTO outcomes (referral_id, offer_id, partner_id, outcome, booked_for, clearance, areas_to_avoid, "
            "pressure_limit, note, reported_at) "
            "SELECT o.referral_id, o.id, o.partner_id, 'completed', NULL, 'cleared', '', '', '', "
            "o.responded_at + interval '7 days' "
            "FROM offers AS o JOIN referrals AS r ON r.id = o.referral_id WHERE r.status = 'completed'",
            {},
        ),
    ]


def referrals_db(
    cache: Path, server_url: str, count: int, env: dict[str, str], *, replica: Callable[[str], None]
) -> str:
    """The URL of the generated million-referral database on ``server_url``'s server, built the
    first time (migrated, its therapist added, the partners put in its replica by ``replica``
    given its URL, the referrals generated and the dashboard's counters backfilled from them, as
    the migration that made the counters does)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from services.referrals.storage import figure_counters
    from shared import database

    name = f"handoff_bench_referrals_{count}"
    marker = cache / f"{name}.built"
    server = make_url(server_url).set(drivername="postgresql+asyncpg")
    url = server.set(database=name).render_as_string(hide_password=False)

    async def create() -> bool:
        engine = database.create_async_engine(
            server.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
        )
        try:
            async with engine.connect() as connection:
                found = await connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
                if found.first() is not None and marker.exists():
                    return False
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
                return True
        finally:
            await engine.dispose()

    async def generate() -> None:
        engine = database.create_async_engine(url)
        try:
            async with engine.begin() as connection:
                staff_id = (await connection.execute(text("SELECT id FROM staff_users"))).scalar_one()
                for statement, params in _generate_sql(count, staff_id):
                    await connection.execute(text(statement), params)
                zone = env.get("HANDOFF_CLINIC_TIMEZONE") or "America/New_York"
                await connection.run_sync(lambda sync: figure_counters.backfill(sync, zone=zone))
        finally:
            await engine.dispose()
        asyncio.run(vacuum())

    async def vacuum() -> None:
        # As autovacuum leaves the tables once it has passed (this server may run without it):
        # the planner's statistics, and the visibility map an index-only scan needs.
        engine = database.create_async_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text("VACUUM ANALYZE"))
        finally:
            await engine.dispose()

    def handoff(*argv: str, stdin: str = "") -> None:
        subprocess.run(
            [sys.executable, "-m", "services.cli", *argv],
            input=stdin,
            text=True,
            env={**env, "HANDOFF_REFERRALS_DB_URL": url},
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=1800,
        )

    if not asyncio.run(create()):
        # A kept database gets the migrations added since it was built (its indexes, say).
        handoff("db", "upgrade", "referrals")
        asyncio.run(vacuum())
        print(f"# {count:,} referrals: kept in database {name}", flush=True)
        return url
    started = time.perf_counter()
    handoff("db", "upgrade", "referrals")
    handoff("user", "add", "--email", "bench@clinic.example", "--role", "therapist", stdin=PASSWORD + "\n")
    # The partners before the referrals: the backfill counts each referral under its first
    # offer's partner's category, which a partner arriving later would make the replica's
    # handler refigure, referral by referral.
    replica(url)
    asyncio.run(generate())
    cache.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{count} referrals in database {name}\n")
    print(f"# {count:,} referrals generated in {time.perf_counter() - started:.0f} s: database {name}", flush=True)
    return url


PASSWORD = "benchmark password 2026"


def bare_get_app():
    """``GET /api/v1/referrals`` and ``GET /`` answering, from memory, the bytes the real app
    answered (a uvicorn factory; the files are named in the environment)."""
    listing = Path(os.environ["BENCH_LIST_FILE"]).read_bytes()
    homes = {
        90: Path(os.environ["BENCH_HOME_FILE"]).read_bytes(),
        365: Path(os.environ["BENCH_YEAR_FILE"]).read_bytes(),
    }

    @get("/api/v1/referrals", sync_to_thread=False)
    def referrals() -> Response:
        return Response(listing, media_type="application/json")

    @get("/", sync_to_thread=False)
    def dashboard(days: int = 90) -> Response:
        return Response(homes[days], media_type="text/html; charset=utf-8")

    return Litestar([referrals, dashboard], debug=False)


def referrals(cache: Path, *, server_url: str, count: int, requests: int) -> list[Figure]:
    from services.dev.ports import free_port
    from tests.bench.bench_referrals import Bench

    with tempfile.TemporaryDirectory(prefix="bench-scale-referrals-") as tmp:
        bench = Bench(Path(tmp), db_url="")
        try:

            def replica(url: str) -> None:
                bench.env["HANDOFF_REFERRALS_DB_URL"] = url
                bench.seed(100)  # the partners the offers name, in the replica (idempotent)

            url = referrals_db(cache, server_url, count, bench.env, replica=replica)
            replica(url)
            server = bench.start("serve", "referrals")
            bench.wait_healthy(server)
            headers = bench.token()
            paths = {"list": "/api/v1/referrals", "dashboard": "/", "year": "/?days=365"}
            for name, path in paths.items():
                answer = bench.http.get(path, headers=headers)
                if answer.status_code != 200:
                    raise SystemExit(f"GET {path}: {answer.status_code} {answer.text[:500]}")
                (bench.workdir / f"{name}.out").write_bytes(answer.content)
            port = free_port()
            bare = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "tests.bench.bench_scale:bare_get_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env={
                    **os.environ,
                    "BENCH_LIST_FILE": str(bench.workdir / "list.out"),
                    "BENCH_HOME_FILE": str(bench.workdir / "dashboard.out"),
                    "BENCH_YEAR_FILE": str(bench.workdir / "year.out"),
                },
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            bench.processes.append(bare)
            bench.wait_healthy(bare, f"http://127.0.0.1:{port}/api/v1/referrals", name="the bare app")
            times: dict[tuple[str, str], list[float]] = {}
            for name, path in paths.items():
                for app, base in (("real", ""), ("bare", f"http://127.0.0.1:{port}")):
                    took = []
                    for _ in range(5 + requests):
                        started = time.perf_counter()
                        bench.http.get(base + path, headers=headers).raise_for_status()
                        took.append((time.perf_counter() - started) * 1000)
                    times[(name, app)] = took[5:]
        finally:
            bench.close()

    def figure(name: str, label: str) -> Figure:
        real, bare = times[(name, "real")], times[(name, "bare")]
        p99 = percentile(real, 0.99)
        return Figure(
            name=f"{label}, {count:,} referrals on PostgreSQL: p99",
            figure=p99,
            unit="ms",
            baseline="bare Litestar handler answering the same bytes",
            baseline_figure=percentile(bare, 0.99),
            aim=f"≤ {REFERRALS_AIM_MS:g} ms",
            met=p99 <= REFERRALS_AIM_MS,
            notes=f"{requests} requests one at a time, p50 {statistics.median(real):.1f} ms "
            f"(baseline {statistics.median(bare):.1f}); one therapist's referrals, all {count:,}",
        )

    return [
        figure("list", "referral list (API, newest 100)"),
        figure("dashboard", "dashboard page (90 days)"),
        figure("year", "dashboard page (365 days)"),
    ]


# --- running -----------------------------------------------------------------------------------


def run(
    *,
    partners: int,
    import_rows: int,
    referral_count: int,
    db_url: str,
    rate: int,
    seconds: int,
    requests: int,
    cache: Path,
    only: list[str],
) -> list[Figure]:
    measured: list[Figure] = []
    if "directory" in only:
        measured += directory(cache, partners=partners, rate=rate, seconds=seconds)
        print(markdown(measured), flush=True)
    if "import" in only:
        measured += partner_import(rows=import_rows)
        print(markdown(measured[-2:]), flush=True)
    if "referrals" in only:
        server = db_url or os.environ.get("HANDOFF_TEST_POSTGRES_URL", "")
        if not server.startswith("postgresql"):
            print("# referrals at scale left out: give --db-url postgresql://… (the aim is on PostgreSQL)", flush=True)
        else:
            measured += referrals(cache, server_url=server, count=referral_count, requests=requests)
    return measured


def build(args: argparse.Namespace) -> None:
    """Build the kept data the parts asked for need, measuring nothing."""
    only = args.only or ["directory", "referrals"]
    cache = args.cache.expanduser()
    if "directory" in only:
        directory_db(cache, args.partners)
    server = args.db_url or os.environ.get("HANDOFF_TEST_POSTGRES_URL", "")
    if "referrals" in only and server.startswith("postgresql"):
        from tests.bench.bench_referrals import Bench

        with tempfile.TemporaryDirectory(prefix="bench-scale-build-") as tmp:
            bench = Bench(Path(tmp), db_url="")
            try:
                referrals_db(cache, server, args.referrals, bench.env)
            finally:
                bench.close()


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=1_000_000)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--db-url", default="", help="a PostgreSQL server for the referrals part")
    parser.add_argument("--rate", type=int, default=20, help="requests/s of the directory's latency runs")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per referrals figure")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--only", nargs="+", choices=["directory", "import", "referrals"], default=None)
    parser.add_argument("--build-only", action="store_true", help="build (or find) the generated data, then stop")
    args = parser.parse_args(argv)
    if args.build_only:
        build(args)
        return []
    measured = run(
        partners=args.partners,
        import_rows=args.import_rows,
        referral_count=args.referrals,
        db_url=args.db_url,
        rate=args.rate,
        seconds=args.seconds,
        requests=args.requests,
        cache=args.cache.expanduser(),
        only=args.only or ["directory", "import", "referrals"],
    )
    print(markdown(measured), flush=True)
    return measured


if __name__ == "__main__":
    main()
