"""The SQL of the self-service listing (see :mod:`services.directory.listings`): changes waiting
for the admin's review, used manage-link submissions, and the notices the sweep claims. In the
caller's session, and so in its transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, func, insert, not_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.directory.domain import Partner
from services.directory.storage import (
    listing_notices,
    listing_reviews,
    manage_link_uses,
    partners,
    to_partner,
)


@dataclass(frozen=True, kw_only=True)
class Review:
    """Changes a partner asked for that wait for (or had) the admin's decision."""

    id: str
    partner_id: str
    requested_at: datetime
    base_version: int
    # column (services.directory.columns) -> the value asked for
    changes: dict[str, str]
    status: str  # pending | approved | rejected
    decided_at: datetime | None = None
    decided_by: str | None = None
    note: str = ""


async def link_used(session: AsyncSession | AsyncConnection, jti: str) -> bool:
    query = select(manage_link_uses.c.jti).where(manage_link_uses.c.jti == jti)
    return (await session.execute(query)).first() is not None


async def use_link(session: AsyncSession, *, jti: str, partner_id: str, at: datetime) -> bool:
    """Record the submission of token ``jti``; False when it was already used. Inside a savepoint,
    so that the caller's transaction survives the refusal."""
    try:
        async with session.begin_nested():
            await session.execute(insert(manage_link_uses).values(jti=jti, partner_id=partner_id, used_at=at))
    except IntegrityError:
        return False
    return True


async def add_review(
    session: AsyncSession, *, partner_id: str, base_version: int, changes: dict[str, str], at: datetime
) -> Review:
    review = Review(
        id=str(uuid.uuid4()),
        partner_id=partner_id,
        requested_at=at,
        base_version=base_version,
        changes=changes,
        status="pending",
    )
    await session.execute(
        insert(listing_reviews).values(
            id=review.id,
            partner_id=partner_id,
            requested_at=at,
            base_version=base_version,
            changes=changes,
            status="pending",
            note="",
        )
    )
    return review


async def get_review(session: AsyncSession | AsyncConnection, review_id: str) -> Review | None:
    row = (await session.execute(select(listing_reviews).where(listing_reviews.c.id == review_id))).first()
    return None if row is None else _review(row._mapping)


async def reviews(
    session: AsyncSession | AsyncConnection,
    *,
    status: str | None = None,
    partner_id: str | None = None,
    limit: int = 100,
) -> list[Review]:
    """Reviews, oldest first when pending (a queue), else newest first."""
    query = select(listing_reviews)
    if status is not None:
        query = query.where(listing_reviews.c.status == status)
    if partner_id is not None:
        query = query.where(listing_reviews.c.partner_id == partner_id)
    order = listing_reviews.c.requested_at if status == "pending" else listing_reviews.c.requested_at.desc()
    return [_review(row._mapping) for row in await session.execute(query.order_by(order).limit(limit))]


async def count_pending(session: AsyncSession | AsyncConnection) -> int:
    query = select(func.count()).select_from(listing_reviews).where(listing_reviews.c.status == "pending")
    return (await session.execute(query)).scalar_one()


async def decide(session: AsyncSession, *, review_id: str, status: str, by: str, note: str, at: datetime) -> bool:
    """Close a pending review; False when it was not pending any more (decided meanwhile)."""
    result = await session.execute(
        update(listing_reviews)
        .where(listing_reviews.c.id == review_id, listing_reviews.c.status == "pending")
        .values(status=status, decided_by=by, note=note, decided_at=at)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def claim_notice(session: AsyncSession, *, partner_id: str, kind: str, cycle: str, at: datetime) -> bool:
    """Claim the notice (partner, kind, cycle) for this transaction; False when another sweep
    (now or before) claimed it. Concurrent claimers wait on the row's key: one commits, the other
    then finds it taken."""
    try:
        async with session.begin_nested():
            await session.execute(
                insert(listing_notices).values(partner_id=partner_id, kind=kind, cycle=cycle, created_at=at)
            )
    except IntegrityError:
        return False
    return True


async def notice_sent(
    session: AsyncSession | AsyncConnection, *, partner_id: str, kind: str, cycle: str
) -> datetime | None:
    """When the notice (partner, kind, cycle) was claimed; None if it never was."""
    query = select(listing_notices.c.created_at).where(
        listing_notices.c.partner_id == partner_id, listing_notices.c.kind == kind, listing_notices.c.cycle == cycle
    )
    found = (await session.execute(query)).scalar_one_or_none()
    return None if found is None else _aware(found)


async def due_for_confirmation(
    session: AsyncSession | AsyncConnection, *, confirmed_before: datetime, unlist: bool
) -> list[Partner]:
    """Active partners last confirmed (or, never confirmed, added) before ``confirmed_before``,
    except those already flagged as the sweep would flag them (nothing left to do for them
    until they confirm)."""
    since = func.coalesce(partners.c.last_confirmed_at, partners.c.created_at)
    settled = and_(
        partners.c.needs_review_since.is_not(None), partners.c.hidden_until_confirmed.is_(True) if unlist else true()
    )
    query = (
        select(partners)
        .where(partners.c.status == "active", since <= confirmed_before, not_(settled))
        .order_by(partners.c.id)
    )
    return [to_partner(row._mapping) for row in await session.execute(query)]


async def reopening_due(session: AsyncSession | AsyncConnection, *, today: date) -> list[Partner]:
    """Partners not accepting (or on a waitlist) until a day that has come."""
    query = select(partners).where(
        partners.c.status != "archived",
        partners.c.accepting_new_clients != "yes",
        partners.c.accepting_until.is_not(None),
        partners.c.accepting_until <= today,
    )
    return [to_partner(row._mapping) for row in await session.execute(query.order_by(partners.c.id))]


async def licences_expiring(session: AsyncSession | AsyncConnection, *, by: date) -> list[Partner]:
    """Partners (not archived) whose licence expires on or before ``by``."""
    query = select(partners).where(
        partners.c.status != "archived",
        partners.c.licence_expires_on.is_not(None),
        partners.c.licence_expires_on <= by,
    )
    return [to_partner(row._mapping) for row in await session.execute(query.order_by(partners.c.id))]


def _review(m: Mapping[Any, Any]) -> Review:
    return Review(
        id=m["id"],
        partner_id=m["partner_id"],
        requested_at=_aware(m["requested_at"]),
        base_version=m["base_version"],
        changes=dict(m["changes"] or {}),
        status=m["status"],
        decided_at=None if m["decided_at"] is None else _aware(m["decided_at"]),
        decided_by=m["decided_by"],
        note=m["note"] or "",
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
