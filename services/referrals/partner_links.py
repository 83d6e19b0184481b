"""The partner's side, through the signed links in their emails: the offer's page, "I have seen
it" (the referral is received), accept or decline; then, for the partner who accepted, the
outcome-report link, its page and the report. Opening a page changes nothing but the audit log
(mail scanners follow links); every answer is a POST, and each link is good for one."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import contact, links, offering, unit_of_work
from services.referrals.context import Context
from services.referrals.domain import DECLINE_REASONS, OPEN_STATUSES, LinkRefused, answer_problems
from services.referrals.outcomes import CLEARANCES, OUTCOMES, TARGET_STATUS, OutcomeReport, check_report
from services.referrals.records import ClientContact, OfferPage, ReportPage
from services.referrals.storage import offer_store, outcome_store, referral_store
from services.referrals.storage.offer_store import StoredOffer
from services.referrals.storage.referral_store import StoredReferral
from shared.auth import InvalidToken

# How long an outcome-report link stays good: long enough for a waiting list and a first visit.
REPORT_LINK_DAYS = 90


async def open_offer(ctx: Context, *, token: str) -> OfferPage:
    """The offer behind a partner link, for the confirmation page. Audits the view; changes
    nothing else (mail scanners follow links). Once this partner has accepted, the same link
    shows them the client's name and contact details too (that view audited as such); a partner
    who declined, let the offer expire or had it withdrawn never sees them."""
    async with ctx.sessions.begin() as session:
        accepted = await _accepted_offer(ctx, session, token)
        if accepted is not None:
            offer, referral = accepted
            await _audit_view(ctx, session, offer, referral, disclosed="client_contact")
            expires_at = offer.expires_at or ctx.clock()
        else:
            offer, referral, expires_at = await _usable_offer(ctx, session, token)
            await _audit_view(ctx, session, offer, referral)
    reasons = [ctx.rules.reasons[c] for c in referral.reasons if c in ctx.rules.reasons]
    return OfferPage(
        offer_id=offer.id,
        partner_name=offer.partner_name,
        reference=referral.reference,
        urgency=referral.urgency,
        reasons=[r.label for r in reasons],
        guidance=[r.guidance for r in reasons],
        note=referral.note,
        expires_at=expires_at,
        acknowledged=offer.acknowledged_at is not None,
        postal_code=str(referral.client.get("postal_code") or ""),
        language=contact.language_name(str(referral.client.get("language") or contact.DEFAULT_LANGUAGE)),
        accepted=accepted is not None,
        client=None if accepted is None else _client_contact(referral),
    )


async def _accepted_offer(ctx: Context, session: AsyncSession, token: str) -> tuple[StoredOffer, StoredReferral] | None:
    """The offer a link names and its referral when that partner accepted it and the referral is
    still theirs to act on (accepted or booked); None otherwise (the link is then read as an offer
    still waiting, or refused)."""
    try:
        offer_id, nonce = links.read(token, key=ctx.signing_key)
    except InvalidToken:
        return None
    offer = await offer_store.get(session, offer_id)
    # A link of an earlier offering (before a hold and resume) never discloses anything.
    if offer is None or offer.status != "accepted" or nonce != (offer.offer_nonce or ""):
        return None
    referral = await referral_store.load(session, offer.referral_id)
    if referral.status not in ("accepted", "in-progress"):
        return None
    return offer, referral


def _client_contact(referral: StoredReferral) -> ClientContact:
    client = referral.client
    phone = client.get("phone") or ""
    return ClientContact(
        name=str(client.get("name") or ""),
        phone=contact.display_phone(phone),
        phone_link=contact.normalised_phone_or_none(phone),
        email=str(client.get("email") or ""),
        preferred_contact=contact.PREFERRED_CONTACT.get(str(client.get("preferred_contact") or ""), ""),
        language=contact.language_name(str(client.get("language") or contact.DEFAULT_LANGUAGE)),
        next_step=contact.NEXT_STEP_FOR_PARTNER.get(referral.next_step, ""),
    )


async def acknowledge(ctx: Context, *, token: str) -> None:
    """The partner says they have seen the referral and will answer: their offer notes it, and
    the first to say so of an urgent referral's partners moves it ``requested → received``.

    This is the explicit POST that marks a referral received. Opening the link cannot do it,
    because mail scanners open links too; a second acknowledgement changes nothing."""
    async with ctx.sessions.begin() as session:
        offer, referral, expires_at = await _usable_offer(ctx, session, token, lock=True)
        if not await offer_store.claim_acknowledgement(session, offer.id, at=ctx.clock()):
            return
        actor = f"partner:{offer.partner_name}"
        why = f"{offer.partner_name} has seen the referral and will answer by {ctx.when(expires_at)}"
        if referral.status == "requested":
            await unit_of_work.transition(ctx, session, referral=referral, to="received", actor=actor, why=why)
        else:
            await unit_of_work.note(ctx, session, referral=referral, actor=actor, why=why)


async def answer(
    ctx: Context, *, token: str, decision: str, reason: str | None = None, note: str = ""
) -> Literal["accepted", "declined"]:
    """A partner's accept or decline through their link. Single use: a second answer, or an
    answer after the deadline, raises :class:`LinkRefused`; so does an acceptance of an urgent
    referral that another partner accepted first (``taken``)."""
    async with ctx.sessions.begin() as session:
        # The link is checked first: a used or forged link is refused whatever the form says.
        offer, referral, _ = await _usable_offer(ctx, session, token, lock=True)
        if problems := answer_problems(decision=decision, reason=reason, note=note):
            raise problems[0]
        new_status: Literal["accepted", "declined"] = "accepted" if decision == "accept" else "declined"
        # A reason chosen and then an acceptance: the reason is not the partner's answer.
        reason = reason if new_status == "declined" else None
        explained = DECLINE_REASONS.get(reason or "", "")
        claimed = await offer_store.claim_answer(
            session, offer.id, status=new_status, at=ctx.clock(), reason=reason, note=note or None
        )
        if not claimed:
            raise LinkRefused("used")
        name = offer.partner_name
        if new_status == "accepted":
            await offering.award(
                ctx, session, referral=referral, offer=offer, actor=f"partner:{name}", why=f"accepted by {name}"
            )
            await unit_of_work.email_therapist(
                ctx, session, referral=referral, kind="referral_accepted", partner_name=name
            )
            await send_report_link(ctx, session, referral=referral, offer=offer)
        else:
            await unit_of_work.note(
                ctx, session, referral=referral, actor=f"partner:{name}", why=f"declined by {name}: {explained}"
            )
            await unit_of_work.email_therapist(
                ctx, session, referral=referral, kind="referral_declined", partner_name=name
            )
            await offering.advance(ctx, session, referral_id=referral.id, actor="system")
    return new_status


async def _usable_offer(
    ctx: Context, session: AsyncSession, token: str, *, lock: bool = False
) -> tuple[StoredOffer, StoredReferral, datetime]:
    """The offer a link names, its referral and its deadline; :class:`LinkRefused` unless the
    offer still waits for this partner's answer. With ``lock`` (to answer), the referral's row
    is held first and the offer read as it is once held: of two partners of an urgent referral
    accepting at once, the second reads the offer the first one's acceptance withdrew."""
    try:
        offer_id, nonce = links.read(token, key=ctx.signing_key)
    except InvalidToken as exc:
        raise LinkRefused("expired" if str(exc) == "expired" else "invalid") from None
    offer = await offer_store.get(session, offer_id)
    if offer is None:
        raise LinkRefused("invalid")
    if lock:
        await referral_store.lock(session, offer.referral_id)
        offer = await offer_store.load(session, offer_id)
    referral = await referral_store.load(session, offer.referral_id)
    if nonce != (offer.offer_nonce or ""):
        # A link from an earlier offering: its partner was told it was withdrawn.
        raise LinkRefused("withdrawn")
    if offer.status != "offered" or referral.status not in OPEN_STATUSES:
        if offer.status == "withdrawn" and await offer_store.taken_by_other(session, referral.id, offer.id):
            raise LinkRefused("taken")
        raise LinkRefused("used")
    if offer.expires_at is None or offer.expires_at <= ctx.clock():
        raise LinkRefused("expired")
    return offer, referral, offer.expires_at


