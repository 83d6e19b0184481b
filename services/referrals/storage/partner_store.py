"""The read-only replica of directory's partners, fed by ``PartnerChanged`` messages: the rows
and their SQL, in the caller's session."""

from __future__ import annotations

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.storage.tables import partners, updated_one
from shared.messages import PartnerChanged, PartnerSnapshot


async def snapshots(
    session: AsyncSession, *, ids: list[str] | None = None, categories: list[str] | None = None
) -> list[PartnerSnapshot]:
    """The partners with these ``ids`` (whatever their status), or the active ones in these
    ``categories``."""
    query = select(partners.c.snapshot)
    if ids is not None:
        query = query.where(partners.c.id.in_(ids))
    if categories is not None:
        query = query.where(partners.c.category.in_(categories), partners.c.status == "active")
    return [msgspec.convert(snapshot, PartnerSnapshot) for snapshot in (await session.execute(query)).scalars()]


async def keep_newer(session: AsyncSession, message: PartnerChanged) -> bool:
    """Store the message's snapshot unless the replica holds this version or a newer one;
    True when it was stored."""
    snapshot = message.partner
    values = {
        "version": message.version,
        "name": snapshot.name,
        "category": snapshot.category,
        "status": snapshot.status,
        "email": snapshot.email,
        "snapshot": msgspec.to_builtins(snapshot),
        "updated_at": message.changed_at,
    }
    newer = update(partners).where(partners.c.id == snapshot.id, partners.c.version < message.version)
    if await updated_one(session, newer.values(**values)):
        return True
    if (await session.execute(select(partners.c.id).where(partners.c.id == snapshot.id))).first():
        return False
    await session.execute(insert(partners).values(id=snapshot.id, **values))
    return True
