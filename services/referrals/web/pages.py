"""Staff HTML pages: the home page (what needs attention, recent referrals), one referral with
its offers, outcomes and timeline (an urgent one with the partners to phone now), and the
therapist's actions on it (hold, resume, forward, cancel, accepted by phone)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from services.referrals import charts
from services.referrals.contact import NEXT_STEPS, display_phone
from services.referrals.domain import DECLINE_REASONS, OPEN_STATUSES, TRANSITIONS
from services.referrals.outcomes import CLEARANCES, OUTCOMES
from services.referrals.records import DELIVERY_ACTOR, Dashboard, OfferRecord, ReferralRecord, TimelineEntry
from services.referrals.service import Referrals
from services.referrals.web.guards import staff
from services.referrals.web.handout_words import handout_language, words
from services.referrals.web.rendering import page
from shared import clinic_time
from shared.errors import DomainError, NotFound
from shared.messages import EmailKind, PartnerSnapshot


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
        figures = await referrals.dashboard(staff=request.user, days=days)
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

    @get("/referrals/{referral_id:str}/cancel")
    async def confirm_cancel(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template:
        """Asks the therapist to confirm the cancellation, saying who will be told (changes nothing)."""
        record = await referrals.get(staff=request.user, referral_id=referral_id)
        return _confirm_cancel_page(request, record)

    @post("/referrals/{referral_id:str}/cancel", status_code=303)
    async def cancel(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template | Redirect:
        """Cancel, once confirmed (``confirm=yes``, sent by the confirmation page); a post without
        it gets that page, with the reason typed kept."""
        form = await request.form()
        reason = str(form.get("reason") or "")[:1000]
        if form.get("confirm") != "yes":
            record = await referrals.get(staff=request.user, referral_id=referral_id)
            return _confirm_cancel_page(request, record, reason=reason)
        return await _act(request, referrals, referral_id, "cancel", reason=reason)

    @get("/referrals/{referral_id:str}/handout")
    async def handout(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        referral_id: FromPath[str],
        language: FromQuery[str | None] = None,
    ) -> Template:
        """The client's printable handout (one sheet), in ``language`` (en, es; the client's own
        language by default). Every view is audited."""
        return await _handout(request, referrals, referral_id, printed=False, language=language)

    @post("/referrals/{referral_id:str}/handout/print", status_code=200)
    async def print_handout(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template:
        """Printing goes through this POST so that it is audited (a print itself reaches no server)."""
        form = await request.form()
        return await _handout(
            request, referrals, referral_id, printed=True, language=str(form.get("language") or "") or None
        )

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

    @get("/referrals/{referral_id:str}/offers/{offer_id:str}/accepted-by-phone")
    async def confirm_accepted_by_phone(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        referral_id: FromPath[str],
        offer_id: FromPath[str],
    ) -> Template:
        """Asks the therapist to confirm that the partner accepted on the phone (changes nothing)."""
        record = await referrals.get(staff=request.user, referral_id=referral_id)
        offer = next((o for o in record.offers if o.id == offer_id), None)
        if offer is None:
            raise NotFound(f"no offer {offer_id} on this referral", field="offer_id")
        return page(
            request,
            "staff/accepted_by_phone.html",
            referral=record,
            offer=offer,
            can_accept=record.status in LOOKING and offer.status in ("offered", "queued"),
            others=[o.partner_name for o in record.offers if o.status == "offered" and o.id != offer.id],
        )

    @post("/referrals/{referral_id:str}/offers/{offer_id:str}/accepted-by-phone", status_code=303)
    async def accepted_by_phone(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        referral_id: FromPath[str],
        offer_id: FromPath[str],
    ) -> Template | Redirect:
        """Record that the partner accepted by phone (audited); back to the referral."""
        return await _act(request, referrals, referral_id, "accept_by_phone", offer_id=offer_id)

    @post("/referrals/{referral_id:str}/forward", status_code=303)
    async def forward(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> Template | Redirect:
        form = await request.form()
        return await _act(request, referrals, referral_id, "forward", partner_id=str(form.get("partner_id") or "")[:36])


PERIODS = {30: "last 30 days", 90: "last 90 days", 365: "last 365 days"}
# A referral still looking for a partner: the only time one can accept it.
LOOKING = ("requested", "received")
# Statuses in which an offer not made yet may still be made (on hold: once resumed).
MAY_STILL_OFFER = ("draft", "requested", "received", "on-hold")


def offer_status(referral: ReferralRecord, offer: OfferRecord) -> str:
    """An offer's status as staff read it. One never made is "next in line" while the referral
    may still be offered, and "not needed" once it was accepted, completed, cancelled or stopped
    looking; the stored status (queued, or withdrawn by a cancel) stays as it is."""
    if offer.offered_at is None and offer.status in ("queued", "withdrawn"):
        return "next in line" if referral.status in MAY_STILL_OFFER else "not needed"
    if offer.status == "declined" and offer.decline_reason:
        return f"declined: {DECLINE_REASONS.get(offer.decline_reason, offer.decline_reason).lower()}"
    if offer.status == "expired":
        return "no answer in time"
    return offer.status


# What each kind of email said, as the timeline names it under the step that sent it.
EMAIL_WORDS: dict[EmailKind, str] = {
    "offer": "the offer, with the link to answer",
    "offer_reminder": "a reminder to answer",
    "offer_withdrawn": "the offer is withdrawn",
    "offer_taken": "another practice took it",
    "offer_expired": "no answer in time",
    "referral_accepted": "accepted",
    "referral_declined": "declined",
    "referral_cancelled": "the referral is cancelled",
    "no_partner_left": "no partner left to offer it to",
    "report_outcome": "the link to report the outcome",
    "outcome_reported": "the outcome reported",
    "client_partner_details": "the partner's details",
    "client_referral_failed": "partners to contact",
}


def timeline_steps(referral: ReferralRecord) -> list[TimelineEntry]:
    """The timeline as the page shows it: the steps, each with the emails it sent; the lines
    noting delivery reports are shown as those emails' state instead."""
    return [e for e in referral.timeline if e.actor != DELIVERY_ACTOR]


