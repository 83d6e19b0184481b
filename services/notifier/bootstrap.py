"""The notifier's composition root: :func:`build` makes the runtime of one worker process
(settings, Redis, mailer, renderer, sent ledger and the SMTP account's rate limiter), used by the
worker's entry point and by tests alike. Nothing connects until a job needs it; the worker's jobs
find it in :data:`services.notifier.jobs.runtime`."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from services.notifier.ledger import Ledger
from services.notifier.mailer import Mailer
from services.notifier.rendering import Renderer
from services.notifier.throttle import RateLimiter, account_key
from shared import redis_client
from shared.config import Settings


@dataclass(frozen=True, kw_only=True)
class Runtime:
    settings: Settings
    redis: Redis
    mailer: Mailer
    renderer: Renderer
    ledger: Ledger
    limiter: RateLimiter

    def close(self) -> None:
        self.mailer.close()
        self.redis.close()


def build(settings: Settings) -> Runtime:
    redis = redis_client.connect(settings.redis_url, use="worker")
    return Runtime(
        settings=settings,
        redis=redis,
        mailer=Mailer.from_settings(settings),
        renderer=Renderer(
            clinic_name=settings.clinic_name,
            timezone=settings.clinic_timezone,
            clinic_phone=settings.clinic_phone,
            clinic_address=settings.clinic_address,
            clinic_website=settings.clinic_website,
        ),
        ledger=Ledger(redis),
        limiter=RateLimiter(
            redis,
            key=account_key(host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username),
            per_minute=settings.smtp_rate_per_minute,
        ),
    )
