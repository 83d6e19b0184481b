"""A worker's liveness, told by the worker itself: a thread of the worker process writes the time
into its heartbeat file every ``HANDOFF_WORKER_HEARTBEAT_SECONDS``; ``handoff worker-health``
(the compose health check) fails when the file of a worker still running is older than
:data:`STALE_AFTER` heartbeats.

A frozen worker (SIGSTOP, a process starved of CPU, an interpreter stuck in C code holding the
GIL) writes nothing, so the check fails within 2 intervals of its last beat: the last beat is at
most one interval old when it freezes, and stale after 1.5. A Redis outage does not fail it:
restarting a worker does not bring Redis back, and the worker rides the outage out itself."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

STALE_AFTER = 1.5  # heartbeat intervals


def directory(data_dir: Path) -> Path:
    return data_dir / "heartbeats"


def path(data_dir: Path, queue: str, pid: int) -> Path:
    return directory(data_dir) / f"{queue}-{pid}"


class Heartbeat:
    """Beats for this process's worker of ``queue`` until stopped."""

    def __init__(self, *, data_dir: Path, queue: str, interval: float) -> None:
        self.path = path(data_dir, queue, os.getpid())
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{queue}", daemon=True)

    def start(self) -> Heartbeat:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 1)
        self.path.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval):
            self._write()

    def _write(self) -> None:
        # Written aside and renamed: a reader never sees a half-written time.
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(f"{time.time():.3f}\n")
        partial.replace(self.path)


def problems(*, data_dir: Path, queue: str, interval: float, pid: int | None = None) -> list[str]:
    """Why the workers of ``queue`` on this host (or the one with ``pid``) are not alive; empty
    when each beats. Files of processes that are gone are left out."""
    found = []
    candidates = [path(data_dir, queue, pid)] if pid else sorted(directory(data_dir).glob(f"{queue}-*[0-9]"))
    for beat in candidates:
        worker_pid = int(beat.name.rsplit("-", 1)[1])
        if not _running(worker_pid):
            continue
        try:
            age = time.time() - float(beat.read_text())
        except (OSError, ValueError):
            found.append(f"{queue} worker {worker_pid}: no heartbeat file")
            continue
        if age > STALE_AFTER * interval:
            found.append(f"{queue} worker {worker_pid}: last heartbeat {age:.1f} s ago (every {interval:g} s)")
        else:
            found.append("")
    if not found:
        return [f"no {queue} worker is running here"]
    return [problem for problem in found if problem]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
