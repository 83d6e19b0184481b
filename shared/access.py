"""Every request of a Handoff web service gets a request id and one access-log line.

The id is the ``X-Request-ID`` the edge proxy set (deploy/Caddyfile replaces any id a client
sent), when it looks like one; otherwise a new one. It is echoed in the answer's ``X-Request-ID``,
carried by every log line written while the request is served (:mod:`shared.logs`) and set on
the request's trace span.

The access log names the route by its template (``/respond/{token:str}``), never the path that
was asked for, and never the query string: a partner link's token and a search's terms stay out
of the logs. Health checks and scrapes are logged at DEBUG only."""

from __future__ import annotations

import logging
import re
import time
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace

from shared import logs, telemetry

log = logging.getLogger("handoff.access")

HEADER = "x-request-id"
_HEADER = HEADER.encode()
# What an id may look like to be kept: a UUID, a hex or base64url token; nothing that could forge
# a log line.
ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{8,128}")
QUIET = frozenset({"/health", "/ready", "/metrics"})


def request_id_of(scope: Scope) -> str:
    """The id the proxy gave the request, or a new one."""
    for name, value in scope.get("headers", ()):
        if name == _HEADER and ACCEPTED.fullmatch(given := value.decode("latin-1")):
            return given
    return uuid.uuid4().hex


def record(scope: Scope, *, route: str, status: int, started: float) -> None:
    """Write the access-log line of a request answered with ``status`` (``started``: its
    ``time.perf_counter()`` at arrival), under the request id already set in :mod:`shared.logs`."""
    level = logging.DEBUG if route in QUIET else logging.INFO
    if not log.isEnabledFor(level):
        return
    method = scope.get("method", "")
    client = scope.get("client")
    log.log(
        level,
        "%s %s %d",
        method,
        route,
        status,
        extra={
            "fields": {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "client": client[0] if client else "",
            }
        },
    )


def middleware(app: ASGIApp) -> ASGIApp:
    """Litestar middleware (after routing: the route's template is known)."""

    async def logged(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        rid = request_id_of(scope)
        token = logs.request_id.set(rid)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("handoff.request_id", rid)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                telemetry.name_server_span(scope)
                MutableScopeHeaders.from_message(message)[HEADER] = rid
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            record(scope, route=str(scope.get("path_template") or "unmatched"), status=status, started=started)
            logs.request_id.reset(token)

    return logged
