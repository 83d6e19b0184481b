"""The notifier's per-process resources: settings, Redis, mailer, renderer, sent ledger and the
SMTP account's rate limiter.

RQ finds the job function by its dotted path and calls it with the payload alone, so the job
cannot be handed its dependencies; it takes them from the runtime installed here. The worker's
entry point installs one before working (tests install their own); a process that runs a job
without one, such as a bare ``rq worker``, gets one built from the environment on first use.
Nothing connects until a job needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from services.notifier.ledger import Ledger
from services.notifier.mailer import Mailer
from services.notifier.rendering import Renderer
from services.notifier.throttle import RateLimiter, account_key
from shared.config import Settings, load_settings


@dataclass(frozen=True, kw_only=True)
class Runtime:
    settings: Settings
    redis: Redis
    mailer: Mailer
    renderer: Renderer
    ledger: Ledger
    limiter: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        redis = Redis.from_url(settings.redis_url)
        return cls(
            settings=settings,
            redis=redis,
            mailer=Mailer.from_settings(settings),
            renderer=Renderer(clinic_name=settings.clinic_name, timezone=settings.clinic_timezone),
            ledger=Ledger(redis),
            limiter=RateLimiter(
                redis,
                key=account_key(host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username),
                per_minute=settings.smtp_rate_per_minute,
            ),
        )

    def close(self) -> None:
        self.mailer.close()
        self.redis.close()


_installed: Runtime | None = None


def install(runtime: Runtime) -> None:
    """Make ``runtime`` the one every job in this process uses."""
    global _installed
    _installed = runtime


def current() -> Runtime:
    """The installed runtime, built from ``HANDOFF_*`` settings if none was installed."""
    if _installed is None:
        install(Runtime.from_settings(load_settings()))
    assert _installed is not None
    return _installed


def uninstall() -> None:
    """Close and forget the installed runtime, if any."""
    global _installed
    runtime, _installed = _installed, None
    if runtime is not None:
        runtime.close()
