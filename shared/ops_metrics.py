"""What Prometheus needs to tell whether Handoff keeps up, beyond each process's request counts:
read from the database and Redis when ``/metrics`` is scraped (so every replica answers with the
installation's current state; alert rules take ``max`` over replicas, see deploy/alerts.yml).

Every web service reports its own outbox: ``handoff_outbox_unsent`` and
``handoff_outbox_oldest_unsent_seconds``. The referrals service also reports what is shared by
the installation: ``handoff_queue_jobs{queue,state}`` (queued, started, scheduled, deferred,
failed), ``handoff_workers{queue}``, ``handoff_emails_total{outcome}`` (sent, failed, retried:
counted by the notifier in Redis, so no worker needs a port), ``handoff_sweep_lag_seconds`` (since
the last finished deadline sweep) beside ``handoff_sweep_interval_seconds``, and Redis's
``handoff_redis_used_memory_bytes`` / ``handoff_redis_maxmemory_bytes``."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import anyio.to_thread
from litestar import Request
from litestar.plugins.prometheus import PrometheusController
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import queues

log = logging.getLogger(__name__)

EMAILS_KEY = "handoff:metrics:emails"  # a hash: outcome -> emails so far
SWEEP_KEY = "handoff:metrics:sweep-finished"  # Unix time the last deadline sweep finished
OUTCOMES = ("sent", "failed", "retried")


def count_email(redis: Redis, outcome: str) -> None:
    """Count one email outcome. Never fails the caller: a metric is not worth a retried email."""
    try:
        redis.hincrby(EMAILS_KEY, outcome, 1)
    except (RedisError, OSError) as exc:
        log.debug("email outcome %s not counted: %s", outcome, exc)


def sweep_finished(redis: Redis) -> None:
    """Record that a deadline sweep just finished (for ``handoff_sweep_lag_seconds``)."""
    try:
        redis.set(SWEEP_KEY, f"{time.time():.3f}")
    except (RedisError, OSError) as exc:
        log.debug("sweep end not recorded: %s", exc)


class OpsMetrics(Collector):
    """The families above, as read at the last :meth:`refresh` (the scrape's own)."""

    def __init__(
        self, *, service: str, engine: AsyncEngine, outbox: Table, redis: Redis, installation: bool, sweep_interval: int
    ) -> None:
        self._service, self._engine, self._outbox, self._redis = service, engine, outbox, redis
        self._installation, self._sweep_interval = installation, sweep_interval
        self._families: list[Metric] = []

    def describe(self) -> Iterable[Metric]:
        return []  # read at each scrape; no fixed set to check at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._families

    def register(self) -> OpsMetrics:
        REGISTRY.register(self)
        return self

    def unregister(self) -> None:
        REGISTRY.unregister(self)

    async def refresh(self) -> None:
        families = []
        try:
            families += await self._outbox_families()
        except Exception as exc:  # a scrape must still answer with what it has
            log.warning("outbox metrics unavailable: %s", exc)
        if self._installation:
            try:
                families += await anyio.to_thread.run_sync(self._installation_families)
            except (RedisError, OSError) as exc:
                log.warning("queue metrics unavailable: %s", exc)
        self._families = families

    async def _outbox_families(self) -> list[Metric]:
        unsent = self._outbox.c.sent_at.is_(None)
        async with self._engine.connect() as connection:
            count, oldest = (
                await connection.execute(select(func.count(), func.min(self._outbox.c.created_at)).where(unsent))
            ).one()
        if oldest is not None and oldest.tzinfo is None:  # SQLite returns naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        backlog = GaugeMetricFamily("handoff_outbox_unsent", "Outbox messages not yet relayed", labels=["service"])
        backlog.add_metric([self._service], count)
        oldest_age = GaugeMetricFamily(
            "handoff_outbox_oldest_unsent_seconds", "Age of the oldest message not yet relayed", labels=["service"]
        )
        oldest_age.add_metric([self._service], max(0.0, age))
        return [backlog, oldest_age]

    def _installation_families(self) -> list[Metric]:
        jobs = GaugeMetricFamily("handoff_queue_jobs", "RQ jobs by queue and state", labels=["queue", "state"])
        workers = GaugeMetricFamily("handoff_workers", "RQ workers registered per queue", labels=["queue"])
        for name in queues.ROUTES:
            queue = queues.rq_queue(name, self._redis)
            for state, count in (
                ("queued", queue.count),
                ("started", queue.started_job_registry.count),
                ("scheduled", queue.scheduled_job_registry.count),
                ("deferred", queue.deferred_job_registry.count),
                ("failed", queue.failed_job_registry.count),
            ):
                jobs.add_metric([name, state], count)
            workers.add_metric([name], Worker.count(connection=self._redis, queue=queue))
        emails = CounterMetricFamily("handoff_emails", "Emails by outcome (retried: deferred)", labels=["outcome"])
        counted = {_text(key): int(value) for key, value in self._redis.hgetall(EMAILS_KEY).items()}
        for outcome in OUTCOMES:
            emails.add_metric([outcome], counted.get(outcome, 0))
        last_sweep = self._redis.get(SWEEP_KEY)
        lag = GaugeMetricFamily("handoff_sweep_lag_seconds", "Seconds since the last deadline sweep finished")
        lag.add_metric([], time.time() - float(last_sweep) if last_sweep else float("inf"))
        interval = GaugeMetricFamily("handoff_sweep_interval_seconds", "The sweep's configured interval")
        interval.add_metric([], self._sweep_interval)
        memory = self._redis.info("memory")
        used = GaugeMetricFamily("handoff_redis_used_memory_bytes", "Memory Redis uses")
        used.add_metric([], memory.get("used_memory", 0))
        limit = GaugeMetricFamily("handoff_redis_maxmemory_bytes", "Redis's maxmemory (0: none)")
        limit.add_metric([], memory.get("maxmemory", 0))
        return [jobs, workers, emails, lag, interval, used, limit]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _refresh(request: Request) -> None:
    collector: OpsMetrics | None = getattr(request.app.state, "ops_metrics", None)
    if collector is not None:
        await collector.refresh()


def refreshing(controller: type[PrometheusController]) -> type[PrometheusController]:
    """``controller`` (the app's ``/metrics``) reading :class:`OpsMetrics` fresh before it answers."""
    return type(controller.__name__, (controller,), {"before_request": staticmethod(_refresh)})
