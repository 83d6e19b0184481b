"""A partner's outcome report, knowing no framework: what a report may say, what it must say,
and the referral status each outcome moves to."""

from __future__ import annotations

from datetime import date, timedelta

import msgspec

from services.referrals.domain import too_long
from shared.errors import InvalidInput

OUTCOMES: dict[str, str] = {
    "booked": "Booked: the client has an appointment",
    "no_show": "The client did not attend",
    "completed": "Seen: our part of the care is complete",
}
# The structured massage-clearance reply the therapist needs before the client's next session.
CLEARANCES: dict[str, str] = {
    "ok": "OK to massage",
    "precautions": "Massage with precautions",
    "not_until_further_notice": "No massage until further notice",
}
# Where each outcome moves the referral. A no-show goes back to the therapist: the referral is
# put on hold until they resume, forward or cancel it.
TARGET_STATUS: dict[str, str] = {"booked": "in-progress", "no_show": "on-hold", "completed": "completed"}


class OutcomeReport(msgspec.Struct, kw_only=True, frozen=True):
    outcome: str
    booked_for: date | None = None
    clearance: str | None = None
    areas_to_avoid: str = ""
    pressure_limit: str = ""
    note: str = ""


# Longest text a report field holds; the form announces it (maxlength).
TEXT_LIMIT = 2000
# How far from the clinic's today an appointment date may be: a booking reported a day late is
# still honest ("booked for yesterday"); one further back, or over a year ahead, is a typo.
BOOKED_GRACE = timedelta(days=1)
FURTHEST_AHEAD = timedelta(days=365)


def booking_window(today: date) -> tuple[date, date]:
    """The earliest and the latest appointment date a report may give."""
    return today - BOOKED_GRACE, today + FURTHEST_AHEAD


def report_problems(report: OutcomeReport, *, today: date) -> list[InvalidInput]:
    """Everything wrong with ``report``, each naming its field, in the form's order (empty when
    it is complete). ``today`` is the date in the clinic's time zone."""
    problems: list[InvalidInput] = []
    if report.outcome not in OUTCOMES:
        problems.append(InvalidInput("choose what happened", field="outcome"))
    earliest, latest = booking_window(today)
    if report.booked_for is None:
        if report.outcome == "booked":
            problems.append(InvalidInput("give the date the client is booked for", field="booked_for"))
    elif report.booked_for < earliest:
        problems.append(
            InvalidInput(
                f"{_day(report.booked_for)} is in the past; give the date of the appointment", field="booked_for"
            )
        )
    elif report.booked_for > latest:
        problems.append(
            InvalidInput(f"{_day(report.booked_for)} is more than a year ahead; check the year", field="booked_for")
        )
    if report.clearance is not None and report.clearance not in CLEARANCES:
        problems.append(InvalidInput("choose one of the answers listed", field="clearance"))
    elif report.outcome == "completed" and report.clearance is None:
        problems.append(InvalidInput("say whether massage is cleared, now that the client was seen", field="clearance"))
    if report.clearance == "precautions" and not (report.areas_to_avoid.strip() or report.pressure_limit.strip()):
        problems.append(InvalidInput("name the areas to avoid or the pressure limit", field="areas_to_avoid"))
    for name in ("areas_to_avoid", "pressure_limit", "note"):
        if len(getattr(report, name)) > TEXT_LIMIT:
            problems.append(InvalidInput(too_long(getattr(report, name), TEXT_LIMIT), field=name))
    return problems


def check_report(report: OutcomeReport, *, today: date) -> None:
    """Raise the first of :func:`report_problems` (an :class:`InvalidInput` naming its field)."""
    if problems := report_problems(report, today=today):
        raise problems[0]


def _day(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"