def actor_name(actor: str) -> str:
    """Who took a timeline step, as people read it: a staff member's email, a partner's name,
    or Handoff itself for what it does on its own (offers, deadlines)."""
    if actor.startswith("partner:"):
        return actor.removeprefix("partner:")
    return "Handoff, automatically" if actor == "system" else actor


def sentence(text: str) -> str:
    """A timeline line as a sentence, ending in a full stop (its first letter is a capital by the
    page's style: the text itself stays as written, a therapist's reason included)."""
    text = text.strip()
    return text + ("" if text.endswith((".", "!", "?")) else ".")


def _confirm_cancel_page(request: Request, record: ReferralRecord, *, reason: str = "") -> Template:
    return page(
        request,
        "staff/confirm_cancel.html",
        referral=record,
        reason=reason,
        can_cancel="cancelled" in TRANSITIONS.get(record.status, ()),
        # Cancelling withdraws every open offer; only the partners deciding or holding it are
        # emailed (services.referrals.offering.withdraw_open_offers).
        told=[o.partner_name for o in record.offers if o.status in ("offered", "accepted")],
        waiting=[o.partner_name for o in record.offers if o.status == "queued"],
    )


def _charts(figures: Dashboard, days: int) -> dict:
    months = [(_month(month), counts) for month, counts in figures.by_category]
    return {
        "funnel_chart": charts.bars(
            f"Referral funnel, {PERIODS[days]}", [(stage, count, str(count)) for stage, count in figures.funnel]
        ),
        "accept_chart": charts.bars(
            f"Median time to accept, by partner ({PERIODS[days]})",
            [(name, hours, clinic_time.duration(hours * 3600)) for name, hours, _ in figures.time_to_accept],
            unit="hours",
        ),
        "category_chart": charts.stacked(f"Referrals by category per month ({PERIODS[days]})", months),
        "category_rows": months,
    }


def _month(month: str) -> str:
    """A clinic month ("2026-11", as the figures group them) as people write it: "Nov 2026"."""
    return datetime.strptime(month, "%Y-%m").strftime("%b %Y")


async def _handout(
    request: Request, referrals: Referrals, referral_id: str, *, printed: bool, language: str | None = None
) -> Template:
    settings = request.app.state.settings
    handout = await referrals.handout(
        staff=request.user,
        referral_id=referral_id,
        printed=printed,
        language=None if language is None else handout_language(language),
    )
    said = words(handout_language(handout.language))
    when = said["when"]
    return page(
        request,
        "staff/handout.html",
        handout=handout,
        printing=printed,
        when=when.get(handout.urgency, when["routine"]),
        today=said["today"],
        advice_title=said["advice_title"],
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
        if isinstance(error, NotFound):
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
    # Urgent means today: while nobody has it, the partners to phone now, those deciding first.
    call_now = []
    if record.urgency == "urgent" and record.status in LOOKING:
        for status in ("offered", "queued"):
            for offer in (o for o in record.offers if o.status == status):
                call_now.append((offer, offer.expires_at))
    return page(
        request,
        "staff/referral.html",
        status_code=status_code,
        referral=record,
        reasons=reasons,
        call_now=call_now,
        labels={code: r.label for code, r in rules.reasons.items()},
        can_cancel="cancelled" in allowed,
        can_hold="on-hold" in allowed,
        can_resume=record.status == "on-hold",
        forward_to=list(partners),
        error=error,
        next_steps=NEXT_STEPS,
        display_phone=display_phone,
        outcome_labels=OUTCOMES,
        clearance_labels=CLEARANCES,
        offer_status=offer_status,
        steps=timeline_steps(record),
        actor_name=actor_name,
        sentence=sentence,
        email_words=EMAIL_WORDS,
    )