# ------------------------------------------------------------------ outcome reports


async def send_report_link(
    ctx: Context, session: AsyncSession, *, referral: StoredReferral, offer: StoredOffer
) -> None:
    """Email the accepting partner a fresh outcome-report link; any earlier one stops working."""
    nonce = secrets.token_urlsafe(18)
    await offer_store.set_report_nonce(session, offer.id, nonce)
    expires_at = ctx.clock() + timedelta(days=REPORT_LINK_DAYS)
    token = links.issue(key=ctx.signing_key, offer_id=offer.id, expires_at=expires_at, purpose="report", nonce=nonce)
    await unit_of_work.email_partner(
        ctx,
        session,
        referral=referral,
        offer=offer,
        kind="report_outcome",
        action_url=f"{ctx.settings.public_url('referrals')}/report/{token}",
        expires_at=expires_at,
    )


async def open_report(ctx: Context, *, token: str) -> ReportPage:
    """The referral behind an outcome-report link, for its form. Audits the view only."""
    async with ctx.sessions.begin() as session:
        offer, referral, _ = await _usable_report(ctx, session, token)
        await _audit_view(ctx, session, offer, referral, purpose="report", disclosed="client_contact")
        booked_for = await outcome_store.latest_booking(session, referral.id)
    return ReportPage(
        partner_name=offer.partner_name,
        reference=referral.reference,
        urgency=referral.urgency,
        reasons=[ctx.rules.reasons[c].label for c in referral.reasons if c in ctx.rules.reasons],
        status=referral.status,
        booked_for=booked_for,
        client=_client_contact(referral),
    )


