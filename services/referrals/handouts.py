"""The client's handout, read for the therapist to print or show, and whom a client is told to
contact (also the client's email: services.referrals.client_emails)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import scoping
from services.referrals.context import Context
from services.referrals.intake import SuggestionQuery
from services.referrals.queries import referral_for
from services.referrals.records import Handout
from services.referrals.rules import NO_REFERRAL
from services.referrals.storage import offer_store, partner_store, referral_store
from services.referrals.storage.offer_store import StoredOffer
from services.referrals.storage.referral_store import StoredReferral
from shared import geo
from shared.auth import Staff
from shared.errors import InvalidInput
from shared.messages import PartnerSnapshot

# How many partners a handout lists when none has accepted: enough choice, one printed sheet.
HANDOUT_PARTNERS = 4


async def handout(
    ctx: Context, *, staff: Staff, referral_id: str, printed: bool = False, language: str | None = None
) -> Handout:
    """The client's handout: the partner who accepted, or else the referral's partners still
    active, topped up with the best suggestions for its reasons, never one who declined it or
    let the offer expire (the client would be sent back to a refusal); and, for each reason, what
    the client does today and if it gets worse, in ``language`` (English when a rule has none in
    it; the client's own language when not given). Every view is audited, and so is every print
    (``printed``)."""
    async with ctx.sessions.begin() as session:
        referral = await referral_for(session, staff=staff, referral_id=referral_id)
        language = language or str(referral.client.get("language") or "en")
        offers = await offer_store.of_referrals(session, [referral.id])
        await referral_store.add_audit(
            session,
            at=ctx.clock(),
            actor=staff.email,
            action="handout_printed" if printed else "handout_viewed",
            referral_id=referral.id,
            detail={"reference": referral.reference},
        )
        accepted = any(o.status == "accepted" for o in offers)
        listed = await handout_partners(ctx, session, referral=referral, offers=offers)
    # Never on paper: a reason whose rule says a handout could endanger the client (abuse
    # disclosure), which a referral made before such reasons stopped reaching partners may hold.
    reasons = [
        r
        for r in (ctx.rules.reasons[c] for c in referral.reasons if c in ctx.rules.reasons)
        if r.printed_handout and r.urgency not in NO_REFERRAL
    ]
    return Handout(
        referral_id=referral.id,
        reference=referral.reference,
        client_name=str(referral.client.get("name", "")),
        urgency=referral.urgency,
        why=[r.lay_wording or r.label for r in reasons],
        partners=listed,
        accepted=accepted,
        failed=referral.status == "failed",
        language=language,
        advice=list(dict.fromkeys(r.client_advice.text(language) for r in reasons if r.client_advice)),
    )


async def handout_partners(
    ctx: Context, session: AsyncSession, *, referral: StoredReferral, offers: list[StoredOffer]
) -> list[PartnerSnapshot]:
    """Whom the client is told to contact (the handout, the client's email): the partner who
    accepted, or else the referral's partners still active, topped up with the best suggestions
    for its reasons, never one who declined it or let the offer expire (the client would be sent
    back to a refusal). Read in ``session``, the caller's transaction."""
    accepted = [o.partner_id for o in offers if o.status == "accepted"]
    passed = {o.partner_id for o in offers if o.status in ("declined", "expired")}
    wanted = accepted or [pid for pid in dict.fromkeys(o.partner_id for o in offers) if pid not in passed]
    found = {p.id: p for p in await partner_store.snapshots(session, ids=wanted)}
    listed = [found[pid] for pid in wanted if pid in found and found[pid].status == "active"]
    if not accepted and len(listed) < HANDOUT_PARTNERS:
        postal = referral.client.get("postal_code") or None
        try:
            ranked = await scoping.ranked(
                ctx,
                query=SuggestionQuery(
                    reasons=list(referral.reasons),
                    postal_code=postal if postal and geo.centroid(postal) else None,
                    limit=HANDOUT_PARTNERS * 2,
                ),
                session=session,
            )
        except InvalidInput:
            ranked = []
        for _, partner in ranked:
            if len(listed) >= HANDOUT_PARTNERS:
                break
            if partner.id not in {p.id for p in listed} and partner.id not in passed:
                listed.append(partner)
    return listed
