"""Partner pages behind the emailed link. GET only shows (mail scanners follow links); the
answer is a CSRF-protected POST."""

from __future__ import annotations

from datetime import date

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template

from services.referrals.domain import DECLINE_REASONS
from services.referrals.outcomes import CLEARANCES, OUTCOMES, OutcomeReport
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
    decision: str
    reason: str | None = None
    note: str = ""


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
            page = await referrals.open_offer(token=token)
            return Template(
                "respond/offer.html",
                status_code=422,
                context=_context(request, page=page, token=token, error=error.detail),
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


class ReportForm(msgspec.Struct, kw_only=True):
    outcome: str = ""
    booked_for: str = ""
    clearance: str = ""
    areas_to_avoid: str = ""
    pressure_limit: str = ""
    note: str = ""

    def to_report(self) -> OutcomeReport:
        try:
            booked_for = date.fromisoformat(self.booked_for) if self.booked_for.strip() else None
        except ValueError:
            raise InvalidInput("give the date as YYYY-MM-DD", field="booked_for") from None
        return OutcomeReport(
            outcome=self.outcome,
            booked_for=booked_for,
            clearance=self.clearance or None,
            areas_to_avoid=self.areas_to_avoid,
            pressure_limit=self.pressure_limit,
            note=self.note,
        )


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
        return Template("respond/report.html", context=_context(request, page=page, token=token))

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
            return Template(
                "respond/report.html",
                status_code=422,
                context=_context(request, page=page, token=token, error=error.detail, form=data),
            )
        return Template("respond/reported.html", context=_context(request, status=status, outcome=data.outcome))


def _context(request: Request, **values: object) -> dict:
    settings = request.app.state.settings
    return {
        "clinic_name": settings.clinic_name,
        "decline_reasons": DECLINE_REASONS,
        "outcomes": OUTCOMES,
        "clearances": CLEARANCES,
        **values,
    }


def _refused(request: Request, refused: LinkRefused) -> Template:
    status, title, explanation = REFUSALS[refused.why]
    return Template(
        "respond/refused.html", status_code=status, context=_context(request, title=title, explanation=explanation)
    )
