"""Waiting for something another process does, without fixed sleeps standing in for waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, timeout: float = 30.0, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; AssertionError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_for(condition: Callable[[], bool], *, limit: float, what: str, log: Path | None = None) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` (with the tail of ``log``) after
    ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            pytest.fail(f"gave up waiting {limit:.0f} s for {what}\n{tail}")
        time.sleep(0.1)
