"""Directory speed over real processes on loopback (not a test: pytest does not collect it).

    .venv/bin/python -m tests.bench.bench_directory [--sizes 10000 100000] [--seconds 3]
                                                    [--rate 100] [--connections 16] [--repeat 3]

For each size: migrates a fresh SQLite directory database, bulk-loads that many partners (a
fifth around St. Petersburg, FL, the rest spread over US ZIP centroids), starts a private
Redis, and serves two apps under uvicorn with the same settings (one process, loopback):

  real  the directory app (``create_app``), as ``handoff serve directory`` runs it
  bare  a bare Litestar app whose handlers return, from memory, the very bytes the real
        app answered for the same URLs

For both apps and each URL -- the public page ``/partners-in-health``, a partner's page and a near + category
search ``/api/v1/partners?near=…&radius_km=25&category=physical_therapy`` -- it measures

  throughput  ``wrk`` (Debian package), 1 thread, ``--connections`` keep-alive connections,
              ``--seconds`` seconds, after a one-second warm-up
  latency     p50/p99 at a fixed ``--rate`` of requests per second for ``--seconds``, by an
              open-loop client in its own process (latency counted from each request's
              scheduled time, so a stall is not hidden by the client waiting)

plus the search from 2,000 different points (every request misses the response cache: the
search itself). Each measurement runs ``--repeat`` times, real and bare alternating; it returns
(:func:`run`) and prints the figures: medians beside the bare app's, bests in the notes.
``--sizes 1000 --seconds 1 --repeat 1 --rate 20 --connections 4`` is the smallest useful run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.request import urlopen

from litestar import Litestar, Response, get

from tests.bench.figures import Figure, markdown, percentile, unthrottled

ROOT = Path(__file__).resolve().parents[2]
ST_PETE = (27.7723, -82.6386)
PAGE = "/partners-in-health"
# A partner's own page (one of the St. Petersburg fifth), cached per catalogue revision like the page.
PARTNER = "/partners-in-health/partner-000005"
SEARCH = "/api/v1/partners?near=27.7723,-82.6386&radius_km=25&category=physical_therapy&limit=20"
# The same search from 2,000 different points around St. Petersburg: every request misses the
# response cache, so these figures are the search itself (database, ranking, encoding).
VARIED = [
    f"/api/v1/partners?near={27.7723 + (n % 50 - 25) * 0.004:.4f},{-82.6386 + (n // 50 - 20) * 0.004:.4f}"
    "&radius_km=25&category=physical_therapy&limit=20"
    for n in range(2000)
]


# --- the two apps (uvicorn factories) ---------------------------------------------------------


def real_app():
    from services.directory.web.app import create_app
    from shared.config import load_settings

    return create_app(load_settings())


def bare_app():
    page = Path(os.environ["BENCH_PAGE_FILE"]).read_bytes()
    found = Path(os.environ["BENCH_JSON_FILE"]).read_bytes()
    partner_page = Path(os.environ.get("BENCH_PARTNER_FILE") or os.environ["BENCH_PAGE_FILE"]).read_bytes()

    @get(PAGE, sync_to_thread=False)
    def public_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    @get(PARTNER, sync_to_thread=False)
    def one_partner() -> Response:
        return Response(partner_page, media_type="text/html; charset=utf-8")

    @get("/api/v1/partners", sync_to_thread=False)
    def search() -> Response:
        return Response(found, media_type="application/json")

    return Litestar([public_page, one_partner, search], debug=False)


# --- loading partners ----------------------------------------------------------------------------


def load_partners(db_url: str, count: int, *, seed: int = 7) -> None:
    """Bulk-insert ``count`` valid, active partners through the repository's row mapping."""
    import zipcodes
    from sqlalchemy import insert

    from services.directory.domain import Partner, PartnerDetails
    from services.directory.fields import Address, Location
    from services.directory.storage import catalogue, partners, to_row
    from shared import categories, database

    rng = random.Random(seed)
    places = [
        (z["zip_code"], float(z["lat"]), float(z["long"]), z["city"], z["state"])
        for z in zipcodes.list_all()
        if z.get("lat") and z.get("long")
    ]
    slugs = list(categories.load())
    languages = [("English",), ("English", "Spanish"), ("English", "Vietnamese"), ("Spanish",)]
    now = datetime.now(UTC)

    def partner(n: int) -> dict:
        if n % 5 == 0:
            lat, lon = rng.gauss(ST_PETE[0], 0.2), rng.gauss(ST_PETE[1], 0.2)
            zip_code, city, state = "33701", "St. Petersburg", "FL"
        else:
            zip_code, lat, lon, city, state = rng.choice(places)
            lat, lon = lat + rng.uniform(-0.02, 0.02), lon + rng.uniform(-0.02, 0.02)
        category = slugs[n % len(slugs)]
        name = f"Partner {n:06d} {category.replace('_', ' ').title()}"
        details = PartnerDetails(
            name=name,
            category=category,
            email=f"p{n}@bench.example",
            phone=f"+1727555{n % 100 + 100:04d}",
            practice=f"Practice {n % 997}",
            credentials="DPT",
            website=f"https://p{n}.bench.example",
            address=Address(line1=f"{n % 9000 + 100} Main St", city=city, state=state, postal_code=zip_code),
            location=Location(round(lat, 6), round(lon, 6)),
            languages=rng.choice(languages),
            telehealth=n % 3 == 0,
            accepting_new_clients=("yes", "no", "waitlist")[n % 3],
            hours="Mon–Fri 8–5",
            specialties=("rehab", "sports"),
            accepts_referrals_from=("massage therapist",),
        )
        return to_row(
            Partner(
                id=str(uuid.UUID(int=rng.getrandbits(128))),
                slug=f"partner-{n:06d}",
                details=details,
                status="active",
                version=1,
                created_at=now,
                updated_at=now,
            )
        )

    async def insert_all() -> None:
        engine = database.create_engine(db_url)
        try:
            for start in range(0, count, 5000):
                batch = [partner(n) for n in range(start, min(start + 5000, count))]
                async with engine.begin() as connection:
                    await connection.execute(insert(partners), batch)
            async with engine.begin() as connection:
                await connection.execute(catalogue.update().values(revision=catalogue.c.revision + 1))
        finally:
            await engine.dispose()

    asyncio.run(insert_all())


