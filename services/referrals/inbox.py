"""Messages from the other services, each applied once: a partner's changed directory entry
(the newest version is kept; a partner who stops being active loses the offers waiting for
their answer to the next partner), and the notifier's delivery reports, noted on the referral's
timeline."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import offering, unit_of_work
from services.referrals.context import Context
from services.referrals.storage import email_store, offer_store, partner_store, referral_store
from shared.messages import EmailDelivery, PartnerChanged, PartnerSnapshot


async def apply_partner_changed(ctx: Context, *, message: PartnerChanged) -> bool:
    """Keep the newest snapshot of a partner; older or repeated versions change nothing.
    A partner that stops being active loses its open offers to the next partner."""
    async with ctx.sessions.begin() as session:
        if not await partner_store.keep_newer(session, message):
            return False
        if message.partner.status != "active":
            await _reoffer_away_from(ctx, session, message.partner)
    ctx.on_commit()
    return True


async def _reoffer_away_from(ctx: Context, session: AsyncSession, partner: PartnerSnapshot) -> None:
    for referral in await referral_store.with_offer_to(session, partner.id):
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
                ctx, session, referral=referral, actor="notifier", why=f"{what} {message.outcome}{detail}"
            )
    return True