async def report(ctx: Context, *, token: str, report: OutcomeReport) -> str:
    """A partner's outcome report through their link: recorded, the referral moved (booked →
    in-progress, completed, no-show → on hold with the therapist), the therapist emailed, and
    after a booking a fresh link sent for the next report. Each link is good for one report."""
    async with ctx.sessions.begin() as session:
        offer, referral, nonce = await _usable_report(ctx, session, token)
        check_report(report, today=ctx.today())
        if not await offer_store.claim_report_nonce(session, offer.id, nonce):
            raise LinkRefused("used")
        await outcome_store.add(
            session,
            referral_id=referral.id,
            offer_id=offer.id,
            partner_id=offer.partner_id,
            report=report,
            at=ctx.clock(),
        )
        actor = f"partner:{offer.partner_name}"
        why = f"{offer.partner_name} reported: {OUTCOMES[report.outcome]}"
        if report.booked_for:
            why += f" for {report.booked_for.isoformat()}"
        if report.clearance:
            why += f"; {CLEARANCES[report.clearance]}"
        target = TARGET_STATUS[report.outcome]
        if target == referral.status:
            await unit_of_work.note(ctx, session, referral=referral, actor=actor, why=why)
        else:
            await unit_of_work.transition(ctx, session, referral=referral, to=target, actor=actor, why=why)
        await unit_of_work.email_therapist(
            ctx, session, referral=referral, kind="outcome_reported", partner_name=offer.partner_name
        )
        if report.outcome == "booked":
            await send_report_link(ctx, session, referral=referral, offer=offer)
    return target


async def _usable_report(ctx: Context, session: AsyncSession, token: str) -> tuple[StoredOffer, StoredReferral, str]:
    """The accepted offer an outcome-report link names, its referral and the link's nonce;
    :class:`LinkRefused` unless the link is the offer's newest and the referral still open."""
    try:
        offer_id, nonce = links.read_report(token, key=ctx.signing_key)
    except InvalidToken as exc:
        raise LinkRefused("expired" if str(exc) == "expired" else "invalid") from None
    offer = await offer_store.get(session, offer_id)
    if offer is None:
        raise LinkRefused("invalid")
    referral = await referral_store.load(session, offer.referral_id)
    if offer.status != "accepted" or offer.report_nonce != nonce or referral.status not in ("accepted", "in-progress"):
        raise LinkRefused("used")
    return offer, referral, nonce


async def _audit_view(
    ctx: Context, session: AsyncSession, offer: StoredOffer, referral: StoredReferral, **detail: str
) -> None:
    """Record that the partner opened one of their links (what a partner saw is audited)."""
    await referral_store.add_audit(
        session,
        at=ctx.clock(),
        actor=f"partner:{offer.partner_id}",
        action="partner_viewed_referral",
        referral_id=referral.id,
        detail={"offer_id": offer.id, **detail},
    )
