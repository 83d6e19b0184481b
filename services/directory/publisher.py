"""How the directory tells other services about partners: a ``PartnerChanged`` message staged in
the outbox inside the transaction that made the change (the relay enqueues it after commit), or
for many partners at once (an import, a republish) ``PartnersChanged`` messages of up to
:data:`BATCH` changes each: one outbox row, one job and one transaction at the consumer per batch
rather than per partner."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.domain import Partner
from services.directory.storage import outbox
from shared import outbox as outboxes
from shared.messages import PartnerChanged, PartnersChanged, PartnerSnapshot

# Changes per PartnersChanged message: about 350 KB of JSON, a fraction of a second to apply.
BATCH = 500


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


async def stage_partners_changed(session: AsyncSession, *, partners: Sequence[Partner], changed_at: datetime) -> None:
    """Add the changes of ``partners`` to the outbox in ``session``'s transaction, :data:`BATCH`
    to a message."""
    for start in range(0, len(partners), BATCH):
        changes = [partner_changed(partner, changed_at=changed_at) for partner in partners[start : start + BATCH]]
        await outboxes.add(session, outbox, changes[0] if len(changes) == 1 else PartnersChanged(changes=changes))