# --- servers and load --------------------------------------------------------------------------------


def serve(factory: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"tests.bench.bench_directory:{factory}",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urlopen(f"http://127.0.0.1:{port}{PAGE}", timeout=10) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{factory} did not start on port {port}")


def wrk(url: str, *, seconds: int, connections: int, paths: list[str] | None = None) -> float:
    """Requests per second, with a one-second warm-up first. With ``paths``, each request
    takes the next of them (a wrk Lua script)."""
    script: list[str] = []
    if paths:
        lua = Path(tempfile.mkstemp(suffix=".lua")[1])
        entries = ",".join(f'"{path}"' for path in paths)
        lua.write_text(
            f"paths = {{{entries}}}\nn = 0\nrequest = function()\n  n = n % #paths + 1\n"
            "  return wrk.format(nil, paths[n])\nend\n"
        )
        script = ["-s", str(lua)]
    subprocess.run(["wrk", "-t1", f"-c{connections}", "-d1s", *script, url], capture_output=True, check=True)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *script, url], capture_output=True, text=True, check=True
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed responses\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def fixed_rate(url: str, *, rate: int, seconds: int, connections: int, varied: bool = False) -> dict:
    command = [
        sys.executable,
        "-m",
        "tests.bench.bench_directory",
        "--load",
        url,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
        *(["--varied"] if varied else []),
    ]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


