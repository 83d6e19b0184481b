"""``handoff dev``'s supervisor restarts a child that keeps crashing, waiting longer each time,
and never stops the others for it. The children are fake commands: one that exits at once, one
that keeps running."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator

import pytest

from services.dev import supervisor
from services.dev.supervisor import Child

ENV = dict(os.environ)


@pytest.fixture
def children() -> Iterator[tuple[Child, Child]]:
    crashing = Child("referrals-worker", [sys.executable, "-c", "raise SystemExit(3)"])
    steady = Child("directory", [sys.executable, "-c", "import time; time.sleep(300)"])
    yield crashing, steady
    for child in (crashing, steady):
        child.stop()
        child.wait(0)


def test_a_crashing_child_is_restarted_later_each_time_while_the_others_keep_running(
    children: tuple[Child, Child],
) -> None:
    crashing, steady = children
    out = io.StringIO()
    now = 1000.0
    crashing.start(ENV, now=now)
    steady.start(ENV, now=now)
    steady_pid = steady.process.pid
    delays = []
    for _ in range(8):
        crashed = crashing.process
        crashed.wait(timeout=30)
        for child in (crashing, steady):
            supervisor.tend(child, ENV, now=now, out=out)
        delays.append(crashing.restart_at - now)
        supervisor.tend(crashing, ENV, now=crashing.restart_at - 0.1, out=out)
        assert crashing.process is crashed, "restarted before its wait was over"
        now = crashing.restart_at
        supervisor.tend(crashing, ENV, now=now, out=out)
        assert crashing.process is not crashed and crashing.restart_at is None

    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert steady.process.pid == steady_pid and steady.process.poll() is None
    lines = out.getvalue().splitlines()
    assert lines[0] == "handoff dev: referrals-worker exited with 3; restarting in 1 s"
    assert lines[-1] == "handoff dev: referrals-worker exited with 3, 8 times in a row; restarting in 30 s"


def test_a_child_that_ran_for_a_while_before_exiting_is_restarted_soon(children: tuple[Child, Child]) -> None:
    crashing, _ = children
    out = io.StringIO()
    crashing.crashes = 5  # crash-looped once, then ran
    crashing.start(ENV, now=0.0)
    crashing.process.wait(timeout=30)

    supervisor.tend(crashing, ENV, now=supervisor.STABLE_SECONDS + 1, out=out)

    assert crashing.restart_at == supervisor.STABLE_SECONDS + 1 + supervisor.RESTART_FIRST_SECONDS
    assert out.getvalue() == "handoff dev: referrals-worker exited with 3; restarting in 1 s\n"
