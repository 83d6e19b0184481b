"""OpenTelemetry traces, off unless the standard ``OTEL_*`` variables ask for them.

:func:`setup` (each process, at start) installs a tracer provider when ``OTEL_TRACES_EXPORTER``
(``otlp`` or ``console``) or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, and instruments Redis and SQLAlchemy; the web apps
add Litestar's middleware (:func:`middleware`). Everything else (service name, sampler, headers,
batch delays) is the SDK's own ``OTEL_*`` settings.

One trace follows a referral across the queues: the trace context of the request that staged a
message is kept in its outbox row (``traceparent``), the relay continues it into the RQ job's
meta, and the worker continues it around the job (:func:`span` with ``parent``), so the POST, the
relay, the notifier's job and its SMTP send are one trace.

Span names and attributes carry routes by template (``/respond/{token:str}``) and never a token,
an email address or client data."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from litestar.middleware.base import DefineMiddleware
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind

TRACER = "handoff"
ASKED_BY = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Attributes the ASGI instrumentation fills from the raw path: replaced by the route's template.
RAW_PATH_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full", "http.route")


def asked(environ: Mapping[str, str] = os.environ) -> str | None:
    """The exporter the environment asks for (``otlp`` or ``console``), None for no traces."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return None if exporter == "none" else exporter
    return "otlp" if any(environ.get(name) for name in ASKED_BY[1:]) else None


def setup(service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Install the tracer provider the environment asks for; False when it asks for none."""
    kind = asked(environ)
    if kind is None:
        return False
    exporter: SpanExporter
    if kind == "console":
        exporter = ConsoleSpanExporter()
    elif kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r}: Handoff supports otlp, console or none")
    name = environ.get("OTEL_SERVICE_NAME") or f"handoff-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return True


def install(provider: TracerProvider) -> None:
    """Make ``provider`` the process's tracer provider and instrument Redis and SQLAlchemy with it
    (the tests install one with an in-memory exporter). Engines created afterwards are traced."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    trace.set_tracer_provider(provider)
    for instrumentor in (RedisInstrumentor(), SQLAlchemyInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            # skip_dep_check: the SQLAlchemy instrumentation names 2.0 as its newest; 2.1 keeps the
            # engine events it hooks, and the tests check its spans.
            instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)


def active() -> bool:
    """Whether spans are recorded in this process."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to carry across a queue; None outside one."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span(
    name: str,
    *,
    parent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Iterator[Span]:
    """A span named ``name``, the child of ``parent`` (a ``traceparent``) or of the current span."""
    context = propagate.extract({"traceparent": parent}) if parent else None
    with trace.get_tracer(TRACER).start_as_current_span(name, context=context, kind=kind, attributes=attributes) as s:
        yield s


def middleware() -> list[DefineMiddleware]:
    """Litestar's OpenTelemetry middleware when traces are on (nothing otherwise). It starts the
    server span before routing; :func:`name_server_span` names it once the route is known."""
    if not active():
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig

    config = OpenTelemetryConfig(
        scope_span_details_extractor=_route_of, server_request_hook_handler=_redact, exclude=["/health", "/metrics"]
    )
    return [config.middleware]


def name_server_span(scope: Mapping[str, Any]) -> None:
    """Name the current server span by method and route template, and put the template where
    the instrumentation recorded the path (called by shared.access as the answer starts: routed
    by then, and the span still open)."""
    span = trace.get_current_span()
    if span.is_recording():
        name, _ = _route_of(scope)
        span.update_name(name)
        _redact(span, scope)


def _template(scope: Mapping[str, Any]) -> str:
    return str(scope.get("path_template") or "unmatched")


def _route_of(scope: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    route = _template(scope)
    return f"{scope.get('method', '')} {route}".strip(), {"http.route": route}


def _redact(span: Span, scope: Mapping[str, Any]) -> None:
    # The ASGI instrumentation records the path as asked for: a partner link carries its token there.
    if span.is_recording():
        route = _template(scope)
        for key in RAW_PATH_ATTRIBUTES:
            span.set_attribute(key, route)
        span.set_attribute("url.query", "")
