"""Referral speed over real processes on loopback (not a test: pytest does not collect it).

    .venv/bin/python -m tests.bench.bench_referrals [--partners 100] [--creates 1000] [--concurrency 8]
                                                    [--rate 20] [--seconds 60] [--db-url URL]

Starts a private Redis and the SMTP catcher ``handoff dev`` uses (each email an ``.eml`` file),
migrates a fresh referrals database (SQLite unless ``--db-url``), adds a therapist, fills the
partner replica with ``--partners`` partners through the service's own ``PartnerChanged``
handler, then runs ``handoff serve referrals`` as a real process and measures:

  (a) ``POST /api/v1/referrals`` latency, one request at a time (p50, p99), ranked suggestions
      choosing the partners (no ``partner_ids``), so matching over the replica is included
  (b) creation throughput and latency with ``--concurrency`` clients at once
  (c) end to end, with ``handoff worker notifier`` running: from sending the POST to the offer
      email's arrival at the SMTP server (the ``.eml`` file's time), p50/p99, at ``--rate``
      referrals/s for ``--seconds``

Emails queued during (a) and (b) are dropped before (c) so that (c) starts from an empty queue.
Prints one line per figure. Every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from redis import Redis

from services.dev.mail_catcher import MailCatcher
from services.dev.ports import free_port
from services.dev.redis_server import RedisServer
from shared import queues
from shared.config import load_settings
from shared.messages import Address, Location, PartnerChanged, PartnerSnapshot

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "benchmark password 2026"
# The Contract's reason codes that create referrals, with the categories their partners need.
REASONS = ["calf_swelling_one_side", "suspected_fracture", "radiating_numbness", "rehab_exercise_needed",
           "strength_posture_goals"]
CATEGORIES = ["primary_care", "orthopedics", "neurology", "physical_therapy", "personal_training"]
REFERENCE = re.compile(r"HX-[A-Z0-9]{8}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (f"{label}: n={len(ms)} p50={statistics.median(ms):.1f} ms p99={percentile(ms, 0.99):.1f} ms "
            f"max={max(ms):.1f} ms")


class Bench:
    def __init__(self, workdir: Path, *, db_url: str) -> None:
        self.workdir = workdir
        self.redis = RedisServer(workdir / "redis").start()
        self.mail = MailCatcher(workdir / "mail").start()
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")},
            "HANDOFF_DATA_DIR": str(workdir / "data"),
            "HANDOFF_REDIS_URL": self.redis.url,
            "HANDOFF_REFERRALS_PORT": str(self.port),
            "HANDOFF_SMTP_PORT": str(self.mail.port),
            "HANDOFF_SECRET_KEY": "benchmark-secret-key-0123456789-abcdefghij",
            "HANDOFF_LOG_LEVEL": "WARNING",
        }
        if db_url:
            self.env["HANDOFF_REFERRALS_DB_URL"] = db_url
        self.processes: list[subprocess.Popen] = []
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30,
                                 limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))

    def handoff(self, *args: str, stdin: str = "") -> None:
        done = subprocess.run([sys.executable, "-m", "services.cli", *args], input=stdin, text=True,
                              capture_output=True, env=self.env, cwd=ROOT, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"handoff {' '.join(args)} failed:\n{done.stderr}")

    def start(self, *args: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "services.cli", *args], env=self.env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.processes.append(process)
        return process

    def seed(self, partners: int) -> None:
        """The replica's partners, applied by the service's own message handler."""
        from services.referrals import bootstrap

        settings = load_settings(environ=self.env)

        async def run() -> None:
            runtime = bootstrap.build(settings)
            try:
                for i in range(partners):
                    # Spread around St. Petersburg, FL, up to ~40 km from 33701.
                    snapshot = PartnerSnapshot(
                        id=f"bench-{i:03d}", slug=f"bench-{i:03d}", name=f"Bench Partner {i:03d}",
                        category=CATEGORIES[i % len(CATEGORIES)], email=f"partner{i:03d}@bench.example",
                        status="active", accepting_new_clients="yes" if i % 4 else "waitlist",
                        address=Address(city="St. Petersburg", state="FL", postal_code="33701"),
                        location=Location(lat=27.77 + (i % 10) * 0.03, lon=-82.64 + (i // 10) * 0.03),
                        languages=["English", "Spanish"] if i % 3 == 0 else ["English"], telehealth=i % 2 == 0,
                    )
                    await runtime.referrals.apply_partner_changed(
                        PartnerChanged(partner=snapshot, version=1, changed_at=datetime.now(UTC)))
            finally:
                await runtime.close()

        asyncio.run(run())

    def wait_healthy(self, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"handoff serve referrals exited:\n{process.stderr.read()}")
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise SystemExit("handoff serve referrals did not become healthy in 60 s")

    def token(self) -> dict[str, str]:
        response = self.http.post("/api/v1/auth/token", json={"email": "bench@clinic.example", "password": PASSWORD})
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def create(self, headers: dict[str, str], n: int) -> tuple[float, str]:
        """POST one referral; (seconds it took, its reference)."""
        reason = REASONS[n % len(REASONS)]
        scope = ["non_clinical"] if reason == "strength_posture_goals" else ["clinical"]
        body = {"client": {"name": f"Bench Client {n}", "postal_code": "33701"},
                "consent": {"given": True, "method": "verbal", "scope": scope},
                "reasons": [reason], "note": "Observed during a benchmark."}
        started = time.perf_counter()
        response = self.http.post("/api/v1/referrals", json=body, headers=headers)
        took = time.perf_counter() - started
        if response.status_code != 201:
            raise SystemExit(f"create failed: {response.status_code} {response.text}")
        return took, response.json()["reference"]

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.http.close()
        self.mail.stop()
        self.redis.stop()


def arrivals(directory: Path) -> dict[str, float]:
    """Each caught email's reference and the time its file was written."""
    found: dict[str, float] = {}
    for path in directory.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        match = REFERENCE.search(str(message["Subject"] or ""))
        if match:
            found.setdefault(match.group(0), path.stat().st_mtime)
    return found


