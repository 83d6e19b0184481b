"""Notifier speed, in one run against one local SMTP server (not a test: pytest does not collect it).

    .venv/bin/python -m tests.bench.bench_notifier [--emails 2000] [--log-level INFO]

Starts a private Redis (AOF on, as in production) and one in-process aiosmtpd server whose
handler only counts and time-stamps each message (no disk writes, so SMTP is not the bottleneck
being measured), then measures:

  (a) emails/s of one ``handoff worker notifier`` process (real jobs: render, ledger, SMTP, report)
  (b) the same worker class on no-op jobs with the same payloads: the queue's own ceiling
  (c) a plain smtplib loop over one reused connection: the SMTP ceiling
  (d) enqueue -> SMTP acceptance latency, p50/p99, at 50 emails/s into one running worker
  (e) throughput with 1 and 2 worker processes

Throughput is counted from the first job's start to the last job's end as RQ records them, so a
worker process's start-up is left out. Each figure sits beside the baseline of the same run: (a)
beside (b), (d) beside one message's SMTP time in (c), two workers beside one. Returns
(:func:`run`) and prints the figures. ``--emails 100 --latency-seconds 2`` is the smallest useful run.
"""

from __future__ import annotations

import argparse
import os
import resource
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import psutil
from aiosmtpd.controller import Controller
from redis import Redis

from services.dev.ports import free_port
from services.dev.redis_server import RedisServer
from services.notifier.mailer import compose
from services.notifier.rendering import Renderer
from shared import codec, queues
from shared.messages import EmailContext, SendEmail
from tests.bench.figures import Figure, markdown, percentile

ROOT = Path(__file__).resolve().parents[2]


def noop(payload: str) -> None:
    """The no-op job for (b): decodes nothing, sends nothing."""


class Counting:
    """Accepts every message; remembers when each Message-ID was accepted."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        now = time.time()
        content = envelope.original_content or envelope.content
        start = content.find(b"Message-ID: <")
        if start >= 0:
            end = content.find(b"@", start)
            with self.lock:
                self.accepted[content[start + 13 : end].decode()] = now
        return "250 OK"


def command(notification_id: str) -> SendEmail:
    return SendEmail(
        notification_id=notification_id,
        kind="offer",
        to="Ruiz PT <intake@ruiz.example>",
        referral_id="r-1",
        context=EmailContext(
            recipient_name="Ruiz Physical Therapy",
            partner_name="Ruiz Physical Therapy",
            reference="HX-1234",
            urgency="urgent",
            action_url="https://referrals.example/respond/tok3n.abc",
            expires_at=datetime(2026, 5, 12, 21, 0, tzinfo=UTC),
        ),
    )


def enqueue(redis: Redis, ids: Iterable[str], *, handler: str | None = None) -> None:
    route = queues.ROUTES[queues.NOTIFICATIONS]
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)
    with redis.pipeline() as pipe:
        for notification_id in ids:
            queue.enqueue_call(
                handler or route.handler,
                args=(codec.encode(command(notification_id)),),
                job_id=notification_id,
                retry=route.retry,
                timeout=route.timeout,
                result_ttl=queues.DEDUPLICATION_SECONDS,
                pipeline=pipe,
                # As shared.queues.enqueue names them (RQ logs the description of every job).
                description=f"SendEmail {notification_id}",
            )
        pipe.execute()


def workers(count: int, *, env: dict[str, str], burst: bool) -> list[subprocess.Popen]:
    argv = [sys.executable, "-m", "services.cli", "worker", "notifier"] + (["--burst"] if burst else [])
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    return [subprocess.Popen(argv, cwd=ROOT, env=env, **quiet) for _ in range(count)]


def span(redis: Redis, ids: list[str]) -> float:
    """Seconds from the first job's start to the last job's end."""
    queue = queues.rq_queue(queues.NOTIFICATIONS, redis)
    jobs = [queue.fetch_job(i) for i in ids]
    assert all(job is not None and job.get_status() == "finished" for job in jobs), "not every job finished"
    return (max(job.ended_at for job in jobs) - min(job.started_at for job in jobs)).total_seconds()


def run_burst(
    redis: Redis, env: dict[str, str], *, prefix: str, count: int, processes: int, handler: str | None = None
) -> float:
    """Jobs per second for ``count`` jobs worked by ``processes`` burst workers. Also records
    where the CPU went meanwhile, in cores (see :data:`CPU`)."""
    ids = [f"{prefix}-{i}" for i in range(count)]
    enqueue(redis, ids, handler=handler)
    before = _cpu()
    started = time.monotonic()
    for process in workers(processes, env=env, burst=True):
        process.wait()
    wall = time.monotonic() - started
    CPU[prefix] = {name: (after - before[name]) / wall for name, after in _cpu().items()}
    return count / span(redis, ids)


# Cores busy during each burst run, by prefix: the whole machine, the worker processes, the
# SMTP server (this process) and Redis. The machine is shared, so the rest is someone else's.
CPU: dict[str, dict[str, float]] = {}
REDIS_PID: list[int] = []


def _cpu() -> dict[str, float]:
    machine = psutil.cpu_times()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers, once waited for
    me = psutil.Process().cpu_times()
    redis_times = psutil.Process(REDIS_PID[0]).cpu_times() if REDIS_PID else None
    return {
        "machine": machine.user + machine.nice + machine.system + machine.irq + machine.softirq,
        "workers": children.ru_utime + children.ru_stime,
        "smtp server": me.user + me.system,
        "redis": (redis_times.user + redis_times.system) if redis_times else 0.0,
    }


def _cpu_line(prefix: str) -> str:
    return "cores busy: " + ", ".join(f"{name} {value:.2f}" for name, value in CPU[prefix].items())


def smtp_ceiling(port: int, count: int) -> tuple[float, list[float]]:
    """Messages per second over one reused connection, and each message's seconds."""
    renderer = Renderer(clinic_name="Sunshine Massage", timezone="America/New_York")
    rendered = renderer.render("offer", command("x").context)
    messages = [
        compose(rendered=rendered, to="intake@ruiz.example", notification_id=f"c-{i}", mail_from="handoff@localhost")
        for i in range(count)
    ]
    connection = smtplib.SMTP("127.0.0.1", port, timeout=10)
    connection.ehlo()
    each: list[float] = []
    started = time.perf_counter()
    for message in messages:
        sending = time.perf_counter()
        connection.sendmail(message.sender, [message.recipient], message.data)
        each.append(time.perf_counter() - sending)
    elapsed = time.perf_counter() - started
    connection.quit()
    return count / elapsed, each


