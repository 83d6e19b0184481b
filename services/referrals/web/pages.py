"""Staff HTML pages: the home page (what needs attention, recent referrals), one referral with
its offers, outcomes and timeline, and the therapist's actions on it (hold, resume, forward,
cancel)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from services.referrals import charts
from services.referrals.domain import OPEN_STATUSES, TRANSITIONS
from services.referrals.records import Dashboard, ReferralRecord
from services.referrals.service import Referrals
from services.referrals.web.guards import staff
from services.referrals.web.rendering import page
from shared.errors import DomainError
from shared.messages import PartnerSnapshot


class StaffPages(Controller):
    guards = [staff("admin", "therapist")]
    include_in_schema = False

    @get("/")
    async def home(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        status: FromQuery[str | None] = None,
        q: FromQuery[str] = "",
        days: FromQuery[int] = 90,
    ) -> Template:
        """The dashboard: what needs attention first, then open referrals by status (or a search),
        then the charts for the chosen period."""
        status = status if status in TRANSITIONS else None
        days = days if days in PERIODS else 90
        q = q.strip()[:100]
        attention = await referrals.list(staff=request.user, needs_attention=True, limit=50)
        recent = await referrals.list(staff=request.user, status=status, limit=100, search=q)
        by_status: dict[str, list[ReferralRecord]] = {}
        if not status and not q:
            for record in recent:
                if record.status in OPEN_STATUSES:
                    by_status.setdefault(record.status, []).append(record)
        until = referrals.now()
        figures = await referrals.dashboard(staff=request.user, since=until - timedelta(days=days), until=until)
        return page(
            request,
            "staff/home.html",
            attention=attention,
            recent=recent,
            status=status,
            statuses=list(TRANSITIONS),
            q=q,
            by_status=by_status,
            days=days,
            periods=PERIODS,
            figures=figures,
            **_charts(figures, days),
        )

    @get("/referrals/{referral_id:str}")
    async def referral(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template:
        record = await referrals.get(staff=request.user, referral_id=referral_id)
        return await _full_page(request, referrals, record)

    @post("/referrals/{referral_id:str}/cancel", status_code=303)
    async def cancel(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template | Redirect:
        form = await request.form()
        return await _act(request, referrals, referral_id, "cancel", reason=str(form.get("reason") or "")[:1000])

    @get("/referrals/{referral_id:str}/handout")
    async def handout(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        referral_id: FromPath[str],
        language: FromQuery[str] = "en",
    ) -> Template:
        """The client's printable handout (one sheet), its advice in ``language`` (en, es). Every
        view is audited."""
        return await _handout(request, referrals, referral_id, printed=False, language=language)

    @post("/referrals/{referral_id:str}/handout/print", status_code=200)
    async def print_handout(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template:
        """Printing goes through this POST so that it is audited (a print itself reaches no server)."""
        form = await request.form()
        return await _handout(request, referrals, referral_id, printed=True, language=str(form.get("language") or "en"))

    @post("/referrals/{referral_id:str}/hold", status_code=303)
    async def hold(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template | Redirect:
        form = await request.form()
        return await _act(request, referrals, referral_id, "hold", reason=str(form.get("reason") or "")[:1000])

    @post("/referrals/{referral_id:str}/resume", status_code=303)
    async def resume(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template | Redirect:
        return await _act(request, referrals, referral_id, "resume")

    @post("/referrals/{referral_id:str}/forward", status_code=303)
    async def forward(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template | Redirect:
        form = await request.form()
        return await _act(request, referrals, referral_id, "forward", partner_id=str(form.get("partner_id") or "")[:36])


PERIODS = {30: "last 30 days", 90: "last 90 days", 365: "last 12 months"}


def _charts(figures: Dashboard, days: int) -> dict:
    return {
        "funnel_chart": charts.bars(
            f"Referral funnel, {PERIODS[days]}", [(stage, count, str(count)) for stage, count in figures.funnel]
        ),
        "accept_chart": charts.bars(
            f"Median time to accept, by partner ({PERIODS[days]})",
            [(name, hours, f"{hours:.1f} h") for name, hours, _ in figures.time_to_accept],
            unit="hours",
        ),
        "category_chart": charts.stacked(f"Referrals by category per month ({PERIODS[days]})", figures.by_category),
    }


# What the handout says about timing, by language and urgency: plain words, no diagnosis.
# Urgent means today (clinical review §4): never "tomorrow at the latest".
HANDOUT_WHEN = {
    "en": {
        "urgent": "Please contact one of them today. If none of them can see you today, go to an urgent care "
        "clinic or see your own doctor today.",
        "soon": "Please contact one of them within the next week.",
        "routine": "Please contact one of them when it suits you.",
    },
    "es": {
        "urgent": "Comuníquese con uno de ellos hoy mismo. Si ninguno puede atenderle hoy, vaya hoy a una clínica "
        "de atención urgente o a su propio médico.",
        "soon": "Comuníquese con uno de ellos durante la próxima semana.",
        "routine": "Comuníquese con uno de ellos cuando le convenga.",
    },
}
# The heading over the client advice, by language.
HANDOUT_ADVICE_TITLE = {"en": "What to do today, and if it gets worse", "es": "Qué hacer hoy, y si empeora"}


def handout_language(language: str) -> str:
    """The handout language for a requested one (``es``, ``es-MX``…): English unless we have it."""
    base = language.strip().lower()[:2]
    return base if base in HANDOUT_WHEN else "en"


async def _handout(
    request: Request, referrals: Referrals, referral_id: str, *, printed: bool, language: str = "en"
) -> Template:
    settings = request.app.state.settings
    language = handout_language(language)
    handout = await referrals.handout(staff=request.user, referral_id=referral_id, printed=printed, language=language)
    when = HANDOUT_WHEN[language]
    return page(
        request,
        "staff/handout.html",
        handout=handout,
        printing=printed,
        when=when.get(handout.urgency, when["routine"]),
        advice_title=HANDOUT_ADVICE_TITLE[language],
        clinic_phone=settings.clinic_phone,
        clinic_address=settings.clinic_address,
        clinic_website=settings.clinic_website,
    )


async def _act(
    request: Request, referrals: Referrals, referral_id: str, action: str, **values: str
) -> Template | Redirect:
    """A staff action from the referral page: back to the page, or the page with the error."""
    try:
        await getattr(referrals, action)(staff=request.user, referral_id=referral_id, **values)
    except DomainError as error:
        if error.field == "id":
            raise
        record = await referrals.get(staff=request.user, referral_id=referral_id)
        return await _full_page(request, referrals, record, error=error.detail, status_code=409)
    return Redirect(f"/referrals/{referral_id}", status_code=303)


async def _full_page(
    request: Request, referrals: Referrals, record: ReferralRecord, *, error: str = "", status_code: int = 200
) -> Template:
    partners: list[PartnerSnapshot] = []
    if record.status in ("rejected", "failed", "on-hold"):
        partners = await referrals.forward_candidates(reasons=list(record.reasons))
    return _referral_page(request, record, error=error, status_code=status_code, partners=partners)


def _referral_page(
    request: Request,
    record: ReferralRecord,
    *,
    error: str = "",
    status_code: int = 200,
    partners: Sequence[PartnerSnapshot] = (),
) -> Template:
    rules = request.app.state.runtime.rules
    reasons = [rules.reasons[c] for c in record.reasons if c in rules.reasons]
    allowed = TRANSITIONS.get(record.status, ())
    return page(
        request,
        "staff/referral.html",
        status_code=status_code,
        referral=record,
        reasons=reasons,
        labels={code: r.label for code, r in rules.reasons.items()},
        can_cancel="cancelled" in allowed,
        can_hold="on-hold" in allowed,
        can_resume=record.status == "on-hold",
        forward_to=list(partners),
        error=error,
    )
