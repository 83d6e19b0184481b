"""``/metrics`` (Prometheus text) for each web service, served only to the monitoring system: a
client whose address is in ``HANDOFF_METRICS_ALLOW`` (IPs or CIDRs; loopback by default), or one
that sends ``Authorization: Bearer`` with ``HANDOFF_METRICS_TOKEN``. Anyone else gets 403: the
counts name every route and how busy it is."""

from __future__ import annotations

import ipaddress
from hmac import compare_digest

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

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


def allowed(host: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether the client address ``host`` is in one of ``networks``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)
