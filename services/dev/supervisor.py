"""``handoff dev``: the whole system on one machine.

Starts a private Redis (AOF on, under the data dir), an SMTP catcher writing ``.eml`` files,
migrates both SQLite databases, then runs both web services and both workers as child
processes, restarting any that crash. Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from services.dev.mail_catcher import MailCatcher
from services.dev.ports import free_port, wait_for_port
from services.dev.processes import die_with_parent
from services.dev.redis_server import RedisServer, url_file
from shared.config import Settings

STOP_GRACE_SECONDS = 10


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        # A session of its own, so a terminal's Ctrl-C reaches only the supervisor, which then
        # stops the children in order (workers first) rather than all at once.
        self.process = subprocess.Popen(self.argv, env=env, start_new_session=True, preexec_fn=die_with_parent)

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
            code = child.process.poll() if child.process else None
            if code is None:
                continue
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < 60] + [now]
            if len(child.restarts) > 5:
                print(f"handoff dev: {child.name} keeps crashing (exit {code}); stopping", file=sys.stderr)
                raise _Stop()
            print(f"handoff dev: {child.name} exited with {code}; restarting", file=sys.stderr, flush=True)
            child.start(env)


def _banner(settings: Settings, redis: RedisServer, catcher: MailCatcher) -> None:
    directory, referrals = settings.public_url("directory"), settings.public_url("referrals")
    print(
        "\n".join(
            [
                "",
                "Handoff is running. Ctrl-C stops everything.",
                f"  Partners in Health (public)  {directory}/partners-in-health",
                f"  Directory API                {directory}/api/v1/partners   (docs {directory}/schema)",
                f"  Referrals API                {referrals}/api/v1/referrals  (docs {referrals}/schema)",
                f"  Health                       {directory}/health  {referrals}/health",
                f"  Redis (private)              {redis.url}",
                f"  SMTP catcher                 smtp://127.0.0.1:{catcher.port} -> {catcher.directory}/*.eml",
                f"  Data                         {settings.data_path}",
                "  First staff account:         .venv/bin/handoff user add --email you@clinic.example --role admin",
                "",
            ]
        ),
        flush=True,
    )
