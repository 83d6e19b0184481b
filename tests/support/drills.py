"""What the fault drills tell the end of the run: one line per drill, stashed on the pytest config
by :mod:`tests.integration.fault_stack` and repeated in the run's summary (``tests/conftest.py``)."""

from __future__ import annotations

import pytest

DRILL_SUMMARIES = pytest.StashKey[list[str]]()
