"""How the directory tells other services about partners: a ``PartnerChanged`` message staged in
the outbox inside the transaction that made the change (the relay enqueues it after commit)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.domain import Partner
from services.directory.storage import outbox
from shared import outbox as outboxes
from shared.messages import PartnerChanged, PartnerSnapshot


def snapshot(partner: Partner) -> PartnerSnapshot:
    """Everything referrals may know about ``partner``, whatever its status (an archived or
    paused snapshot is how a replica learns to stop offering the partner). ``PartnerSnapshot``
    declares what that is: fields it does not name (bio, NPI, notes…) are left behind."""
    return msgspec.convert(
        {**dataclasses.asdict(partner.details), "id": partner.id, "slug": partner.slug, "status": partner.status},
        PartnerSnapshot,
    )


def partner_changed(partner: Partner, *, changed_at: datetime) -> PartnerChanged:
    return PartnerChanged(partner=snapshot(partner), version=partner.version, changed_at=changed_at)


async def stage_partner_changed(session: AsyncSession, *, partner: Partner, changed_at: datetime) -> str:
    """Add ``PartnerChanged`` for ``partner`` to the outbox in ``session``'s transaction;
    returns the outbox id (which becomes the RQ job id)."""
    return await outboxes.add(session, outbox, partner_changed(partner, changed_at=changed_at))
