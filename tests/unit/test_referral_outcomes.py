"""What an outcome report must say, field by field."""

from __future__ import annotations

from datetime import date

import pytest

from services.referrals.domain import check_transition
from services.referrals.outcomes import TARGET_STATUS, OutcomeReport, check_report
from shared.errors import InvalidInput


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (OutcomeReport(outcome="seen"), "outcome"),
        (OutcomeReport(outcome="booked"), "booked_for"),
        (OutcomeReport(outcome="completed"), "clearance"),
        (OutcomeReport(outcome="completed", clearance="maybe"), "clearance"),
        (OutcomeReport(outcome="completed", clearance="precautions", areas_to_avoid="  "), "areas_to_avoid"),
        (OutcomeReport(outcome="no_show", note="x" * 2001), "note"),
    ],
)
def test_incomplete_reports_name_the_field(report: OutcomeReport, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_report(report)
    assert raised.value.field == field


@pytest.mark.parametrize(
    "report",
    [
        OutcomeReport(outcome="booked", booked_for=date(2030, 1, 2)),
        OutcomeReport(outcome="no_show"),
        OutcomeReport(outcome="completed", clearance="ok"),
        OutcomeReport(outcome="completed", clearance="precautions", pressure_limit="light"),
        OutcomeReport(outcome="completed", clearance="not_until_further_notice", note="awaiting scan"),
    ],
)
def test_complete_reports_pass(report: OutcomeReport) -> None:
    check_report(report)


def test_every_outcome_moves_an_accepted_referral_by_the_state_machine() -> None:
    for target in TARGET_STATUS.values():
        check_transition("accepted", target)
    check_transition("in-progress", "completed")
    check_transition("in-progress", "on-hold")
