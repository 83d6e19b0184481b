"""Messages from the other services, each applied once: partners' changed directory entries, a
batch per transaction (the newest version of each is kept; a partner who stops being active
loses the offers waiting for their answer to the next partner), and the notifier's delivery
reports, noted on the referral's timeline."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import offering, unit_of_work
from services.referrals.context import Context
from services.referrals.records import DELIVERY_ACTOR
from services.referrals.storage import email_store, offer_store, partner_store, referral_store
from shared.messages import EmailDelivery, PartnerChanged, PartnerSnapshot


async def apply_partner_changes(ctx: Context, *, changes: Sequence[PartnerChanged]) -> int:
    """Keep the newest snapshot of each partner, all in one transaction; older or repeated
    versions change nothing. A partner that stops being active loses its open offers to the next
    partner. How many snapshots were stored."""
    async with ctx.sessions.begin() as session:
        stored = await partner_store.keep_newer(session, changes)
        for snapshot in stored:
            if snapshot.status != "active":
                await _reoffer_away_from(ctx, session, snapshot)
    return len(stored)


async def apply_partner_changed(ctx: Context, *, message: PartnerChanged) -> bool:
    """:func:`apply_partner_changes` for one change: whether it was stored."""
    return await apply_partner_changes(ctx, changes=[message]) == 1


async def _reoffer_away_from(ctx: Context, session: AsyncSession, partner: PartnerSnapshot) -> None:
    for referral in await referral_store.with_offer_to(session, partner.id):
        await referral_store.lock(session, referral.id)  # see offering: the referral first, then its offers
        await offer_store.withdraw_offered_to(session, referral.id, partner.id, at=ctx.clock())
        await unit_of_work.note(
            ctx,
            session,
            referral=referral,
            actor="system",
            why=f"offer to {partner.name} withdrawn: partner is now {partner.status}",
        )
        await offering.advance(ctx, session, referral_id=referral.id, actor="system")


async def record_delivery(ctx: Context, *, message: EmailDelivery) -> bool:
    """Note an email's delivery outcome on its referral's timeline, once."""
    async with ctx.sessions.begin() as session:
        if not await email_store.record_delivery(session, message):
            return False
        referral = await referral_store.get(session, message.referral_id) if message.referral_id else None
        if referral is not None:
            staged = await email_store.staged(session, message.notification_id)
            what = f"email '{staged.kind}' to {staged.to}" if staged else "email"
            detail = f": {message.detail}" if message.detail and message.outcome != "sent" else ""
            await unit_of_work.note(
                ctx, session, referral=referral, actor=DELIVERY_ACTOR, why=f"{what} {message.outcome}{detail}"
            )
    return True
