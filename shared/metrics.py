"""``/metrics`` (Prometheus text) for each web service, served only to the monitoring system: a
client whose address is in ``HANDOFF_METRICS_ALLOW`` (IPs or CIDRs; loopback by default), or one
that sends ``Authorization: Bearer`` with ``HANDOFF_METRICS_TOKEN``. Anyone else gets 403: the
counts name every route and how busy it is."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from hmac import compare_digest

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController, PrometheusMiddleware
from litestar.types import Receive, Scope, Send

from shared.config import Settings


def endpoint(service: str, settings: Settings) -> tuple[PrometheusConfig, type[PrometheusController]]:
    """Prometheus middleware config and the guarded ``/metrics`` controller for ``service``."""
    config = PrometheusConfig(app_name=service, prefix="handoff", group_path=True, exclude=["/metrics"])
    networks = settings.metrics_networks
    token = settings.metrics_token

    async def monitoring_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        sent = connection.headers.get("authorization", "")
        if token and compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return
        if allowed(connection.client.host if connection.client else "", networks):
            return
        raise PermissionDeniedException("metrics are for the clinic's monitoring only")

    class Metrics(PrometheusController):
        """``/metrics``, for Prometheus: not an API operation, so not in the OpenAPI document."""

        include_in_schema = False
        guards = [monitoring_only]

    return config, Metrics


def counter(config: PrometheusConfig) -> Callable[[str, str, int, float], None]:
    """``count(method, route, status, seconds)``: count a request answered before the Prometheus
    middleware saw it (a kept page, see services.directory.web.page_cache) in the series that
    middleware writes (``config``'s requests total and duration), each series bound once. A
    request answered without waiting is never in progress, so that gauge is left alone."""
    if config.labels or config.exemplars:
        raise ValueError("extra labels and exemplars are the middleware's own: count through it")
    probe = PrometheusMiddleware(_unreachable, config)
    bound: dict[tuple[str, str, int], Callable[[float], None]] = {}

    def count(method: str, route: str, status: int, seconds: float) -> None:
        found = bound.get((method, route, status))
        if found is None:
            labels: dict[str, str | int | float] = {
                "method": method,
                "path": route,
                "status_code": status,
                "app_name": config.app_name,
            }
            total = probe.request_count(labels).labels(*labels.values())
            duration = probe.request_time(labels).labels(*labels.values())

            def observe(seconds: float) -> None:
                total.inc()
                duration.observe(seconds)

            found = bound[(method, route, status)] = observe
        found(seconds)

    return count


async def _unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the probe only names the middleware's series")


def allowed(host: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether the client address ``host`` is in one of ``networks``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)
