"""What the client is emailed, when they gave an email address and agreed to be emailed: the
details of the partner who accepted, when the therapist chose that the client makes the call;
or, when the referral fails, whom they can contact themselves (the handout's partners, never one
who declined or let the offer expire) and, for an urgent referral, to be seen today.

The emails carry the partners' public details only (:class:`shared.messages.PartnerContact`):
never the client's name, the reasons or the note (minimum necessary disclosure)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import contact, handouts, unit_of_work
from services.referrals.context import Context
from services.referrals.storage import offer_store, partner_store
from services.referrals.storage.offer_store import StoredOffer
from services.referrals.storage.referral_store import StoredReferral
from shared.messages import PartnerContact, PartnerSnapshot


async def partner_accepted(
    ctx: Context, session: AsyncSession, *, referral: StoredReferral, offer: StoredOffer
) -> bool:
    """``offer``'s partner accepted the referral: when the client is to call them, email the
    client how to reach them. Whether an email was staged."""
    if referral.next_step != "client_contacts_partner":
        return False
    found = await partner_store.snapshots(session, ids=[offer.partner_id])
    partners = [partner_contact(p) for p in found]
    return await unit_of_work.email_client(
        ctx,
        session,
        referral=referral,
        kind="client_partner_details",
        partners=partners,
        partner_name=found[0].name if found else offer.partner_name,
    )


async def referral_failed(ctx: Context, session: AsyncSession, *, referral: StoredReferral) -> bool:
    """The referral failed (no partner took it): email the client whom they may contact
    themselves. Whether an email was staged."""
    if not referral.client.get("email") or not referral.client.get("email_consent"):
        return False  # Nothing to look up for an email nobody will get.
    offers = await offer_store.of_referrals(session, [referral.id])
    listed = await handouts.handout_partners(ctx, session, referral=referral, offers=offers)
    return await unit_of_work.email_client(
        ctx, session, referral=referral, kind="client_referral_failed", partners=[partner_contact(p) for p in listed]
    )


def partner_contact(partner: PartnerSnapshot) -> PartnerContact:
    """How a client reaches ``partner``, from its public listing."""
    return PartnerContact(
        name=partner.name,
        credentials=partner.credentials,
        practice=partner.practice,
        phone=contact.display_phone(partner.phone),
        phone_link=contact.normalised_phone_or_none(partner.phone),
        address=partner.address,
        hours=partner.hours,
        website=partner.website or "",
        telehealth=partner.telehealth,
    )
