"""Logging of every Handoff process in one format, set up once at start (:func:`configure`): the
application's loggers, uvicorn's and RQ's all end at the root handler installed here.

``json`` (``HANDOFF_LOG_FORMAT=json``, what compose sets) writes one object per line: ``time``,
``level``, ``logger``, ``message``, and when known ``request_id`` (the request being served, see
:mod:`shared.access`), ``trace_id`` and ``span_id`` (the OpenTelemetry span, see
:mod:`shared.telemetry`), ``exception``. ``text`` writes the same fields as a line for people.
Nothing here adds client data: messages are the code's own, and they never carry it."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

from opentelemetry import trace

Format = Literal["json", "text"]

# The id of the request this task serves ("" outside a request), set by shared.access.
request_id: ContextVar[str] = ContextVar("handoff_request_id", default="")

# uvicorn and RQ configure handlers of their own when they find none; these must reach the root.
FOREIGN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "rq.worker", "rq.job", "rq.scheduler")


class Context(logging.Filter):
    """Adds the request id and the current trace and span ids to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else ""
        record.span_id = format(span.span_id, "016x") if span.is_valid else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, fields as the module docstring lists them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "trace_id", "span_id"):
            if value := getattr(record, key, ""):
                entry[key] = value
        for key, value in getattr(record, "fields", {}).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The same fields as a line: ``time level logger [request_id]: message key=value ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", "")
        record.context = f" [{rid}]" if rid else ""
        fields = getattr(record, "fields", {})
        line = super().format(record)
        return line + "".join(f" {key}={value}" for key, value in fields.items()) if fields else line


class StandardError(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a redirected or captured one:
    a handler holding the stream of its start would write to a closed one later)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(*, level: str = "INFO", fmt: Format = "text", stream: TextIO | None = None) -> None:
    """Make the root logger the one place records go (standard error, or ``stream``), at
    ``level``, in ``fmt``. Safe to call again: the handler is replaced, not added."""
    handler: logging.StreamHandler = logging.StreamHandler(stream) if stream else StandardError()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(Context())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "handoff", False)]:
        root.removeHandler(old)
    handler.handoff = True  # type: ignore[attr-defined]  # marks the handler this module owns
    root.addHandler(handler)
    root.setLevel(level)
    for name in FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        foreign.handlers.clear()
        foreign.propagate = True