def breakdown(redis: Redis, sent: dict[str, float]) -> str:
    """Where (c)'s time went, from the RQ jobs' own times: POST -> enqueued (commit and relay),
    enqueued -> started (waiting for the worker), started -> ended (render, SMTP, report)."""
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    from shared import codec

    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)
    parts: dict[str, list[float]] = {"relay": [], "queue": [], "send": []}
    for job in Job.fetch_many(FinishedJobRegistry(queue=queue).get_job_ids(), connection=redis,
                              serializer=queue.serializer):
        if job is None or not job.enqueued_at or not job.started_at or not job.ended_at:
            continue
        reference = codec.decode(job.args[0]).context.reference
        if reference not in sent:
            continue
        enqueued, started, ended = (moment.replace(tzinfo=moment.tzinfo or UTC).timestamp()
                                    for moment in (job.enqueued_at, job.started_at, job.ended_at))
        parts["relay"].append(enqueued - sent[reference])
        parts["queue"].append(started - enqueued)
        parts["send"].append(ended - started)
    return "(c) " + "; ".join(summary(name, values).split(": ", 1)[1].replace("n=", f"{name}: n=")
                              for name, values in parts.items() if values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--creates", type=int, default=1000, help="referrals in (a) and again in (b)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0, help="referrals per second in (c)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long (c) runs")
    parser.add_argument("--db-url", default="", help="referrals database (default: SQLite in a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as tmp:
        bench = Bench(Path(tmp), db_url=args.db_url)
        try:
            bench.handoff("db", "upgrade", "referrals")
            bench.handoff("user", "add", "--email", "bench@clinic.example", "--role", "therapist",
                          stdin=PASSWORD + "\n")
            bench.seed(args.partners)
            server = bench.start("serve", "referrals")
            bench.wait_healthy(server)
            headers = bench.token()
            print(f"database: {'given URL' if args.db_url else 'SQLite'}; partners in replica: {args.partners}")

            for n in range(20):  # warm-up: connections, caches
                bench.create(headers, n)

            # (a) one at a time
            latencies = [bench.create(headers, n)[0] for n in range(args.creates)]
            print(summary("(a) create, sequential", latencies))
            print(f"(a) throughput, sequential: {len(latencies) / sum(latencies):.0f} referrals/s")

            # (b) concurrent
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                results = list(pool.map(lambda n: bench.create(headers, n), range(args.creates)))
            wall = time.perf_counter() - started
            print(summary(f"(b) create, {args.concurrency} concurrent clients", [r[0] for r in results]))
            print(f"(b) throughput: {args.creates / wall:.0f} referrals/s")

            # (c) end to end at a steady rate, from an empty email queue
            redis = Redis.from_url(bench.redis.url)
            queues.rq_queue(queues.NOTIFICATIONS, redis).empty()
            for path in (bench.workdir / "mail").glob("*.eml"):
                path.unlink()
            bench.start("worker", "notifier")
            # The worker's start-up is not part of what is measured: one referral's email first.
            _, first = bench.create(headers, 0)
            deadline = time.monotonic() + 60
            while first not in arrivals(bench.workdir / "mail"):
                if time.monotonic() > deadline:
                    raise SystemExit("the notifier worker sent nothing within 60 s")
                time.sleep(0.1)
            for path in (bench.workdir / "mail").glob("*.eml"):
                path.unlink()
            sent: dict[str, float] = {}
            posts: list[float] = []
            lock = threading.Lock()

            def one(n: int) -> None:
                at = time.time()
                took, reference = bench.create(headers, n)
                with lock:
                    sent[reference] = at
                    posts.append(took)

            total = int(args.rate * args.seconds)
            interval = 1.0 / args.rate
            begin = time.perf_counter()
            with ThreadPoolExecutor(max_workers=16) as pool:
                for n in range(total):
                    delay = begin + n * interval - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(one, n)
            achieved = total / (time.perf_counter() - begin)

            deadline = time.monotonic() + 60
            caught: dict[str, float] = {}
            while time.monotonic() < deadline:
                caught = arrivals(bench.workdir / "mail")
                if all(ref in caught for ref in sent):
                    break
                time.sleep(0.5)
            delays = [caught[ref] - at for ref, at in sent.items() if ref in caught]
            print(f"(c) offered {total} referrals at {achieved:.1f}/s (asked {args.rate:g}/s); "
                  f"emails caught: {len(delays)}/{len(sent)}")
            print(summary("(c) the POST itself", posts))
            if delays:
                print(summary("(c) POST -> email at SMTP server", delays))
                # Per 10 s window: a queue that builds up shows as a rising p99.
                start = min(sent.values())
                windows: dict[int, list[float]] = {}
                for ref, at in sent.items():
                    if ref in caught:
                        windows.setdefault(int((at - start) // 10), []).append(caught[ref] - at)
                print("(c) p99 per 10 s window: " + ", ".join(
                    f"{percentile(v, 0.99) * 1000:.0f} ms" for _, v in sorted(windows.items())))
            print(breakdown(redis, sent))
            redis.close()
        finally:
            bench.close()


if __name__ == "__main__":
    main()
