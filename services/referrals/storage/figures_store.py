"""The dashboard's figures, read from the counters :mod:`figure_counters` keeps up to date in
the very transactions that change a referral, so that reading them costs the same whatever the
history's size: the rows and their SQL, in the caller's session. What a referral counts as, and
on which day, is defined there."""

from __future__ import annotations

import statistics
from datetime import date

import msgspec
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.storage.figure_counters import COUNTS, EVERYONE, STAGES
from services.referrals.storage.tables import accept_times, daily_figures, partners


class Figures(msgspec.Struct, kw_only=True, frozen=True):
    """What the dashboard counts, for the referrals created in a period of clinic days."""

    # (stage, referrals): sent, accepted, booked, completed.
    funnel: list[tuple[str, int]]
    # (month "YYYY-MM", category of the first offer's partner or None, referrals).
    by_month: list[tuple[str, str | None, int]]
    # (partner name, median hours from offer to acceptance, acceptances).
    accept_times: list[tuple[str, float, int]]


async def figures(
    session: AsyncSession, *, first_day: date, last_day: date, created_by: str | None, unnamed: str
) -> Figures:
    """The funnel, the referrals by month and first offer's category, and each partner's median
    time to accept, of the referrals created on the clinic days ``first_day`` to ``last_day``
    (only ``created_by``'s when given; ``unnamed``: the name of a partner the replica does not
    hold, or holds without a name)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # A median over a year's acceptances passes the JIT threshold; compiling the plan would
        # take longer than running it.
        await session.execute(text("SET LOCAL jit = off"))
    made = [
        daily_figures.c.day >= first_day,
        daily_figures.c.day <= last_day,
        daily_figures.c.created_by == (EVERYONE if created_by is None else created_by),
    ]
    # Counted by clinic month ("YYYY-MM" of the clinic's day) by the database: a few rows
    # whatever the period's length. The format is inlined, so that GROUP BY 1 is the same
    # expression as the one selected.
    month = (
        func.to_char(daily_figures.c.day, literal_column("'YYYY-MM'"))
        if postgres
        else func.strftime(literal_column("'%Y-%m'"), daily_figures.c.day)
    )
    rows = (
        await session.execute(
            select(month, daily_figures.c.category, *(func.sum(daily_figures.c[c]) for c in COUNTS))
            .where(*made)
            .group_by(text("1"), daily_figures.c.category)
        )
    ).all()
    funnel = [(stage, int(sum(row[3 + i] for row in rows))) for i, stage in enumerate(STAGES)]
    by_month = [(when, category or None, int(count)) for when, category, count, *_ in rows if count]
    accepted = await _accept_times(
        session, first_day=first_day, last_day=last_day, created_by=created_by, unnamed=unnamed, postgres=postgres
    )
    return Figures(funnel=funnel, by_month=by_month, accept_times=accepted)


# Each partner's median on PostgreSQL, one partner at a time: its acceptances of the period
# read in order from the index (created_by or not, partner_id, day, hours) and sorted alone,
# rather than all of them gathered and sorted by partner. The partners are found in the same
# index a step at a time (each the first one after the one before: a loose index scan).
_MEDIANS = """
WITH RECURSIVE partner_ids(id) AS (
    (SELECT a.partner_id FROM accept_times AS a WHERE {who} ORDER BY a.partner_id LIMIT 1)
    UNION ALL
    SELECT (
        SELECT a.partner_id FROM accept_times AS a
        WHERE {who} AND a.partner_id > partner_ids.id ORDER BY a.partner_id LIMIT 1
    )
    FROM partner_ids WHERE partner_ids.id IS NOT NULL
)
SELECT partner_ids.id, median.hours, median.acceptances
FROM partner_ids CROSS JOIN LATERAL (
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a.hours) AS hours, count(*) AS acceptances
    FROM accept_times AS a
    WHERE {who} AND a.partner_id = partner_ids.id AND a.day >= :first_day AND a.day <= :last_day
) AS median
WHERE partner_ids.id IS NOT NULL AND median.acceptances > 0
"""


async def _accept_times(
    session: AsyncSession, *, first_day: date, last_day: date, created_by: str | None, unnamed: str, postgres: bool
) -> list[tuple[str, float, int]]:
    """Each partner's median hours from offer to acceptance over the period's acceptances, by
    partner name (partners the replica does not hold, or holds without a name, are ``unnamed``)."""
    made = [accept_times.c.day >= first_day, accept_times.c.day <= last_day]
    if created_by is not None:
        made.append(accept_times.c.created_by == created_by)
    name = func.coalesce(func.nullif(partners.c.name, ""), unnamed).label("name")
    if not postgres:
        # SQLite has no median: from each acceptance's hours.
        hours: dict[str, list[float]] = {}
        query = (
            select(name, accept_times.c.hours)
            .select_from(accept_times)
            .join(partners, partners.c.id == accept_times.c.partner_id, isouter=True)
            .where(*made)
        )
        for partner, each in await session.execute(query):
            hours.setdefault(partner, []).append(each)
        return [(partner, statistics.median(each), len(each)) for partner, each in hours.items()]
    who = "a.created_by = :created_by" if created_by is not None else "TRUE"
    medians = (
        await session.execute(
            text(_MEDIANS.format(who=who)),
            {"created_by": created_by, "first_day": first_day, "last_day": last_day},
        )
    ).all()
    names = dict(
        (await session.execute(select(partners.c.id, name).where(partners.c.id.in_([m[0] for m in medians])))).all()
    )
    by_name: dict[str, list[tuple[str, float, int]]] = {}
    for partner_id, hours_median, count in medians:
        by_name.setdefault(names.get(partner_id, unnamed), []).append((partner_id, float(hours_median), count))
    found = [(partner, *groups[0][1:]) for partner, groups in by_name.items() if len(groups) == 1]
    shared = [partner_id for groups in by_name.values() if len(groups) > 1 for partner_id, *_ in groups]
    if shared:
        # Partners sharing a name (those the replica does not hold, say) share one median.
        rows = await session.execute(
            select(name, func.percentile_cont(0.5).within_group(accept_times.c.hours), func.count())
            .select_from(accept_times)
            .join(partners, partners.c.id == accept_times.c.partner_id, isouter=True)
            .where(*made, accept_times.c.partner_id.in_(shared))
            .group_by(name)
        )
        found += [(partner, float(hours_median), count) for partner, hours_median, count in rows]
    return found
