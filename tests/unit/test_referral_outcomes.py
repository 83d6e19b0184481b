"""What an outcome report must say, field by field, and what the partner's forms (answer and
report) show when they say it wrong: every error at once, in plain words naming the label."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.referrals.domain import answer_problems, check_transition
from services.referrals.outcomes import TARGET_STATUS, OutcomeReport, check_report, report_problems
from services.referrals.web.respond import Answer, ReportForm, answer_errors, read_date
from shared.errors import InvalidInput

TODAY = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (OutcomeReport(outcome="seen"), "outcome"),
        (OutcomeReport(outcome="booked"), "booked_for"),
        (OutcomeReport(outcome="booked", booked_for=TODAY - timedelta(days=2)), "booked_for"),
        (OutcomeReport(outcome="booked", booked_for=date(1999, 1, 1)), "booked_for"),
        (OutcomeReport(outcome="booked", booked_for=TODAY + timedelta(days=366)), "booked_for"),
        (OutcomeReport(outcome="completed"), "clearance"),
        (OutcomeReport(outcome="completed", clearance="maybe"), "clearance"),
        (OutcomeReport(outcome="completed", clearance="precautions", areas_to_avoid="  "), "areas_to_avoid"),
        (OutcomeReport(outcome="no_show", note="x" * 2001), "note"),
    ],
)
def test_incomplete_reports_name_the_field(report: OutcomeReport, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_report(report, today=TODAY)
    assert raised.value.field == field


@pytest.mark.parametrize(
    "report",
    [
        OutcomeReport(outcome="booked", booked_for=TODAY + timedelta(days=14)),
        # A booking reported a day late, and one just under a year ahead.
        OutcomeReport(outcome="booked", booked_for=TODAY - timedelta(days=1)),
        OutcomeReport(outcome="booked", booked_for=TODAY + timedelta(days=365)),
        OutcomeReport(outcome="no_show"),
        OutcomeReport(outcome="completed", clearance="ok"),
        OutcomeReport(outcome="completed", clearance="precautions", pressure_limit="light"),
        OutcomeReport(outcome="completed", clearance="not_until_further_notice", note="awaiting scan"),
    ],
)
def test_complete_reports_pass(report: OutcomeReport) -> None:
    check_report(report, today=TODAY)
    assert report_problems(report, today=TODAY) == []


def test_every_problem_of_a_report_is_found_at_once() -> None:
    report = OutcomeReport(outcome="booked", booked_for=date(1999, 1, 1), clearance="precautions", note="x" * 2345)
    problems = report_problems(report, today=TODAY)
    assert [p.field for p in problems] == ["booked_for", "areas_to_avoid", "note"]
    assert "January 1, 1999 is in the past" in problems[0].detail
    assert problems[2].detail == "at most 2,000 characters (this has 2,345)"


def test_every_outcome_moves_an_accepted_referral_by_the_state_machine() -> None:
    for target in TARGET_STATUS.values():
        check_transition("accepted", target)
    check_transition("in-progress", "completed")
    check_transition("in-progress", "on-hold")


# ------------------------------------------------------------------ the partner's answer


@pytest.mark.parametrize(
    ("decision", "reason", "note", "fields"),
    [
        ("accept", None, "", []),
        ("decline", "no_capacity", "", []),
        ("", None, "", ["decision"]),
        ("maybe", None, "", ["decision"]),
        ("decline", None, "", ["reason"]),
        ("decline", "busy", "", ["reason"]),
        ("", None, "x" * 2001, ["decision", "note"]),
        ("decline", None, "x" * 2001, ["reason", "note"]),
    ],
)
def test_an_answer_is_checked_whole(decision: str, reason: str | None, note: str, fields: list[str]) -> None:
    assert [p.field for p in answer_problems(decision=decision, reason=reason, note=note)] == fields


def test_the_answer_form_words_every_error_by_its_label() -> None:
    assert answer_errors(Answer()) == {"decision": "Your answer: choose accept or decline"}
    assert answer_errors(Answer(decision="decline", note="y" * 2500)) == {
        "reason": "Reason for declining: say why you are declining",
        "note": "Note for the clinic: at most 2,000 characters (this has 2,500)",
    }
    assert answer_errors(Answer(decision="decline", reason="other", note="moving away")) == {}


# ------------------------------------------------------------------ the report form


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("", None),
        ("  ", None),
        ("2026-12-14", date(2026, 12, 14)),
        ("12/14/2026", date(2026, 12, 14)),
        ("1/2/27", date(2027, 1, 2)),
    ],
)
def test_dates_are_read_as_a_date_field_sends_them_or_as_typed_in_the_us(typed: str, read: date | None) -> None:
    assert read_date(typed) == read


@pytest.mark.parametrize("typed", ["14/12/2026", "next Tuesday", "2026-13-01", "12/14", "12-14-2026"])
def test_a_date_that_cannot_be_read_is_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        read_date(typed)


def test_the_report_form_words_every_error_by_its_label_in_the_forms_order() -> None:
    form = ReportForm(outcome="completed", booked_for="next Tuesday", clearance="precautions", note="z" * 2001)
    errors = form.errors(today=TODAY)
    assert list(errors) == ["booked_for", "areas_to_avoid", "note"]
    assert errors["booked_for"] == "Appointment date: give the date as month/day/year, for example 12/14/2026"
    assert errors["areas_to_avoid"] == ("Precautions, areas to avoid: name the areas to avoid or the pressure limit")
    assert errors["note"].startswith("Note for the therapist: at most 2,000 characters")
    assert ReportForm().errors(today=TODAY) == {"outcome": "Outcome: choose what happened"}
    assert ReportForm(outcome="booked").errors(today=TODAY) == {
        "booked_for": "Appointment date: give the date the client is booked for"
    }
    far = ReportForm(outcome="booked", booked_for="2030-12-01").errors(today=TODAY)
    assert far == {"booked_for": "Appointment date: December 1, 2030 is more than a year ahead; check the year"}
    assert ReportForm(outcome="booked", booked_for="12/01/2026").errors(today=TODAY) == {}
