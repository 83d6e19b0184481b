"""The dashboard's figures, pinned against a hand-counted small history (SQLite, and PostgreSQL
when configured): a referral declined then accepted and completed, one accepted and then
cancelled with a booking, one accepted by a partner the replica no longer holds, no-partner and
draft referrals, two months, the period's edges in the clinic's days, another staff member's.
The history is written row by row, then counted both ways the counters are made: all at once
(the backfill) and referral by referral (the refigure each commit runs); both give the same."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import bootstrap
from services.referrals.records import Dashboard
from services.referrals.storage import (
    accept_times,
    clients,
    daily_figures,
    figure_counters,
    offers,
    outcomes,
    referral_figures,
    referrals,
    staff_users,
)
from shared.auth import Staff
from shared.config import Settings

# The clinic's (America/New_York) today is November 30; the period, its 47 days from October 15.
NOW = datetime(2030, 12, 1, 4, 30, tzinfo=UTC)
DAYS = 47


def at(day: str, hour: float = 9) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=hour)


# (reference, created by, created on, status, offers as (partner, status, offered at hour,
# answered at hour) on the day it was created, outcome reports). "ghost": a partner the replica
# does not hold.
HISTORY = [
    (
        "R1",
        "tess",
        "2030-10-20",
        "completed",
        [("gp1", "declined", 10, 12), ("gp2", "accepted", 13, 16)],
        ["booked", "completed"],
    ),
    ("R2", "tess", "2030-11-02", "on-hold", [("pt1", "accepted", 8, 9)], ["no_show"]),
    ("R3", "tess", "2030-11-03", "failed", [], []),
    ("R4", "tess", "2030-11-05", "requested", [("ghost", "offered", 8, None), ("trn", "queued", None, None)], []),
    ("R5", "tess", "2030-11-06", "cancelled", [("gp1", "accepted", 10, 15)], ["booked"]),
    ("R6", "tess", "2030-11-07", "accepted", [("ghost", "accepted", 10, 12.5)], []),
    ("R9", "tess", "2030-11-09", "draft", [], []),
    ("R11", "tess", "2030-11-10", "completed", [("gp1", "accepted", 9, 11)], ["completed"]),
    # Outside the period: before it, and on the clinic's day before its first (UTC's first day).
    ("R7", "tess", "2030-10-10", "completed", [("gp1", "accepted", 9, 10)], ["completed"]),
    ("R10", "tess", "2030-10-15", "completed", [("gp1", "accepted", 9, 10)], ["completed"]),
    # The admin's own: an admin sees it, the therapist does not.
    ("R8", "ada", "2030-11-08", "in-progress", [("gp1", "accepted", 9, 13)], []),
]


async def _write_history(settings: Settings, counted: str) -> dict[str, Staff]:
    """The history, row by row, then its figures counted as ``counted`` says: "backfill" (all at
    once) or "refigure" (each referral touched, refigured as its transaction commits)."""
    runtime = bootstrap.build(settings)
    try:
        async with runtime.sessions.begin() as session:
            staff = {
                row.email.split("@")[0]: Staff(id=row.id, email=row.email, role=row.role)
                for row in await session.execute(select(staff_users))
            }
            for reference, by, day, status, offered, reports in HISTORY:
                # R10: 23:30 on October 14 in the clinic, already the 15th in UTC.
                created = at(day, 3.5) if reference == "R10" else at(day, 7)
                await session.execute(
                    insert(clients).values(
                        id=f"client-{reference}",
                        name=f"Client {reference}",
                        language="en",
                        email_consent=False,
                        created_by=staff[by].id,
                        created_at=created,
                    )
                )
                await session.execute(
                    insert(referrals).values(
                        id=reference,
                        reference=f"HX-{reference}",
                        status=status,
                        urgency="soon",
                        reasons=["radiating_numbness"],
                        note="",
                        client_id=f"client-{reference}",
                        consent={"given": True, "method": "verbal", "scope": ["clinical"]},
                        created_by=staff[by].id,
                        created_at=created,
                        updated_at=created,
                    )
                )
                for position, (partner_id, offer_status, offered_at, answered_at) in enumerate(offered):
                    await session.execute(
                        insert(offers).values(
                            id=f"{reference}-{position}",
                            referral_id=reference,
                            partner_id=partner_id,
                            position=position,
                            status=offer_status,
                            offered_at=None if offered_at is None else at(day, offered_at),
                            responded_at=None if answered_at is None else at(day, answered_at),
                        )
                    )
                for outcome in reports:
                    await session.execute(
                        insert(outcomes).values(
                            referral_id=reference,
                            offer_id=f"{reference}-0",
                            partner_id="gp1",
                            outcome=outcome,
                            areas_to_avoid="",
                            pressure_limit="",
                            note="",
                            reported_at=at(day, 20),
                        )
                    )
            if counted == "refigure":
                figure_counters.touch(session, referral_ids=[reference for reference, *_ in HISTORY])
            else:
                await session.run_sync(
                    lambda sync: figure_counters.backfill(sync.connection(), zone=settings.clinic_timezone)
                )
        return staff
    finally:
        await runtime.close()


async def _dashboard(settings: Settings, staff: Staff) -> Dashboard:
    runtime = bootstrap.build(settings, clock=lambda: NOW)
    try:
        return await runtime.referrals.dashboard(staff=staff, days=DAYS)
    finally:
        await runtime.close()


@pytest.mark.parametrize("counted", ["backfill", "refigure"])
def test_dashboard_figures_match_a_hand_counted_history(settings: Settings, counted: str) -> None:
    staff = asyncio.run(_write_history(settings, counted))

    # The therapist's own: R1–R6, R9, R11. Accepted: R1 and R11 (completed), R2 and R5 (an
    # offer accepted, whatever came next), R6 (by status). Booked: R1, R11 (completed), R5 (a
    # booking reported before the cancel); R2's no-show is not one.
    mine = asyncio.run(_dashboard(settings, staff["tess"]))
    assert mine.funnel == [("sent", 7), ("accepted", 5), ("booked", 3), ("completed", 2)]
    # Medians of accepted offers only (R1's decline is not one); Dr. Ana Gomez: 5 h and 2 h.
    assert mine.time_to_accept == [
        ("Bay Physio", 1.0, 1),
        ("unknown partner", 2.5, 1),
        ("Dr. Ben Ode", 3.0, 1),
        ("Dr. Ana Gomez", 3.5, 2),
    ]
    # The first offer's category, skipping a partner the replica does not hold (R4: trainer).
    assert mine.by_category == [
        ("2030-10", {"Primary-care physician": 1}),
        (
            "2030-11",
            {"Physical therapy": 1, "no partner": 3, "Personal training": 1, "Primary-care physician": 2},
        ),
    ]
    assert (mine.first_day, mine.last_day) == (date(2030, 10, 15), date(2030, 11, 30))
    assert (mine.since, mine.until) == (datetime(2030, 10, 15, 4, tzinfo=UTC), NOW)

    everyone = asyncio.run(_dashboard(settings, staff["ada"]))
    assert everyone.funnel == [("sent", 8), ("accepted", 6), ("booked", 4), ("completed", 2)]
    assert everyone.time_to_accept[-1] == ("Dr. Ana Gomez", 4.0, 3)
    assert everyone.by_category[-1][1]["Primary-care physician"] == 3


async def _counters(settings: Settings) -> dict[str, list[tuple]]:
    """Every row of the counters, in order."""
    runtime = bootstrap.build(settings)
    try:
        async with runtime.sessions() as session:
            return await counters(session)
    finally:
        await runtime.close()


async def counters(session: AsyncSession) -> dict[str, list[tuple]]:
    return {
        table.name: [tuple(row) for row in await session.execute(select(table).order_by(*table.primary_key))]
        for table in (referral_figures, daily_figures, accept_times)
    }


def test_the_backfill_counts_as_the_commits_do(settings: Settings) -> None:
    asyncio.run(_write_history(settings, "refigure"))
    refigured = asyncio.run(_counters(settings))

    async def backfill() -> None:
        runtime = bootstrap.build(settings)
        try:
            async with runtime.sessions.begin() as session:
                await session.run_sync(
                    lambda sync: figure_counters.backfill(sync.connection(), zone="America/New_York")
                )
        finally:
            await runtime.close()

    asyncio.run(backfill())
    assert asyncio.run(_counters(settings)) == refigured
    assert len(refigured["referral_figures"]) == len(HISTORY)
