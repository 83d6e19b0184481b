"""The directory's admin tasks behind ``handoff seed --demo`` and ``handoff partners
import|export|republish``: each builds the service's runtime for a command
(:mod:`services.directory.bootstrap`), runs one use case, and then tries to hand the staged
messages to Redis at once (if Redis is away the rows wait in the outbox for the web process's
relay, so nothing is lost)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TextIO, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.directory import bootstrap, csv_io, seed
from services.directory.importing import ImportReport
from services.directory.service import PartnerService
from shared.config import Settings

T = TypeVar("T")


def run(
    settings: Settings, use: Callable[[PartnerService], Awaitable[T]], *, out: TextIO = sys.stdout, flush: bool = True
) -> T:
    """Run ``use`` with a service on the directory's database, then (if ``flush``) the outbox."""

    async def main() -> T:
        runtime = bootstrap.build(settings, use="cli")
        try:
            result = await use(runtime.directory)
            if flush:
                try:
                    await runtime.relay.flush()
                except Exception as exc:  # Redis is away: the directory's relay sends them later.
                    print(f"handoff: messages wait in the outbox until Redis is reachable ({exc})", file=out)
            return result
        finally:
            await runtime.close()

    return asyncio.run(main())


def seed_demo(settings: Settings) -> ImportReport:
    return run(settings, lambda directory: directory.import_rows(seed.demo_rows()))


def import_file(settings: Settings, path: Path, *, skip_invalid: bool, out: TextIO = sys.stdout) -> ImportReport:
    """Import ``path`` with a progress bar on standard error (drawn on a terminal only)."""
    with collector_paused():
        return _import_file(settings, path, skip_invalid=skip_invalid, out=out)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a bulk command runs. An import makes hundreds
    of thousands of objects (rows, partners, their database rows) that reference counting frees
    on its own; the collector's passes over all that is alive, longer as it grows, took a fifth
    of the import's time. Whatever cycles form meanwhile are collected once it is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import_file(settings: Settings, path: Path, *, skip_invalid: bool, out: TextIO) -> ImportReport:
    text = path.read_text(encoding="utf-8")
    rows = list(csv_io.read_rows(text))
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("rows", total=len(rows))
        return run(
            settings,
            lambda directory: directory.import_rows(
                rows, skip_invalid=skip_invalid, progress=lambda n: progress.advance(task, n)
            ),
            out=out,
        )


def export_file(settings: Settings, out: TextIO) -> int:
    """Write every partner as CSV to ``out``; returns how many."""

    async def write(directory: PartnerService) -> int:
        count = -1
        async for chunk in csv_io.write_csv(directory.every_partner()):
            out.write(chunk)
            count += 1
        return count

    return run(settings, write, flush=False)


def republish(settings: Settings) -> int:
    return run(settings, lambda directory: directory.republish())
