"""schemathesis against both services' OpenAPI documents, authenticated as an admin, every
operation, over real processes (``handoff dev``) with demo data: no request may get a 5xx.

The budget is bounded for CI (``HANDOFF_TEST_FUZZ_EXAMPLES`` examples per operation)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.e2e.test_walking_skeleton import PASSWORD, System, token

EXAMPLES = int(os.environ.get("HANDOFF_TEST_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[System, dict[str, str]]]:
    system = System(Path(tmp_path_factory.mktemp("fuzz")) / "data")
    system.start()
    try:
        added = system.handoff("user", "add", "--email", "fuzz@clinic.example", "--role", "admin",
                               stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
        assert system.handoff("seed", "--demo").returncode == 0
        yield system, token(system, "fuzz@clinic.example")
    finally:
        system.process.kill()
        system.process.wait()


def fuzz(system_url: str, headers: dict[str, str]) -> list[str]:
    """Run every operation of the API at ``system_url`` through its own Hypothesis test; returns
    the operations tested. (Hypothesis is driven directly: schemathesis' pytest plugin does not
    work with the pytest this project pins.)"""
    schema = schemathesis.openapi.from_url(f"{system_url}/schema/openapi.json")
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def never_5xx(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        never_5xx()
        tested.append(operation.label)
    return tested


def test_directory_api_never_fails_with_5xx(fuzzed: tuple[System, dict[str, str]]) -> None:
    system, headers = fuzzed
    tested = fuzz(str(system.directory.base_url).rstrip("/"), headers)
    assert {"GET /api/v1/partners", "POST /api/v1/partners", "PATCH /api/v1/partners/{partner_id}"} <= set(tested)


def test_referrals_api_never_fails_with_5xx(fuzzed: tuple[System, dict[str, str]]) -> None:
    system, headers = fuzzed
    tested = fuzz(str(system.referrals.base_url).rstrip("/"), headers)
    assert {"POST /api/v1/referrals", "POST /api/v1/referrals/suggestions", "POST /api/v1/auth/token"} <= set(tested)
