"""Child processes that must not outlive ``handoff dev``."""

from __future__ import annotations

import ctypes
import signal
import subprocess

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Run in a child before exec: if its parent is killed (even SIGKILL), the child gets SIGTERM."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # Not Linux: Ctrl-C still stops everything through the normal path.
        pass


def stop(process: subprocess.Popen | None, *, timeout: float) -> None:
    """SIGTERM ``process`` if it still runs, and SIGKILL it if it has not exited ``timeout`` s later."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
