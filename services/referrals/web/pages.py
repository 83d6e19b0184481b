"""Staff HTML pages: the home page (what needs attention, recent referrals), one referral with
its offers and timeline, and cancelling it."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from services.referrals.domain import TRANSITIONS
from services.referrals.web.guards import staff
from services.referrals.web.rendering import page
from shared.errors import DomainError


class StaffPages(Controller):
    guards = [staff("admin", "therapist")]
    include_in_schema = False

    @get("/")
    async def home(self, request: Request, status: FromQuery[str | None] = None) -> Template:
        referrals = request.app.state.runtime.referrals
        status = status if status in TRANSITIONS else None
        attention = await referrals.list(staff=request.user, needs_attention=True, limit=50)
        recent = await referrals.list(staff=request.user, status=status, limit=100)
        return page(request, "staff/home.html", attention=attention, recent=recent, status=status,
                    statuses=list(TRANSITIONS))

    @get("/referrals/{referral_id:str}")
    async def referral(self, request: Request, referral_id: FromPath[str]) -> Template:
        record = await request.app.state.runtime.referrals.get(staff=request.user, referral_id=referral_id)
        return _referral_page(request, record)

    @post("/referrals/{referral_id:str}/cancel", status_code=303)
    async def cancel(self, request: Request, referral_id: FromPath[str]) -> Template | Redirect:
        form = await request.form()
        referrals = request.app.state.runtime.referrals
        try:
            await referrals.cancel(staff=request.user, referral_id=referral_id,
                                   reason=str(form.get("reason") or "")[:1000])
        except DomainError as error:
            if error.field == "id":
                raise
            record = await referrals.get(staff=request.user, referral_id=referral_id)
            return _referral_page(request, record, error=error.detail, status_code=409)
        return Redirect(f"/referrals/{referral_id}", status_code=303)


def _referral_page(request: Request, record: object, *, error: str = "", status_code: int = 200) -> Template:
    rules = request.app.state.runtime.rules
    reasons = [rules.reasons[c] for c in record.reasons if c in rules.reasons]
    return page(request, "staff/referral.html", status_code=status_code, referral=record, reasons=reasons,
                can_cancel="cancelled" in TRANSITIONS.get(record.status, ()), error=error)
