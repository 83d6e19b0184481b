"""Partners' outcome reports (booked, no-show, completed) with the massage clearance: the rows
and their SQL, in the caller's session."""

from __future__ import annotations

from datetime import date, datetime

import msgspec
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.outcomes import OutcomeReport
from services.referrals.records import OutcomeRecord
from services.referrals.storage import figure_counters
from services.referrals.storage.tables import aware, outcomes, referrals


class GivenClearance(msgspec.Struct, kw_only=True, frozen=True):
    """A clearance a partner gave, with the referral it was given on."""

    referral_id: str
    reference: str
    clearance: str
    reported_at: datetime
    areas_to_avoid: str
    pressure_limit: str
    note: str


async def add(
    session: AsyncSession, *, referral_id: str, offer_id: str, partner_id: str, report: OutcomeReport, at: datetime
) -> None:
    figure_counters.touch(session, referral_ids=[referral_id])
    await session.execute(
        insert(outcomes).values(
            referral_id=referral_id,
            offer_id=offer_id,
            partner_id=partner_id,
            outcome=report.outcome,
            booked_for=report.booked_for,
            clearance=report.clearance,
            areas_to_avoid=report.areas_to_avoid.strip(),
            pressure_limit=report.pressure_limit.strip(),
            note=report.note.strip(),
            reported_at=at,
        )
    )


async def of_referrals(session: AsyncSession, referral_ids: list[str]) -> dict[str, list[OutcomeRecord]]:
    """Each referral's outcome reports, oldest first."""
    if not referral_ids:
        return {}
    rows = await session.execute(
        select(outcomes).where(outcomes.c.referral_id.in_(referral_ids)).order_by(outcomes.c.id)
    )
    found: dict[str, list[OutcomeRecord]] = {}
    for row in rows:
        found.setdefault(row.referral_id, []).append(
            OutcomeRecord(
                outcome=row.outcome,
                reported_at=aware(row.reported_at),
                partner_id=row.partner_id,
                booked_for=row.booked_for,
                clearance=row.clearance,
                areas_to_avoid=row.areas_to_avoid,
                pressure_limit=row.pressure_limit,
                note=row.note,
            )
        )
    return found


async def latest_booking(session: AsyncSession, referral_id: str) -> date | None:
    """The date of the referral's latest reported booking."""
    return (
        await session.execute(
            select(outcomes.c.booked_for)
            .where(outcomes.c.referral_id == referral_id, outcomes.c.outcome == "booked")
            .order_by(outcomes.c.id.desc())
            .limit(1)
        )
    ).scalar()


async def was_booked(session: AsyncSession, referral_id: str) -> bool:
    query = select(outcomes.c.id).where(outcomes.c.referral_id == referral_id, outcomes.c.outcome == "booked")
    return (await session.execute(query)).first() is not None


async def latest_clearance(session: AsyncSession, client_id: str) -> GivenClearance | None:
    """The newest clearance a partner gave for the client record ``client_id``, on any of that
    client's referrals: a clearance belongs to the person's record, never to a name."""
    row = (
        await session.execute(
            select(outcomes, referrals.c.reference)
            .join(referrals, referrals.c.id == outcomes.c.referral_id)
            .where(outcomes.c.clearance.is_not(None), referrals.c.client_id == client_id)
            .order_by(outcomes.c.reported_at.desc(), outcomes.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return GivenClearance(
        referral_id=row.referral_id,
        reference=row.reference,
        clearance=row.clearance,
        reported_at=aware(row.reported_at),
        areas_to_avoid=row.areas_to_avoid,
        pressure_limit=row.pressure_limit,
        note=row.note,
    )


async def completed_by_partner(session: AsyncSession, partner_ids: list[str]) -> dict[str, int]:
    """How many referrals each partner reported completed."""
    rows = await session.execute(
        select(outcomes.c.partner_id, func.count(func.distinct(outcomes.c.referral_id)))
        .where(outcomes.c.partner_id.in_(partner_ids), outcomes.c.outcome == "completed")
        .group_by(outcomes.c.partner_id)
    )
    return dict(rows.all())
