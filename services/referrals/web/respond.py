"""Partner pages behind the emailed link. GET only shows (mail scanners follow links); the
answer is a CSRF-protected POST."""

from __future__ import annotations

from datetime import date

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template

from services.referrals.domain import ANSWER_NOTE_LIMIT, DECLINE_REASONS, answer_problems
from services.referrals.outcomes import (
    CLEARANCES,
    OUTCOMES,
    TEXT_LIMIT,
    OutcomeReport,
    booking_window,
    report_problems,
)
from services.referrals.service import LinkRefused, Referrals
from shared.errors import InvalidInput

REFUSALS = {
    "invalid": (
        403,
        "This link is not valid",
        "The link may have been copied incompletely. Please use the link in "
        "the email exactly as it was sent, or contact the clinic.",
    ),
    "expired": (
        410,
        "This link has expired",
        "The time to answer this referral has passed and it may have been "
        "offered to another partner. Please contact the clinic if you can still help.",
    ),
    "used": (
        410,
        "This referral has already been answered",
        "An answer was already recorded through this link, or the referral is no longer open. Nothing was changed.",
    ),
    "withdrawn": (
        410,
        "This offer was withdrawn",
        "The clinic withdrew the offer this link was sent with, as we told you by email, so it "
        "can no longer be answered here. If the clinic offers you the referral again, you will get "
        "a new email with a new link. Nothing was changed.",
    ),
    "taken": (
        409,
        "Already taken by another practice: thank you",
        "This urgent referral was offered to a few practices at once, and another practice "
        "accepted it first. You don't need to do anything, and nothing was changed. Thank you "
        "for being ready to help.",
    ),
    # Only the partner inbox's links are revoked (services.referrals.web.inbox).
    "revoked": (
        410,
        "This link was turned off",
        "The clinic turned off this link. The next email from the clinic carries a new one. Nothing was changed.",
    ),
}


class Answer(msgspec.Struct, kw_only=True):
    """The answer form as posted. Every field may be missing: a form sent without a choice
    comes back with its errors, never as a 400."""

    decision: str = ""
    reason: str = ""
    note: str = ""


# The fields of the answer form, as its page names them.
ANSWER_LABELS = {"decision": "Your answer", "reason": "Reason for declining", "note": "Note for the clinic"}


def answer_errors(answer: Answer) -> dict[str, str]:
    """Every field the answer form got wrong, at once: field → plain words naming its label."""
    return worded(
        answer_problems(decision=answer.decision, reason=answer.reason or None, note=answer.note), ANSWER_LABELS
    )


