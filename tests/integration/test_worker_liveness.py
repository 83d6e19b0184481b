"""A worker's liveness check is its own heartbeat: a real ``handoff worker notifier`` process is
alive while it beats, fails ``handoff worker-health`` once SIGSTOPped (within two heartbeat
intervals), and passes again when it runs again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.dev import processes
from shared import heartbeat

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 2.0  # seconds; long enough that a busy CI machine's scheduling never looks like a freeze


def health(env: dict[str, str], pid: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "worker-health", "notifier", "--pid", str(pid)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_until_healthy(env: dict[str, str], pid: int) -> None:
    deadline = time.monotonic() + 60
    while (checked := health(env, pid)).returncode != 0:
        assert time.monotonic() < deadline, f"the worker never became healthy: {checked.stderr}"
        time.sleep(0.2)


def test_a_frozen_notifier_fails_its_liveness_check_within_two_heartbeats(redis_url: str, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HANDOFF_DATA_DIR": str(tmp_path),
        "HANDOFF_REDIS_URL": redis_url,
        "HANDOFF_WORKER_HEARTBEAT_SECONDS": str(INTERVAL),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "worker", "notifier"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=processes.die_with_parent,
    )
    try:
        wait_until_healthy(env, worker.pid)
        assert health(env, 999_999).returncode == 1, "a worker that is not running is not healthy"

        worker.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        # The check must fail by two intervals after the freeze: look exactly then.
        time.sleep(max(0.0, 2 * INTERVAL - (time.monotonic() - stopped_at)))
        found = heartbeat.problems(data_dir=tmp_path, queue="notifications", interval=INTERVAL, pid=worker.pid)
        assert found and "last heartbeat" in found[0]
        frozen = health(env, worker.pid)  # and so does the command the compose health check runs
        assert frozen.returncode == 1, frozen.stderr
        assert "last heartbeat" in frozen.stderr

        worker.send_signal(signal.SIGCONT)
        wait_until_healthy(env, worker.pid)
    finally:
        worker.send_signal(signal.SIGCONT)
        processes.stop(worker, timeout=20)
    assert not (tmp_path / "heartbeats" / f"notifications-{worker.pid}").exists(), "a clean stop removes its file"