async def open_loop(url: str, *, rate: int, seconds: int, connections: int, varied: bool = False) -> dict:
    """Send ``rate`` requests per second for ``seconds`` over keep-alive connections; each
    latency runs from the request's scheduled time to its last response byte. ``varied``
    cycles through :data:`VARIED` instead of requesting ``url``'s path."""
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in (VARIED if varied else [path])]
    sent = 0
    schedule: asyncio.Queue[float] = asyncio.Queue()
    latencies: list[float] = []
    failures = 0

    async def client() -> None:
        nonlocal failures, sent
        reader, writer = await asyncio.open_connection(host, port)
        while True:
            due = await schedule.get()
            if due < 0:
                writer.close()
                return
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            writer.write(requests[sent % len(requests)])
            sent += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)
            if not head.startswith(b"HTTP/1.1 200"):
                failures += 1

    workers = [asyncio.create_task(client()) for _ in range(connections)]
    start = time.perf_counter() + 0.2
    total = rate * seconds
    for n in range(total):
        schedule.put_nowait(start + n / rate)
    for _ in workers:
        schedule.put_nowait(-1)
    await asyncio.gather(*workers)
    return {
        "requests": len(latencies),
        "failures": failures,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def bench(size: int, *, seconds: int, rate: int, connections: int, repeat: int) -> dict:
    from services.dev.ports import free_port
    from services.dev.redis_server import RedisServer
    from services.directory.storage import MIGRATIONS
    from shared import database

    work = Path(tempfile.mkdtemp(prefix="bench-directory-"))
    processes: list[subprocess.Popen] = []
    try:
        db_url = f"sqlite+aiosqlite:///{work / 'directory.db'}"
        database.upgrade(migrations=MIGRATIONS, url=db_url)
        started = time.perf_counter()
        load_partners(db_url, size)
        print(f"# {size} partners loaded in {time.perf_counter() - started:.1f} s", flush=True)
        with RedisServer(work / "redis") as redis:
            env = {
                "HANDOFF_DIRECTORY_DB_URL": db_url,
                "HANDOFF_REDIS_URL": redis.url,
                "HANDOFF_SECRET_KEY": "bench-secret-of-at-least-32-bytes-long",
                "HANDOFF_DATA_DIR": str(work),
                "HANDOFF_LOG_LEVEL": "WARNING",
                **unthrottled(),
            }
            real_port, bare_port = free_port(), free_port()
            processes.append(serve("real_app", real_port, env))
            real = f"http://127.0.0.1:{real_port}"
            with urlopen(real + PAGE) as response:
                (work / "page.html").write_bytes(response.read())
            with urlopen(real + PARTNER) as response:
                (work / "partner.html").write_bytes(response.read())
            with urlopen(real + SEARCH) as response:
                body = response.read()
                (work / "search.json").write_bytes(body)
            found = len(json.loads(body)["items"])
            processes.append(
                serve(
                    "bare_app",
                    bare_port,
                    {
                        "BENCH_PAGE_FILE": str(work / "page.html"),
                        "BENCH_JSON_FILE": str(work / "search.json"),
                        "BENCH_PARTNER_FILE": str(work / "partner.html"),
                    },
                )
            )
            bare = f"http://127.0.0.1:{bare_port}"
            results: dict = {"size": size, "search_items": found, "page_bytes": (work / "page.html").stat().st_size}
            # This machine is shared: real and bare runs alternate, `repeat` times each, so that a
            # burst of other work falls on both rather than on one of them.
            targets = [("page", app, base + PAGE, None) for app, base in (("real", real), ("bare", bare))]
            targets += [("partner", app, base + PARTNER, None) for app, base in (("real", real), ("bare", bare))]
            targets += [("search", app, base + SEARCH, None) for app, base in (("real", real), ("bare", bare))]
            targets.append(("varied", "real", real + SEARCH, VARIED))
            for _ in range(repeat):
                for name, app, url, paths in targets:
                    results.setdefault(f"{name}_{app}_rps", []).append(
                        wrk(url, seconds=seconds, connections=connections, paths=paths)
                    )
                    results.setdefault(f"{name}_{app}_latency", []).append(
                        fixed_rate(url, rate=rate, seconds=seconds, connections=connections, varied=paths is not None)
                    )
            return results
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def figures(results: dict, *, rate: int, connections: int, seconds: int) -> list[Figure]:
    """The repeated runs as figures: throughput as the median (best in the notes), p99 as the
    median of the runs' p99s; the real app beside the bare one."""
    size = results["size"]
    runs = len(results["page_real_rps"])
    how = f"wrk, {connections} connections, {seconds} s, median of {runs}"

    def rps(key: str) -> tuple[float, float]:
        return statistics.median(results[key]), max(results[key])

    def latency(key: str) -> tuple[float, float, str]:
        measured = results[key]
        p50 = statistics.median(run["p50_ms"] for run in measured)
        p99 = statistics.median(run["p99_ms"] for run in measured)
        failed = sum(run["failures"] for run in measured)
        p99s = ", ".join(f"{run['p99_ms']:.1f}" for run in measured)
        return p99, p50, f"p50 {p50:.2f} ms; p99 of each run: {p99s}" + (f"; **{failed} failed**" if failed else "")

    def throughput(label: str, real_key: str, bare_key: str, *, least: float = 0.0) -> Figure:
        (real, real_best), (bare, bare_best) = rps(real_key), rps(bare_key)
        aim = {"aim": f"≥ {least:.0%} of bare", "met": real >= least * bare} if least else {}
        return Figure(
            name=f"{label}, {size:,} partners: throughput",
            figure=real,
            unit="req/s",
            baseline="bare Litestar handler, same bytes",
            baseline_figure=bare,
            notes=f"{how}; best {real_best:.0f} vs {bare_best:.0f}",
            **aim,
        )

    def p99(label: str, real_key: str, bare_key: str, *, search: bool) -> Figure:
        real, _, real_notes = latency(real_key)
        bare, bare_p50, _ = latency(bare_key)
        # The issue sets the search aim at 100,000 partners; a smaller directory must meet it too.
        aim = {"aim": "≤ 25 ms (set at 100,000 partners)", "met": real <= 25} if search else {}
        return Figure(
            name=f"{label}, {size:,} partners: p99 at {rate} req/s",
            figure=real,
            unit="ms",
            baseline="bare Litestar handler, same bytes",
            baseline_figure=bare,
            notes=f"{real_notes}; bare p50 {bare_p50:.2f} ms; open-loop client, {seconds} s",
            **aim,
        )

    return [
        # Issue 19: the cached pages at ≥ 0.8× a bare handler serving the same bytes.
        throughput("public page", "page_real_rps", "page_bare_rps", least=0.8),
        p99("public page", "page_real_latency", "page_bare_latency", search=False),
        throughput("a partner's page", "partner_real_rps", "partner_bare_rps", least=0.8),
        p99("a partner's page", "partner_real_latency", "partner_bare_latency", search=False),
        throughput("search, same URL", "search_real_rps", "search_bare_rps"),
        p99("search, same URL", "search_real_latency", "search_bare_latency", search=True),
        throughput("search from 2,000 points (each a cache miss)", "varied_real_rps", "search_bare_rps"),
        p99("search from 2,000 points (each a cache miss)", "varied_real_latency", "search_bare_latency", search=True),
    ]


def run(*, sizes: list[int], seconds: int, rate: int, connections: int, repeat: int) -> list[Figure]:
    """Every figure for every size (see the module's docstring)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    measured: list[Figure] = []
    for size in sizes:
        results = bench(size, seconds=seconds, rate=rate, connections=connections, repeat=repeat)
        print(
            f"# {size} partners: search returns {results['search_items']} items; page {results['page_bytes']} bytes",
            flush=True,
        )
        measured += figures(results, rate=rate, connections=connections, seconds=seconds)
    return measured


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run with command-line ``argv``; print the figures as Markdown and return them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement, real and bare alternating")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: run the open-loop client
    parser.add_argument("--varied", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        print(
            json.dumps(
                asyncio.run(
                    open_loop(
                        args.load,
                        rate=args.rate,
                        seconds=args.seconds,
                        connections=args.connections,
                        varied=args.varied,
                    )
                )
            )
        )
        return []
    measured = run(
        sizes=args.sizes, seconds=args.seconds, rate=args.rate, connections=args.connections, repeat=args.repeat
    )
    print(markdown(measured), flush=True)
    return measured


if __name__ == "__main__":
    main()
