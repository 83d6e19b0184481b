"""How the directory tells other services about partners: a ``PartnerChanged`` message staged in
the outbox inside the transaction that made the change (the relay enqueues it after commit)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.domain import Partner
from services.directory.storage import outbox
from shared import outbox as outboxes
from shared.messages import Address, Location, PartnerChanged, PartnerSnapshot


def snapshot(partner: Partner) -> PartnerSnapshot:
    """Everything referrals may know about ``partner``, whatever its status (an archived or
    paused snapshot is how a replica learns to stop offering the partner)."""
    details = partner.details
    address = details.address
    return PartnerSnapshot(
        id=partner.id,
        slug=partner.slug,
        name=details.name,
        category=details.category,
        email=details.email,
        status=partner.status,
        accepting_new_clients=details.accepting_new_clients,  # type: ignore[arg-type]
        credentials=details.credentials,
        practice=details.practice,
        phone=details.phone,
        website=details.website,
        address=None
        if address is None
        else Address(
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            state=address.state,
            postal_code=address.postal_code,
        ),
        location=None if details.location is None else Location(lat=details.location.lat, lon=details.location.lon),
        languages=list(details.languages),
        telehealth=details.telehealth,
        accepts_referrals_from=list(details.accepts_referrals_from),
        response_window_days=details.response_window_days,
        specialties=list(details.specialties),
        hours=details.hours,
    )


def partner_changed(partner: Partner, *, changed_at: datetime) -> PartnerChanged:
    return PartnerChanged(partner=snapshot(partner), version=partner.version, changed_at=changed_at)


async def stage_partner_changed(session: AsyncSession, *, partner: Partner, changed_at: datetime) -> str:
    """Add ``PartnerChanged`` for ``partner`` to the outbox in ``session``'s transaction;
    returns the outbox id (which becomes the RQ job id)."""
    return await outboxes.add(session, outbox, partner_changed(partner, changed_at=changed_at))
