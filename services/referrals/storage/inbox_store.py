"""The partner inbox's rows and SQL, in the caller's session: each address's link generation
(revoking bumps it) and the offers made to the partners whose referral address it is."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.storage.tables import aware, inbox_links, partners, updated_one


class InboxAddress(msgspec.Struct, kw_only=True, frozen=True):
    """A partner referral address as the admin's inbox page lists it."""

    email: str
    partner_names: list[str]
    generation: int = 0
    revoked_at: datetime | None = None


def normalised(email: str) -> str:
    return email.strip().lower()


async def generation(session: AsyncSession, email: str) -> int:
    """The address's current link generation (0 until its links were first revoked)."""
    return (await session.execute(_GENERATION, {"email": normalised(email)})).scalar() or 0


# Built once: every offer's email asks it (see referral_store).
_GENERATION = select(inbox_links.c.generation).where(inbox_links.c.email == bindparam("email"))


async def bump(session: AsyncSession, email: str, *, at: datetime, by: str) -> int:
    """Revoke every inbox link of the address: its generation goes up one. The new generation."""
    email = normalised(email)
    values = {"revoked_at": at, "revoked_by": by}
    statement = (
        update(inbox_links)
        .where(inbox_links.c.email == email)
        .values(generation=inbox_links.c.generation + 1, **values)
    )
    if not await updated_one(session, statement):
        await session.execute(insert(inbox_links).values(email=email, generation=1, **values))
    return await generation(session, email)


async def addresses(session: AsyncSession) -> list[InboxAddress]:
    """Every referral address of a partner in the replica, with its partners' names and its
    links' generation, by address."""
    rows = (await session.execute(select(partners.c.email, partners.c.name).order_by(partners.c.name))).all()
    names: dict[str, list[str]] = {}
    for email, name in rows:
        if email:
            names.setdefault(normalised(email), []).append(name)
    kept = {row.email: row for row in (await session.execute(select(inbox_links))).all()}
    return [
        InboxAddress(
            email=email,
            partner_names=partner_names,
            generation=kept[email].generation if email in kept else 0,
            revoked_at=aware(kept[email].revoked_at) if email in kept and kept[email].revoked_at else None,
        )
        for email, partner_names in sorted(names.items())
    ]


async def partner_ids(session: AsyncSession, email: str) -> list[str]:
    """The partners whose referral address is ``email`` (any case)."""
    query = select(partners.c.id).where(func.lower(partners.c.email) == normalised(email))
    return list((await session.execute(query)).scalars())
