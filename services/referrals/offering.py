"""Offering a referral: a soon or routine one to one partner at a time, in the therapist's
order, each with a deadline in business days; an urgent one to up to
``HANDOFF_URGENT_PARALLEL_OFFERS`` partners at once, each with a deadline in clock hours
(``HANDOFF_OFFER_HOURS_URGENT``), the first to accept taking it. Then: the next partner(s) once
every open offer has closed unanswered or declined, the referral given to the partner who
accepted (the others withdrawn and told), withdrawing what is open, and the deadline sweep that
reminds partners at half time and expires offers at their deadline.

Whatever changes a referral's offers first holds the referral's row
(:func:`~services.referrals.storage.referral_store.lock`): two partners answering at once then
take turns, and the second finds the referral taken."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import client_emails, links, unit_of_work
from services.referrals.context import Context
from services.referrals.offers import add_business_days
from services.referrals.records import SweepReport
from services.referrals.storage import offer_store, referral_store
from services.referrals.storage.offer_store import StoredOffer
from services.referrals.storage.referral_store import StoredReferral
from shared.messages import EmailKind, PartnerSnapshot


def at_once(ctx: Context, *, urgency: str) -> int:
    """How many partners a referral of ``urgency`` is offered to at the same time."""
    return ctx.settings.urgent_parallel_offers if urgency == "urgent" else 1


def deadline(ctx: Context, *, urgency: str, now: datetime) -> datetime:
    """When an offer of a referral of ``urgency`` made ``now`` expires, in UTC (SQLite keeps a
    datetime's wall time only, and every reader assumes UTC)."""
    settings = ctx.settings
    if urgency == "urgent":
        # Clock hours, nights and weekends included: the client should be seen today.
        return now.astimezone(UTC) + timedelta(hours=settings.offer_hours_urgent)
    days = settings.offer_days_soon if urgency == "soon" else settings.offer_days_routine
    return add_business_days(now, days, timezone=settings.clinic_timezone, holidays=settings.holidays).astimezone(UTC)


async def offer_next(ctx: Context, session: AsyncSession, *, referral: StoredReferral) -> int:
    """Offer the referral to its next queued partners, as many as its urgency offers at once
    less those still deciding (see :func:`at_once`): how many were offered (0 when none is
    left)."""
    room = at_once(ctx, urgency=referral.urgency) - await offer_store.count_offered(session, referral.id)
    made = 0
    while made < room and (offer := await offer_store.next_queued(session, referral.id, today=ctx.today())) is not None:
        await _make(ctx, session, referral=referral, offer=offer)
        made += 1
    return made


async def offer_first(
    ctx: Context, session: AsyncSession, *, referral: StoredReferral, partners: list[PartnerSnapshot]
) -> None:
    """Queue a new referral's offers to ``partners``, in that order, the first partner(s) offered
    it at once: what queueing them and :func:`offer_next` would do, in one insert. The partners
    are active ones, read in the caller's transaction (see services.referrals.issuing)."""
    room = at_once(ctx, urgency=referral.urgency)
    now = ctx.clock()
    expires_at = deadline(ctx, urgency=referral.urgency, now=now)
    new: list[StoredOffer] = []
    offered: list[tuple[StoredOffer, str]] = []
    for position, partner in enumerate(partners):
        offer = StoredOffer(
            id=str(uuid.uuid4()),
            referral_id=referral.id,
            partner_id=partner.id,
            position=position,
            status="queued",
            partner_name=partner.name,
            partner_email=partner.email,
            partner_phone=partner.phone or "",
        )
        if len(offered) < room:
            nonce = secrets.token_urlsafe(18)
            offer = msgspec.structs.replace(
                offer, status="offered", offered_at=now, expires_at=expires_at, offer_nonce=nonce
            )
            offered.append((offer, nonce))
        new.append(offer)
    await offer_store.insert_new(session, new)
    for offer, nonce in offered:
        await _announce(ctx, session, referral=referral, offer=offer, expires_at=expires_at, nonce=nonce)


async def _make(ctx: Context, session: AsyncSession, *, referral: StoredReferral, offer: StoredOffer) -> None:
    """Make one offer: its deadline, its signed link emailed to the partner, a timeline line."""
    now = ctx.clock()
    expires_at = deadline(ctx, urgency=referral.urgency, now=now)
    # A new nonce for each offering: a link from an earlier one (before a hold) stays refused.
    nonce = secrets.token_urlsafe(18)
    await offer_store.mark_offered(session, offer.id, at=now, expires_at=expires_at, nonce=nonce)
    await _announce(ctx, session, referral=referral, offer=offer, expires_at=expires_at, nonce=nonce)


async def _announce(
    ctx: Context,
    session: AsyncSession,
    *,
    referral: StoredReferral,
    offer: StoredOffer,
    expires_at: datetime,
    nonce: str,
) -> None:
    """An offer just made, to answer by ``expires_at`` through a link carrying ``nonce``: a
    timeline line, then the link emailed to the partner (the email goes under that line)."""
    token = links.issue(key=ctx.signing_key, offer_id=offer.id, expires_at=expires_at, nonce=nonce)
    await unit_of_work.event(
        ctx,
        session,
        referral_id=referral.id,
        actor="system",
        from_status="requested",
        to_status="requested",
        why=f"offered to {offer.partner_name}, to answer by {ctx.when(expires_at)}",
    )
    await unit_of_work.email_partner(
        ctx,
        session,
        referral=referral,
        offer=offer,
        kind="offer",
        action_url=_answer_url(ctx, token),
        expires_at=expires_at,
    )


async def advance(ctx: Context, session: AsyncSession, *, referral_id: str, actor: str) -> None:
    """After an offer closes without acceptance: nothing while other partners of an urgent
    referral are still deciding; else the next partner(s), or fail and tell the therapist."""
    referral = await referral_store.load(session, referral_id)
    if await offer_store.count_offered(session, referral.id):
        return
    if await offer_store.next_queued(session, referral.id, today=ctx.today()) is None:
        await unit_of_work.transition(
            ctx, session, referral=referral, to="failed", actor=actor, why="no partner left to offer it to"
        )
        await unit_of_work.email_therapist(ctx, session, referral=referral, kind="no_partner_left")
        await client_emails.referral_failed(ctx, session, referral=referral)
        return
    if referral.status == "received":
        # "Received" belonged to the partner(s) whose offers just closed.
        await unit_of_work.transition(
            ctx,
            session,
            referral=referral,
            to="requested",
            actor=actor,
            why="the partners who had it closed their offers; offering the next",
        )
    await offer_next(ctx, session, referral=referral)


async def award(
    ctx: Context, session: AsyncSession, *, referral: StoredReferral, offer: StoredOffer, actor: str, why: str
) -> None:
    """The referral goes to ``offer``'s partner, whose acceptance the caller has just claimed
    (holding the referral's row): it is accepted, and the other partners still deciding on it
    are withdrawn and told another practice took it. Their links then say so. When the client is
    to make the call, the client is emailed the partner's details (if they agreed to email). The
    emails the caller stages next belong to the acceptance."""
    accepted = await unit_of_work.transition(ctx, session, referral=referral, to="accepted", actor=actor, why=why)
    await client_emails.partner_accepted(ctx, session, referral=referral, offer=offer)
    for other in await offer_store.of_referrals(session, [referral.id], statuses=("offered",)):
        if await offer_store.withdraw(session, other.id, at=ctx.clock()):
            await unit_of_work.event(
                ctx,
                session,
                referral_id=referral.id,
                actor="system",
                from_status="accepted",
                to_status="accepted",
                why=f"offer to {other.partner_name} withdrawn: {offer.partner_name} took it",
            )
            await unit_of_work.email_partner(ctx, session, referral=referral, offer=other, kind="offer_taken")
    unit_of_work.emails_belong_to(session, referral_id=referral.id, step=accepted)


async def withdraw_open_offers(
    ctx: Context, session: AsyncSession, *, referral: StoredReferral, kind: EmailKind
) -> None:
    """Withdraw every offer still waiting or queued; the partners who were waiting to answer or
    had accepted are sent ``kind``."""
    told = await offer_store.of_referrals(session, [referral.id], statuses=("offered", "accepted"))
    await offer_store.withdraw_unanswered(session, referral.id, at=ctx.clock())
    for offer in told:
        await unit_of_work.email_partner(ctx, session, referral=referral, offer=offer, kind=kind)


# ------------------------------------------------------------------ deadlines


async def sweep(ctx: Context) -> SweepReport:
    """Act on every offer's stored deadline as of now: remind the partner once past half the
    time to answer, expire the offer at its deadline (the therapist is told, the next partner
    offered, or the referral fails).

    Safe to run at any interval, after an outage, and by several workers at once: each offer
    changes by a conditional UPDATE (``WHERE status = 'offered' ...``) in its own transaction
    with the emails it causes, so only the sweep whose UPDATE matched sends them."""
    now = ctx.clock()
    reminded = expired = 0
    async with ctx.sessions() as session:
        due = await offer_store.due(session)
    for offer in due:
        if offer.expires_at <= now:
            expired += await _expire(ctx, offer.id, referral_id=offer.referral_id, now=now)
        elif offer.reminded_at is None and offer.offered_at + (offer.expires_at - offer.offered_at) / 2 <= now:
            reminded += await _remind(ctx, offer.id, referral_id=offer.referral_id, now=now)
    return SweepReport(reminded=reminded, expired=expired)


async def _remind(ctx: Context, offer_id: str, *, referral_id: str, now: datetime) -> int:
    async with ctx.sessions.begin() as session:
        await referral_store.lock(session, referral_id)
        if not await offer_store.claim_reminder(session, offer_id, now=now):
            return 0  # Answered, expired or reminded by another sweep meanwhile.
        offer = await offer_store.load(session, offer_id)
        referral = await referral_store.load(session, offer.referral_id)
        assert offer.expires_at is not None  # The claim matched an offer with a deadline.
        # A fresh token for the same offering: links are stateless and die with it.
        token = links.issue(
            key=ctx.signing_key, offer_id=offer_id, expires_at=offer.expires_at, nonce=offer.offer_nonce or ""
        )
        await unit_of_work.note(
            ctx,
            session,
            referral=referral,
            actor="system",
            why=f"{offer.partner_name} reminded: half the time to answer has passed",
        )
        await unit_of_work.email_partner(
            ctx,
            session,
            referral=referral,
            offer=offer,
            kind="offer_reminder",
            action_url=_answer_url(ctx, token),
            expires_at=offer.expires_at,
        )
    return 1


async def _expire(ctx: Context, offer_id: str, *, referral_id: str, now: datetime) -> int:
    async with ctx.sessions.begin() as session:
        await referral_store.lock(session, referral_id)
        if not await offer_store.claim_expiry(session, offer_id, now=now):
            return 0  # Answered or expired by another sweep meanwhile.
        offer = await offer_store.load(session, offer_id)
        referral = await referral_store.load(session, offer.referral_id)
        assert offer.expires_at is not None  # The claim matched an offer past its deadline.
        await unit_of_work.note(
            ctx,
            session,
            referral=referral,
            actor="system",
            why=f"the offer to {offer.partner_name} expired unanswered at {ctx.when(offer.expires_at)}",
        )
        await unit_of_work.email_partner(ctx, session, referral=referral, offer=offer, kind="offer_withdrawn")
        if await offer_store.next_queued(session, referral.id, today=ctx.today()) is not None:
            # When none is left, advance sends the therapist no_partner_left instead.
            await unit_of_work.email_therapist(
                ctx, session, referral=referral, kind="offer_expired", partner_name=offer.partner_name
            )
        if referral.status in ("requested", "received"):
            # The next partner's time starts when they are sent the offer, not at the old
            # deadline: after an outage they still get their full time to answer.
            await advance(ctx, session, referral_id=referral.id, actor="system")
    return 1


def _answer_url(ctx: Context, token: str) -> str:
    return f"{ctx.settings.public_url('referrals')}/respond/{token}"
