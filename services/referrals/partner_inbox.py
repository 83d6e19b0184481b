"""The partner inbox (``/inbox/{token}``): one signed link per partner referral address, in every
email to that partner, listing what was offered to the partners with that address: open offers
(answered there), accepted referrals awaiting an outcome (reported there) and the last 90 days.

It adds no rules of its own. Each open offer and each accepted referral is shown and acted on
through the very use cases of the single-offer links (:mod:`.partner_links`), with a link to that
one offer made on the spot, once the inbox link and the offer's address are checked; so the
inbox discloses exactly what those pages do, and each of those views is audited as theirs are.
The admin can revoke an address's inbox links (a leaked one): the link carries its address's
generation, which revoking bumps."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import links, partner_links
from services.referrals.context import Context
from services.referrals.domain import LinkRefused
from services.referrals.outcomes import OutcomeReport
from services.referrals.records import InboxPage, InboxPast, InboxReport, OfferPage
from services.referrals.storage import inbox_store, offer_store, referral_store
from services.referrals.storage.inbox_store import InboxAddress
from services.referrals.storage.offer_store import StoredOffer
from shared.auth import InvalidToken, Staff

# How far back the inbox shows offers no longer waiting on the partner.
HISTORY_DAYS = 90
# A link made here for one offer is used at once; it need not outlive the request by much.
_ON_THE_SPOT = timedelta(minutes=5)

PAST = {
    # Still "offered" once its link is refused: the deadline passed before the sweep ran.
    "offered": "Not answered in time",
    "declined": "You declined",
    "expired": "Not answered in time",
    "withdrawn": "Withdrawn (taken by another practice, or the clinic changed the referral)",
}


async def open_inbox(ctx: Context, *, token: str) -> InboxPage:
    """What the inbox link shows, each open offer and accepted referral as its own page would
    (and audited as such), besides one audit line for the inbox view itself. Changes nothing
    else; :class:`LinkRefused` for a tampered, expired or revoked link."""
    now = ctx.clock()
    async with ctx.sessions.begin() as session:
        email, partner_ids = await _checked(ctx, session, token)
        made = await offer_store.made_to(session, partner_ids, since=now - timedelta(days=HISTORY_DAYS))
        referrals = {o.referral_id: await referral_store.load(session, o.referral_id) for o in made}
        await referral_store.add_audit(
            session,
            at=now,
            actor=f"partner-inbox:{email}",
            action="partner_viewed_inbox",
            referral_id=None,
            detail={"partner_ids": partner_ids, "offer_ids": [o.id for o in made]},
        )
    names = sorted({o.partner_name for o in made if o.partner_name})
    offers: list[OfferPage] = []
    awaiting: list[InboxReport] = []
    past: list[InboxPast] = []
    for offer in made:
        referral = referrals[offer.referral_id]
        try:
            if offer.status == "offered":
                offers.append(await partner_links.open_offer(ctx, token=_answer_link(ctx, offer)))
                continue
            if offer.status == "accepted" and referral.status in ("accepted", "in-progress") and offer.report_nonce:
                page = await partner_links.open_report(ctx, token=_report_link(ctx, offer))
                awaiting.append(InboxReport(offer_id=offer.id, page=page))
                continue
        except LinkRefused:
            pass  # changed since the list was read (answered elsewhere, expired): a past one
        moment = offer.responded_at or offer.offered_at
        if moment is None or moment < now - timedelta(days=HISTORY_DAYS):
            continue
        if offer.status == "accepted":
            what = f"You accepted; the referral is now {referral.status}"
        else:
            what = PAST.get(offer.status, offer.status)
        past.append(
            InboxPast(
                reference=referral.reference,
                partner_name=offer.partner_name,
                urgency=referral.urgency,
                offered_at=offer.offered_at or moment,
                what=what,
            )
        )
    return InboxPage(email=email, partner_names=names, offers=offers, awaiting=awaiting, past=past)


async def answer(
    ctx: Context, *, token: str, offer_id: str, decision: str, reason: str | None = None, note: str = ""
) -> Literal["accepted", "declined"]:
    """Accept or decline one of the inbox's open offers: exactly
    :func:`partner_links.answer`, for an offer to one of this address's partners."""
    offer = await _own_offer(ctx, token, offer_id)
    return await partner_links.answer(ctx, token=_answer_link(ctx, offer), decision=decision, reason=reason, note=note)


async def report(ctx: Context, *, token: str, offer_id: str, report: OutcomeReport) -> str:
    """Report the outcome of one of the inbox's accepted referrals: exactly
    :func:`partner_links.report` (so it uses up the emailed report link, as a report made
    there would)."""
    offer = await _own_offer(ctx, token, offer_id)
    if not offer.report_nonce:
        raise LinkRefused("used")
    return await partner_links.report(ctx, token=_report_link(ctx, offer), report=report)


async def addresses(ctx: Context) -> list[InboxAddress]:
    """Every partner referral address with its inbox links' generation, for the admin."""
    async with ctx.sessions.begin() as session:
        return await inbox_store.addresses(session)


async def revoke(ctx: Context, *, email: str, by: Staff) -> int:
    """Refuse every inbox link issued so far for ``email``; emails sent from now on carry new
    ones. Audited. The address's new generation."""
    async with ctx.sessions.begin() as session:
        generation = await inbox_store.bump(session, email, at=ctx.clock(), by=by.id)
        await referral_store.add_audit(
            session,
            at=ctx.clock(),
            actor=f"staff:{by.id}",
            action="inbox_links_revoked",
            referral_id=None,
            detail={"email": inbox_store.normalised(email), "generation": generation},
        )
    return generation


async def _checked(ctx: Context, session: AsyncSession, token: str) -> tuple[str, list[str]]:
    """The address an inbox link names and its partners; :class:`LinkRefused` unless the link
    is genuine, unexpired and of the address's current generation."""
    try:
        email, generation = links.read_inbox(token, key=ctx.signing_key)
    except InvalidToken as exc:
        raise LinkRefused("expired" if str(exc) == "expired" else "invalid") from None
    if generation != await inbox_store.generation(session, email):
        raise LinkRefused("revoked")
    return email, await inbox_store.partner_ids(session, email)


async def _own_offer(ctx: Context, token: str, offer_id: str) -> StoredOffer:
    """The offer, when the inbox link is good and the offer went to one of its partners; an
    offer of anyone else's is refused as if it did not exist."""
    async with ctx.sessions.begin() as session:
        _, partner_ids = await _checked(ctx, session, token)
        offer = await offer_store.get(session, offer_id)
    if offer is None or offer.partner_id not in partner_ids:
        raise LinkRefused("invalid")
    return offer


def _answer_link(ctx: Context, offer: StoredOffer) -> str:
    """The offer's own answer link, as its email carries it (same offering nonce)."""
    expires_at = max(offer.expires_at or ctx.clock(), ctx.clock() + _ON_THE_SPOT)
    return links.issue(key=ctx.signing_key, offer_id=offer.id, expires_at=expires_at, nonce=offer.offer_nonce or "")


def _report_link(ctx: Context, offer: StoredOffer) -> str:
    """The offer's current outcome-report link (its newest nonce)."""
    return links.issue(
        key=ctx.signing_key,
        offer_id=offer.id,
        expires_at=ctx.clock() + _ON_THE_SPOT,
        purpose="report",
        nonce=offer.report_nonce or "",
    )