def worded(problems: list[InvalidInput], labels: dict[str, str]) -> dict[str, str]:
    """The service's problems as a form shows them: field → "Label: what to do", one per field,
    in the form's order (``labels``)."""
    errors: dict[str, str] = {}
    for problem in problems:
        field = problem.field or ""
        errors.setdefault(field, f"{labels.get(field, 'This form')}: {problem.detail}")
    order = list(labels)
    return dict(sorted(errors.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


class RespondController(Controller):
    path = "/respond"
    include_in_schema = False

    @get("/{token:str}")
    async def show(self, request: Request, referrals: NamedDependency[Referrals], token: FromPath[str]) -> Template:
        try:
            page = await referrals.open_offer(token=token)
        except LinkRefused as refused:
            return _refused(request, refused)
        if page.accepted:
            return Template("respond/accepted.html", context=_context(request, page=page, just_accepted=False))
        return Template("respond/offer.html", context=_context(request, page=page, token=token))

    @post("/{token:str}", status_code=200)
    async def answer(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        token: FromPath[str],
        data: URLEncodedBody[Answer],
    ) -> Template:
        try:
            outcome = await referrals.answer(
                token=token, decision=data.decision, reason=data.reason or None, note=data.note
            )
        except LinkRefused as refused:
            return _refused(request, refused)
        except InvalidInput as error:
            try:
                page = await referrals.open_offer(token=token)
            except LinkRefused as refused:
                return _refused(request, refused)
            return Template(
                "respond/offer.html",
                status_code=422,
                context=_context(
                    request,
                    page=page,
                    token=token,
                    errors=answer_errors(data) or worded([error], ANSWER_LABELS),
                    answer=data,
                ),
            )
        if outcome == "accepted":
            # The same link now shows the client's details to this partner (the view audited).
            page = await referrals.open_offer(token=token)
            return Template("respond/accepted.html", context=_context(request, page=page, just_accepted=True))
        return Template("respond/done.html", context=_context(request, outcome=outcome))

    @post("/{token:str}/received", status_code=200)
    async def acknowledge(
        self, request: Request, referrals: NamedDependency[Referrals], token: FromPath[str]
    ) -> Template:
        """ "I have seen this and will answer": marks the referral received (GET never does)."""
        try:
            await referrals.acknowledge(token=token)
            page = await referrals.open_offer(token=token)
        except LinkRefused as refused:
            return _refused(request, refused)
        return Template("respond/offer.html", context=_context(request, page=page, token=token))


# The fields of the outcome report form, as its page names them.
REPORT_LABELS = {
    "outcome": "Outcome",
    "booked_for": "Appointment date",
    "clearance": "Massage clearance",
    "areas_to_avoid": "Precautions, areas to avoid",
    "pressure_limit": "Precautions, pressure limits",
    "note": "Note for the therapist",
}


class ReportForm(msgspec.Struct, kw_only=True):
    outcome: str = ""
    booked_for: str = ""
    clearance: str = ""
    areas_to_avoid: str = ""
    pressure_limit: str = ""
    note: str = ""

    def to_report(self) -> OutcomeReport:
        """The report the form states; :class:`InvalidInput` naming ``booked_for`` when its date
        cannot be read."""
        try:
            booked_for = read_date(self.booked_for)
        except ValueError:
            raise InvalidInput("give the date as month/day/year, for example 12/14/2026", field="booked_for") from None
        return self._report(booked_for)

    def errors(self, *, today: date) -> dict[str, str]:
        """Every field the form got wrong, at once (``today`` in the clinic's time zone): field →
        plain words naming its label."""
        try:
            problems = report_problems(self.to_report(), today=today)
        except InvalidInput as unreadable:
            # The rest is checked as if no date were given, but the date keeps its own message.
            rest = report_problems(self._report(None), today=today)
            problems = [unreadable, *(p for p in rest if p.field != "booked_for")]
        return worded(problems, REPORT_LABELS)

    def _report(self, booked_for: date | None) -> OutcomeReport:
        return OutcomeReport(
            outcome=self.outcome,
            booked_for=booked_for,
            clearance=self.clearance or None,
            areas_to_avoid=self.areas_to_avoid,
            pressure_limit=self.pressure_limit,
            note=self.note,
        )


def read_date(text: str) -> date | None:
    """A date as a date field sends it (2026-12-14) or as people in the US type it (12/14/2026,
    12/14/26); None when empty. Raises ValueError otherwise."""
    text = text.strip()
    if not text:
        return None
    if "/" not in text:
        return date.fromisoformat(text)
    month, day, year = (int(part) for part in text.split("/"))
    return date(year + 2000 if year < 100 else year, month, day)


class ReportController(Controller):
    """The accepting partner's outcome report, behind the fresh link in their confirmation email."""

    path = "/report"
    include_in_schema = False

    @get("/{token:str}")
    async def show(self, request: Request, referrals: NamedDependency[Referrals], token: FromPath[str]) -> Template:
        try:
            page = await referrals.open_report(token=token)
        except LinkRefused as refused:
            return _refused(request, refused)
        return _report_page(request, referrals, page=page, token=token)

    @post("/{token:str}", status_code=200)
    async def report(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        token: FromPath[str],
        data: URLEncodedBody[ReportForm],
    ) -> Template:
        try:
            status = await referrals.report(token=token, report=data.to_report())
        except LinkRefused as refused:
            return _refused(request, refused)
        except InvalidInput as error:
            try:
                page = await referrals.open_report(token=token)
            except LinkRefused as refused:
                return _refused(request, refused)
            errors = data.errors(today=referrals.today()) or worded([error], REPORT_LABELS)
            return _report_page(request, referrals, page=page, token=token, errors=errors, form=data, status_code=422)
        return Template("respond/reported.html", context=_context(request, status=status, outcome=data.outcome))


def _report_page(request: Request, referrals: Referrals, *, status_code: int = 200, **values: object) -> Template:
    earliest, latest = booking_window(referrals.today())
    return Template(
        "respond/report.html",
        status_code=status_code,
        context=_context(request, earliest=earliest, latest=latest, **values),
    )


def _context(request: Request, **values: object) -> dict:
    settings = request.app.state.settings
    return {
        "clinic_name": settings.clinic_name,
        "decline_reasons": DECLINE_REASONS,
        "outcomes": OUTCOMES,
        "clearances": CLEARANCES,
        "note_limit": ANSWER_NOTE_LIMIT,
        "text_limit": TEXT_LIMIT,
        "errors": {},
        **values,
    }


def _refused(request: Request, refused: LinkRefused) -> Template:
    status, title, explanation = REFUSALS[refused.why]
    return Template(
        "respond/refused.html", status_code=status, context=_context(request, title=title, explanation=explanation)
    )
