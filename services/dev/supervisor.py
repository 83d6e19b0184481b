"""``handoff dev``: the whole system on one machine.

Starts a private Redis (AOF on, under the data dir), an SMTP catcher writing ``.eml`` files,
migrates both SQLite databases, then runs both web services and the three workers as child
processes, restarting any that exits, for as long as it runs: one that keeps crashing waits
longer before each restart (RESTART_FIRST_SECONDS doubling up to RESTART_CAP_SECONDS, said on
standard error) while the others carry on. Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from services.dev.mail_catcher import MailCatcher
from services.dev.ports import free_port, wait_for_port
from services.dev.processes import die_with_parent
from services.dev.redis_server import RedisServer, url_file
from shared.config import Settings

STOP_GRACE_SECONDS = 10
# A child that exits within STABLE_SECONDS of its start crashed again: each such crash in a row
# doubles its wait before the next start, up to the cap. Never a tight loop, and a worker that
# cannot start (say, Redis is away) is back within half a minute of the cause going.
RESTART_FIRST_SECONDS = 1.0
RESTART_CAP_SECONDS = 30.0
STABLE_SECONDS = 60.0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    crashes: int = 0  # exits in a row, each within STABLE_SECONDS of its start
    restart_at: float | None = None  # when a child that exited is started again

    def start(self, env: dict[str, str], *, now: float | None = None) -> None:
        # A session of its own, so a terminal's Ctrl-C reaches only the supervisor, which then
        # stops the children in order (workers first) rather than all at once.
        self.process = subprocess.Popen(self.argv, env=env, start_new_session=True, preexec_fn=die_with_parent)
        self.started_at = time.monotonic() if now is None else now
        self.restart_at = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()

    def wait(self, deadline: float) -> None:
        if not self.process:
            return
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop()


def run(settings: Settings) -> int:
    data_dir = settings.data_path
    data_dir.mkdir(parents=True, exist_ok=True)
    smtp_port = settings.smtp_port if "HANDOFF_SMTP_PORT" in os.environ else free_port()
    redis = RedisServer(data_dir / "redis")
    catcher = MailCatcher(settings.mail_dir, port=smtp_port)
    children: list[Child] = []
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        redis.start()
        url_file(settings).write_text(redis.url)
        catcher.start()
        env = {
            **os.environ,
            "HANDOFF_DATA_DIR": str(data_dir),
            "HANDOFF_REDIS_URL": redis.url,
            "HANDOFF_SMTP_HOST": "127.0.0.1",
            "HANDOFF_SMTP_PORT": str(catcher.port),
            "HANDOFF_SMTP_SECURITY": "none",
            "HANDOFF_SECRET_KEY": settings.signing_key(),
        }
        _migrate(env)
        me = [sys.executable, "-m", "services.cli"]
        children = [
            Child("directory", [*me, "serve", "directory"]),
            Child("referrals", [*me, "serve", "referrals"]),
            Child("referrals-worker", [*me, "worker", "referrals"]),
            Child("notifier", [*me, "worker", "notifier"]),
            Child("directory-worker", [*me, "worker", "directory"]),
        ]
        for child in children:
            child.start(env)
        for port in (settings.directory_port, settings.referrals_port):
            wait_for_port(port, host=settings.host if settings.host != "0.0.0.0" else "127.0.0.1", timeout=60)
        _banner(settings, redis, catcher)
        _supervise(children, env)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for group in (children[2:], children[:2]):  # workers finish their job first, then web
            for child in group:
                child.stop()
            for child in group:
                child.wait(deadline)
        catcher.stop()
        url_file(settings).unlink(missing_ok=True)
        redis.stop()
        print("handoff dev: stopped", flush=True)
    return 0


def _migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade"], env=env, check=True)


def _supervise(children: list[Child], env: dict[str, str]) -> None:
    while True:
        time.sleep(0.5)
        for child in children:
            tend(child, env, now=time.monotonic())


def tend(child: Child, env: dict[str, str], *, now: float, out: TextIO = sys.stderr) -> None:
    """Start ``child`` again if it exited and its wait is over; if it has just exited, say so and
    set when it starts again."""
    if child.restart_at is not None:
        if now >= child.restart_at:
            child.start(env, now=now)
        return
    code = child.process.poll() if child.process else None
    if code is None:
        return
    child.crashes = child.crashes + 1 if now - child.started_at < STABLE_SECONDS else 1
    delay = restart_delay(child.crashes)
    child.restart_at = now + delay
    again = f", {child.crashes} times in a row" if child.crashes > 1 else ""
    print(f"handoff dev: {child.name} exited with {code}{again}; restarting in {delay:.0f} s", file=out, flush=True)


def restart_delay(crashes: int) -> float:
    """Seconds to wait before starting a child that crashed ``crashes`` times in a row."""
    return min(RESTART_CAP_SECONDS, RESTART_FIRST_SECONDS * 2 ** (crashes - 1))


def _banner(settings: Settings, redis: RedisServer, catcher: MailCatcher) -> None:
    directory, referrals = settings.public_url("directory"), settings.public_url("referrals")
    print(
        "\n".join(
            [
                "",
                "Handoff is running. Ctrl-C stops everything.",
                f"  Staff login                  {referrals}/login",
                f"  Referrals (staff home)       {referrals}/",
                f"  Partner admin                {directory}/admin/partners",
                f"  Staff accounts (admin)       {referrals}/admin/staff",
                "  First staff account          .venv/bin/handoff user add --email you@clinic.example --role admin",
                f"  Partners in Health (public)  {directory}/partners-in-health",
                f"  Directory API                {directory}/api/v1/partners   (docs {directory}/schema)",
                f"  Referrals API                {referrals}/api/v1/referrals  (docs {referrals}/schema)",
                f"  Health                       {directory}/health  {referrals}/health",
                f"  Redis (private)              {redis.url}",
                f"  SMTP catcher                 smtp://127.0.0.1:{catcher.port} -> {catcher.directory}/*.eml",
                f"  Data                         {settings.data_path}",
                "",
            ]
        ),
        flush=True,
    )
