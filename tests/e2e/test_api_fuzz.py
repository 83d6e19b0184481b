"""schemathesis against both services' OpenAPI documents, authenticated as an admin, every
operation, over real processes (``handoff dev``) with demo data. No request may get a 5xx; a
request the document forbids must be refused with a 4xx; and every answer must be one the
document promises: a documented status code and content type, a body matching that response's
schema, the headers it documents.

The budget is ``HANDOFF_TEST_FUZZ_EXAMPLES`` examples per operation (25 unless set; ``make bench``
runs the same tests with more). Each service reports one summary line, listed under "API fuzzing"
at the end of the run; every failing operation is reported with the check that failed and the
curl command that repeats the request."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import APIOperation

from tests.support.polling import eventually
from tests.support.reports import FUZZ_SUMMARIES, report
from tests.support.system import PASSWORD, System, token

EXAMPLES = int(os.environ.get("HANDOFF_TEST_FUZZ_EXAMPLES", "25"))
# The run's time grows with the budget (`make bench` runs 200 examples an operation).
pytestmark = pytest.mark.timeout(300 + 10 * EXAMPLES)
CHECKS = [
    not_a_server_error,
    negative_data_rejection,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class FuzzRun:
    """What fuzzing one service did: the operations tested, the statuses answered, and a
    readable report for each operation that failed a check."""

    service: str
    operations: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        statuses = ", ".join(f"{status}×{count}" for status, count in sorted(self.statuses.items()))
        return (
            f"API fuzz {self.service}: {len(self.operations)} operations, {self.statuses.total()} requests "
            f"(up to {EXAMPLES} examples per operation; answers {statuses}), "
            f"{len(self.failures)} failing operations"
        )

    def report(self) -> str:
        return "\n\n".join(f"=== {label}\n{text}" for label, text in self.failures.items())


@dataclass
class Known:
    """Values that name things that exist, which random strings almost never do: per path
    parameter, and per body field (each option a whole value for that field)."""

    path: dict[str, list[str]]
    body: dict[str, list[object]]


@dataclass
class Fuzzed:
    system: System
    headers: dict[str, str]
    known: Known


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    system = System(Path(tmp_path_factory.mktemp("fuzz")) / "data")
    system.start()
    try:
        added = system.handoff(
            "user", "add", "--email", "fuzz@clinic.example", "--role", "admin", stdin=PASSWORD + "\n"
        )
        assert added.returncode == 0, added.stderr
        assert system.handoff("seed", "--demo").returncode == 0
        headers = token(system, "fuzz@clinic.example")
        yield Fuzzed(system, headers, known_values(system, headers))
    finally:
        system.process.kill()
        system.process.wait()


def known_values(system: System, headers: dict[str, str]) -> Known:
    """Demo partners, referrals issued to them, category slugs, reason codes, and names, emails
    and a consent the domain accepts."""
    partners = [
        p["id"] for p in system.directory.get("/api/v1/partners", params={"limit": 50}, headers=headers).json()["items"]
    ]
    categories = [c["slug"] for c in system.directory.get("/api/v1/categories").json()]
    reasons = [r["code"] for r in system.referrals.get("/api/v1/scope/reasons", headers=headers).json()["reasons"]]

    def suggested() -> list[dict]:
        answer = system.referrals.post(
            "/api/v1/referrals/suggestions", headers=headers, json={"reasons": ["rehab_exercise_needed"]}
        )
        return answer.json() if answer.status_code == 200 else []

    eventually(suggested, what="demo partners in the referrals replica")
    referrals = []
    for n in range(3):
        issued = system.referrals.post(
            "/api/v1/referrals",
            headers=headers,
            json={
                "client": {"name": f"Fuzz Client {n}", "phone": "727-555-0142"},
                "reasons": ["rehab_exercise_needed"],
                "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
            },
        )
        assert issued.status_code == 201, issued.text
        referrals.append(issued.json()["id"])
    return Known(
        path={"partner_id": partners, "referral_id": referrals},
        body={
            "name": ["Dr. Ada Fuzz", "Bayside Physical Therapy"],
            "email": ["ada@fuzz.example", "desk@bayside.example"],
            "category": categories,
            "reasons": [[code] for code in reasons],
            "consent": [{"given": True, "method": "verbal", "scope": ["clinical", "non_clinical"]}],
            "partner_id": partners,
            "partner_ids": [[partner] for partner in partners],
        },
    )


@strategies.composite
def realistic(draw: strategies.DrawFn, operation: APIOperation, known: Known) -> schemathesis.Case:
    """A request the document allows, naming a real partner or referral in its path and real
    values in the body fields it sends that :class:`Known` has values for."""
    named = {
        name: draw(strategies.sampled_from(ids)) for name, ids in known.path.items() if f"{{{name}}}" in operation.path
    }
    case = draw(operation.as_strategy(path_parameters=named or None))
    if isinstance(case.body, dict):
        for name, options in known.body.items():
            if name in case.body:
                case.body[name] = draw(strategies.sampled_from(options))
    return case


def fuzz(service: str, system_url: str, fuzzed: Fuzzed) -> FuzzRun:
    """Run every operation of the API at ``system_url`` through its own Hypothesis test with
    :data:`CHECKS`. (Hypothesis is driven directly: schemathesis' pytest plugin does not work
    with the pytest this project pins.)"""
    schema = schemathesis.openapi.from_url(f"{system_url}/schema/openapi.json")
    # Every request carries the admin's token (401s are the security suite's business): left to
    # itself schemathesis would also send generated tokens, or none, in place of it.
    schema.config.generation.update(with_security_parameters=False)
    run = FuzzRun(service)
    for result in schema.get_all_operations():
        operation = result.ok()
        # Requests the document allows, requests it forbids (which must be refused with a 4xx),
        # and allowed ones that name things that exist, so success answers are checked too.
        cases = strategies.one_of(
            operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE), realistic(operation, fuzzed.known)
        )

        # One bug per operation is reported (the first found, shrunk): the rest of the budget
        # goes to the other operations rather than to hunting a second one here.
        @given(case=cases)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            report_multiple_bugs=False,
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            response = case.call(headers=fuzzed.headers)
            run.statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS, headers=fuzzed.headers)

        try:
            answers_as_documented()
        except FailureGroup as failed:
            run.failures[operation.label] = failed.message
        except Exception as broken:  # a transport error, or a strategy that cannot generate
            run.failures[operation.label] = f"{type(broken).__name__}: {broken}"
        run.operations.append(operation.label)
    return run


def check(run: FuzzRun, config: pytest.Config, expected: set[str]) -> None:
    report(config, FUZZ_SUMMARIES, run.summary())  # listed at the end of the run, the figure `make bench` reports
    assert expected <= set(run.operations), (
        f"operations missing from the OpenAPI document: {expected - set(run.operations)}"
    )
    if run.failures:
        pytest.fail(f"{run.summary()}\n\n{run.report()}", pytrace=False)


def test_directory_api_answers_as_documented(fuzzed: Fuzzed, request: pytest.FixtureRequest) -> None:
    run = fuzz("directory", str(fuzzed.system.directory.base_url).rstrip("/"), fuzzed)
    check(run, request.config, {"GET /api/v1/partners", "POST /api/v1/partners", "PATCH /api/v1/partners/{partner_id}"})


def test_referrals_api_answers_as_documented(fuzzed: Fuzzed, request: pytest.FixtureRequest) -> None:
    run = fuzz("referrals", str(fuzzed.system.referrals.base_url).rstrip("/"), fuzzed)
    check(
        run, request.config, {"POST /api/v1/referrals", "POST /api/v1/referrals/suggestions", "POST /api/v1/auth/token"}
    )
