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

from services.directory.domain import Partner, PartnerDetails
from services.directory.storage import outbox
from shared import outbox as outboxes
from shared.messages import PartnerChanged, PartnersChanged, PartnerSnapshot

# Changes per PartnersChanged message: about 350 KB of JSON, a fraction of a second to apply.
BATCH = 500


# The partner details a snapshot carries, read by name: dataclasses.asdict copied every detail
# (bio, notes…) deeply only for most to be dropped, a tenth of an import's time.
_SHARED_DETAILS = tuple(
    name for name in PartnerSnapshot.__struct_fields__ if name in {f.name for f in dataclasses.fields(PartnerDetails)}
)


def snapshot(partner: Partner) -> PartnerSnapshot:
    """Everything referrals may know about ``partner``, whatever its status (an archived or
    paused snapshot is how a replica learns to stop offering the partner). ``PartnerSnapshot``
    declares what that is: fields it does not name (bio, NPI, notes…) are left behind."""
    details = partner.details
    return msgspec.convert(
        {
            **{name: getattr(details, name) for name in _SHARED_DETAILS},
            "id": partner.id,
            "slug": partner.slug,
            "status": partner.status,
        },
        PartnerSnapshot,
        # Address and Location are read from the domain's dataclasses by attribute.
        from_attributes=True,
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