def latency(
    redis: Redis, env: dict[str, str], smtp: Counting, *, rate: float, seconds: float
) -> tuple[float, float, int]:
    """p50 and p99 (ms) from enqueue to SMTP acceptance at ``rate`` emails/s, one worker running."""
    [worker] = workers(1, env=env, burst=False)
    try:
        time.sleep(2.0)  # let it start and reach the blocking dequeue
        enqueued: dict[str, float] = {}
        total = int(rate * seconds)
        started = time.perf_counter()
        for i in range(total):
            due = started + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            notification_id = f"d-{i}"
            enqueued[notification_id] = time.time()
            queues.enqueue(redis, command(notification_id), job_id=notification_id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(i in smtp.accepted for i in enqueued):
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait()
    waits = [(smtp.accepted[i] - t) * 1000 for i, t in enqueued.items() if i in smtp.accepted]
    if not waits:
        raise SystemExit("(d) no email reached the SMTP server within 30 s")
    return percentile(waits, 0.5), percentile(waits, 0.99), len(enqueued) - len(waits)


def run(*, emails: int, latency_seconds: float, log_level: str = "INFO") -> list[Figure]:
    """(a)-(e) as figures beside their baselines (see the module's docstring)."""
    smtp = Counting()
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port())
    controller.start()
    with tempfile.TemporaryDirectory() as data, RedisServer(Path(data) / "redis") as redis_server:
        redis = Redis.from_url(redis_server.url)
        REDIS_PID[:] = [redis_server.process.pid]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
        env.update(
            HANDOFF_REDIS_URL=redis_server.url,
            HANDOFF_SMTP_PORT=str(controller.port),
            HANDOFF_DATA_DIR=data,
            HANDOFF_LOG_LEVEL=log_level,
        )
        n = emails
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"cores: {os.cpu_count()}  load average before: {load}  emails per figure: {n}", end="  ")
        print(f"worker log level: {log_level}")
        print("SMTP server: in-process aiosmtpd, handler counts only (no disk)")

        c, sends = smtp_ceiling(controller.port, n)
        print(f"(c) SMTP ceiling, plain smtplib loop, one connection: {c:8.1f} emails/s")
        b = run_burst(redis, env, prefix="b", count=n, processes=1, handler="tests.bench.bench_notifier.noop")
        print(f"(b) queue ceiling, same worker on no-op jobs:         {b:8.1f} jobs/s")
        a = run_burst(redis, env, prefix="a", count=n, processes=1)
        print(f"(a) one notifier worker process:                     {a:8.1f} emails/s  ({a / b:.0%} of (b))")
        two = run_burst(redis, env, prefix="e", count=2 * n, processes=2)
        print(f"(e) 1 worker: {a:8.1f} emails/s   2 workers: {two:8.1f} emails/s  ({two / a:.2f}x)")
        p50, p99, missing = latency(redis, env, smtp, rate=50, seconds=latency_seconds)
        print(
            f"(d) enqueue -> SMTP acceptance at 50 emails/s: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
            + (f"  ({missing} not delivered in time)" if missing else "")
        )
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        redis.close()
    controller.stop()
    sends_ms = [t * 1000 for t in sends]
    return [
        Figure(
            name="(a) one notifier worker: throughput",
            figure=a,
            unit="emails/s",
            baseline="(b) the same RQ worker on no-op jobs (queue ceiling)",
            baseline_figure=b,
            aim="≥ 100 emails/s and ≥ 80% of (b)",
            met=a >= 100 and a >= 0.8 * b,
            notes=f"{n} emails; (c) SMTP ceiling, smtplib over one connection: {c:.0f} emails/s; "
            f"(a) {_cpu_line('a')}; (b) {_cpu_line('b')}",
        ),
        Figure(
            name="(d) enqueue → SMTP acceptance at 50 emails/s: p99",
            figure=p99,
            unit="ms",
            baseline="one message's SMTP time in (c), p99",
            baseline_figure=percentile(sends_ms, 0.99),
            aim="≤ 250 ms",
            met=p99 <= 250 and not missing,
            notes=f"{int(50 * latency_seconds)} emails over {latency_seconds:g} s; p50 {p50:.1f} ms (baseline "
            f"{percentile(sends_ms, 0.5):.2f})" + (f"; **{missing} not delivered in 30 s**" if missing else ""),
        ),
        Figure(
            name="(e) two notifier workers: throughput",
            figure=two,
            unit="emails/s",
            baseline="(a) one worker",
            baseline_figure=a,
            aim="≥ 1.5× one worker",
            met=two >= 1.5 * a,
            notes=f"{2 * n} emails; {_cpu_line('e')}",
        ),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    """Run with command-line ``argv``; print the figures as Markdown and return them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000, help="jobs per throughput figure")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    measured = run(emails=args.emails, latency_seconds=args.latency_seconds, log_level=args.log_level)
    print(markdown(measured), flush=True)
    return measured


if __name__ == "__main__":
    main()
