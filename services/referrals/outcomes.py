"""A partner's outcome report, knowing no framework: what a report may say, what it must say,
and the referral status each outcome moves to."""

from __future__ import annotations

from datetime import date

import msgspec

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


def check_report(report: OutcomeReport) -> None:
    """Raise :class:`InvalidInput`, naming the field, unless the report is complete."""
    if report.outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}", field="outcome")
    if report.outcome == "booked" and report.booked_for is None:
        raise InvalidInput("give the appointment date", field="booked_for")
    if report.clearance is not None and report.clearance not in CLEARANCES:
        raise InvalidInput(f"clearance must be one of {', '.join(CLEARANCES)}", field="clearance")
    if report.outcome == "completed" and report.clearance is None:
        raise InvalidInput("say whether massage is cleared", field="clearance")
    if report.clearance == "precautions" and not (report.areas_to_avoid.strip() or report.pressure_limit.strip()):
        raise InvalidInput("name the areas to avoid or the pressure limit", field="areas_to_avoid")
    for name in ("areas_to_avoid", "pressure_limit", "note"):
        if len(getattr(report, name)) > 2000:
            raise InvalidInput("at most 2000 characters", field=name)
