"""The dashboard's figures, counted by the database rather than in Python: the rows and their
SQL, in the caller's session."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from itertools import pairwise

import msgspec
from sqlalchemy import (
    ColumnElement,
    Float,
    case,
    exists,
    extract,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.storage.tables import aware, offers, outcomes, partners, referrals


class Figures(msgspec.Struct, kw_only=True, frozen=True):
    """What the dashboard counts, for the referrals created in a period, counted by the database."""

    # (stage, referrals): sent, accepted, booked, completed.
    funnel: list[tuple[str, int]]
    # (month "YYYY-MM", category of the first offer's partner or None, referrals).
    by_month: list[tuple[str, str | None, int]]
    # (partner name, median hours from offer to acceptance, acceptances).
    accept_times: list[tuple[str, float, int]]


async def figures(
    session: AsyncSession, *, since: datetime, until: datetime, created_by: str | None, unnamed: str
) -> Figures:
    """The funnel, the referrals by month and first offer's category, and each partner's median
    time to accept, of the referrals created in [since, until) (only ``created_by``'s when given;
    ``unnamed``: the name of a partner the replica does not hold, or holds without a name).
    A referral counts as accepted once a partner accepted it (whatever came next) or its status
    says so, as booked once a booking or completion was reported or its status says so."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Each figure walks the period's referrals; the plan's cost passes the JIT threshold,
        # and compiling it would take longer than running it.
        await session.execute(text("SET LOCAL jit = off"))
    made = [referrals.c.created_at >= since, referrals.c.created_at < until]
    if created_by is not None:
        made.append(referrals.c.created_by == created_by)
    month = _month(referrals.c.created_at, since=since, until=until).label("month")
    first_category = (
        select(partners.c.category)
        .join(offers, offers.c.partner_id == partners.c.id)
        .where(offers.c.referral_id == referrals.c.id, partners.c.category != "")
        .order_by(offers.c.position)
        .limit(1)
        .scalar_subquery()
        .label("category")
    )
    accepted_offer = exists().where(offers.c.referral_id == referrals.c.id, offers.c.status == "accepted")
    booking = exists().where(outcomes.c.referral_id == referrals.c.id, outcomes.c.outcome.in_(("booked", "completed")))
    stages = {
        "sent": referrals.c.status != "draft",
        "accepted": referrals.c.status.in_(("accepted", "in-progress", "completed")) | accepted_offer,
        "booked": referrals.c.status.in_(("in-progress", "completed")) | booking,
        "completed": referrals.c.status == "completed",
    }
    # One row per referral, then counted per (month, category): grouping by the columns of a
    # subquery, as both databases take them, rather than by expressions with parameters.
    each = (
        select(month, first_category, *(case((c, 1), else_=0).label(stage) for stage, c in stages.items()))
        .where(*made)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                each.c.month, each.c.category, func.count(), *(func.sum(each.c[stage]) for stage in stages)
            ).group_by(each.c.month, each.c.category)
        )
    ).all()
    funnel = [(stage, sum(row[3 + i] for row in rows)) for i, stage in enumerate(stages)]
    by_month = [(when, category, count) for when, category, count, *_ in rows]
    accept_times = await _accept_times(session, made, unnamed=unnamed, postgres=postgres)
    return Figures(funnel=funnel, by_month=by_month, accept_times=accept_times)


async def _accept_times(
    session: AsyncSession, made: list[ColumnElement[bool]], *, unnamed: str, postgres: bool
) -> list[tuple[str, float, int]]:
    """Each partner's median hours from offer to acceptance, over the accepted offers of the
    referrals ``made`` selects: by PostgreSQL itself; on SQLite, whose dates are text, from
    each acceptance's times."""
    name = func.coalesce(func.nullif(partners.c.name, ""), unnamed).label("name")
    accepted = (
        select(name)
        .select_from(offers)
        .join(referrals, referrals.c.id == offers.c.referral_id)
        .join(partners, partners.c.id == offers.c.partner_id, isouter=True)
        .where(
            *made, offers.c.status == "accepted", offers.c.offered_at.is_not(None), offers.c.responded_at.is_not(None)
        )
    )
    if postgres:
        gap = extract("epoch", offers.c.responded_at - offers.c.offered_at).cast(Float) / 3600
        rows = await session.execute(
            accepted.add_columns(func.percentile_cont(0.5).within_group(gap), func.count()).group_by(name)
        )
        return [(partner, float(median), count) for partner, median, count in rows]
    gaps: dict[str, list[float]] = {}
    for partner, offered_at, responded_at in await session.execute(
        accepted.add_columns(offers.c.offered_at, offers.c.responded_at)
    ):
        gaps.setdefault(partner, []).append((aware(responded_at) - aware(offered_at)).total_seconds() / 3600)
    return [(partner, statistics.median(hours), len(hours)) for partner, hours in gaps.items()]


def _month(moment: ColumnElement[datetime], *, since: datetime, until: datetime) -> ColumnElement[str]:
    """``moment``'s month ("YYYY-MM", UTC) among those [since, until) spans, the same way on
    every database: compared with each month's first instant rather than formatted by one."""
    first = since.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = [first]
    while (last := starts[-1]) < until:
        starts.append(last.replace(year=last.year + last.month // 12, month=last.month % 12 + 1))
    return case(
        *((moment < start, literal(f"{previous:%Y-%m}")) for previous, start in pairwise(starts)),
        else_=literal(f"{starts[-1]:%Y-%m}"),
    )
