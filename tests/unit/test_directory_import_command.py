"""``handoff partners import`` runs with Python's cyclic garbage collector paused (issue 19: its
passes over the hundreds of thousands of objects an import keeps alive were a fifth of the
import's time), and gives it back as it found it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from services.directory import commands
from services.directory.importing import ImportReport


def test_an_import_runs_with_the_collector_paused_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    def importing(*_: object, **__: object) -> ImportReport:
        seen.append(gc.isenabled())
        return ImportReport(created=1)

    monkeypatch.setattr(commands, "_import_file", importing)
    assert gc.isenabled()
    report = commands.import_file(None, Path("partners.csv"), skip_invalid=False)  # type: ignore[arg-type]
    assert (seen, report.created, gc.isenabled()) == ([False], 1, True)


def test_the_collector_comes_back_after_a_failure_and_stays_off_if_it_was() -> None:
    with pytest.raises(RuntimeError), commands.collector_paused():
        raise RuntimeError("the import failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with commands.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
