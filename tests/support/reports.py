"""Lines that tests report for the end of the run, each kind under its own heading: what each
fault drill counted (tests/integration/fault_stack.py) and what the API fuzzing sent
(tests/e2e/test_api_fuzz.py). They are kept on the pytest config's stash; tests/conftest.py prints
them after the run, having carried them over from pytest-xdist's workers when there are any."""

from __future__ import annotations

import pytest

DRILL_SUMMARIES = pytest.StashKey[list[str]]()
FUZZ_SUMMARIES = pytest.StashKey[list[str]]()
# Heading -> its lines, in the order the sections are printed.
SECTIONS = {"fault drills": DRILL_SUMMARIES, "API fuzzing": FUZZ_SUMMARIES}


def report(config: pytest.Config, key: pytest.StashKey[list[str]], line: str) -> None:
    """Add ``line`` to the ``key`` section of the run's closing report."""
    config.stash.setdefault(key, []).append(line)
