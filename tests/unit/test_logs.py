"""One log format for every process: JSON lines (or text lines) carrying the request id and the
trace ids; uvicorn's and RQ's loggers end at the same handler."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    yield stream
    for handler in [h for h in root.handlers if getattr(h, "handoff", False)]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_request_id_and_extra_fields(captured: io.StringIO) -> None:
    logs.configure(level="INFO", fmt="json", stream=captured)
    token = logs.request_id.set("req-1234abcd")
    try:
        logging.getLogger("handoff.access").info("GET %s 200", "/x", extra={"fields": {"status": 200}})
    finally:
        logs.request_id.reset(token)
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    logging.getLogger("rq.worker").info("from rq")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [line["logger"] for line in lines] == ["handoff.access", "uvicorn.error", "rq.worker"]
    first = lines[0]
    assert first["message"] == "GET /x 200" and first["level"] == "INFO"
    assert first["request_id"] == "req-1234abcd" and first["status"] == 200
    assert "request_id" not in lines[1], "outside a request there is no request id"
    assert {"time", "level", "logger", "message"} <= set(lines[1])


def test_configuring_twice_keeps_one_handler_and_text_names_the_request(captured: io.StringIO) -> None:
    logs.configure(level="INFO", fmt="json", stream=captured)
    logs.configure(level="WARNING", fmt="text", stream=captured)
    logging.getLogger("handoff.x").info("hidden at WARNING")
    token = logs.request_id.set("req-5678efgh")
    try:
        logging.getLogger("handoff.x").warning("shown", extra={"fields": {"route": "/respond/{token:str}"}})
    finally:
        logs.request_id.reset(token)
    [line] = captured.getvalue().splitlines()
    assert "WARNING handoff.x [req-5678efgh]: shown route=/respond/{token:str}" in line
    assert sum(getattr(h, "handoff", False) for h in logging.getLogger().handlers) == 1


def test_exceptions_are_one_json_line(captured: io.StringIO) -> None:
    logs.configure(level="INFO", fmt="json", stream=captured)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("handoff.x").exception("failed")
    [line] = captured.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "failed" and "RuntimeError: boom" in entry["exception"]
