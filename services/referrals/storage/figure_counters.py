"""The dashboard's figures kept as counters, up to date in the very transactions that change a
referral (read by :mod:`figures_store`): the rows and their SQL, in the caller's session.

What a referral counts as (its *stages*, bits of ``referral_figures.stages``):

- **sent** once its status is not ``draft``;
- **accepted** once a partner accepted it (an offer of it is accepted, whatever came next) or its
  status says so (accepted, in-progress, completed);
- **booked** once a booking or completion was reported or its status says so (in-progress,
  completed);
- **completed** when its status is ``completed``.

It is counted on the clinic's day it was created (``HANDOFF_CLINIC_TIMEZONE``), under its first
offer's partner's category ("" when none: no offer, or no partner the replica holds with one).
Each accepted offer (answered, with both times) gives the hours from offer to acceptance.

Keeping them: the store functions whose change can move any of that :func:`touch` the referral
(or the offer): a referral made or its status changed, offers added (the first one's category),
an offer answered or an acceptance withdrawn, a booking or completion reported, a partner's
category changed in the replica. Offers made, expired, withdrawn unanswered or queued again
change none of it. Before the transaction commits, :func:`refigure` recomputes those referrals'
figures from their rows and applies the difference to the counters (a session event, so no use
case can forget it). :func:`backfill` computes all of them from the rows at once (the migration that made the
counters, and databases filled by direct inserts, such as the benchmark's)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BindParameter,
    Connection,
    Date,
    Float,
    Insert,
    Select,
    bindparam,
    case,
    cast,
    delete,
    event,
    exists,
    extract,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from services.referrals.storage.tables import (
    accept_times,
    aware,
    daily_figures,
    offers,
    outcomes,
    partners,
    referral_figures,
    referrals,
)

STAGES = ("sent", "accepted", "booked", "completed")
COUNTS = ("referrals", *STAGES)
_ACCEPTED = 1 << STAGES.index("accepted")
# The day counters' creator of everyone's referrals (an admin's view: a few rows a day whatever
# the number of staff). A staff id is never empty.
EVERYONE = ""
# Where a session keeps the clinic's time zone (see count_days_in) and what its transaction
# touched.
ZONE = "handoff.clinic_timezone"
_TOUCHED_REFERRALS = "handoff.figures.referrals"
_TOUCHED_OFFERS = "handoff.figures.offers"
# Referrals refigured per statement: an IN list both databases take comfortably.
_CHUNK = 500


def count_days_in(sessions: async_sessionmaker[AsyncSession], *, zone: str) -> None:
    """Have the sessions ``sessions`` makes refigure in the clinic's time zone ``zone``."""
    ZoneInfo(zone)  # fails now, naming the zone, rather than at a commit
    sessions.configure(info={**(sessions.kw.get("info") or {}), ZONE: zone})


def touch(session: AsyncSession | Session, *, referral_ids: Iterable[str] = (), offer_ids: Iterable[str] = ()) -> None:
    """Say that this transaction changed these referrals (or these offers' referrals) in a way
    that may change their figures: they are refigured before it commits."""
    session.info.setdefault(_TOUCHED_REFERRALS, set()).update(referral_ids)
    session.info.setdefault(_TOUCHED_OFFERS, set()).update(offer_ids)


@event.listens_for(Session, "before_commit")
def _refigure_touched(session: Session) -> None:
    referral_ids = session.info.pop(_TOUCHED_REFERRALS, set())
    offer_ids = session.info.pop(_TOUCHED_OFFERS, set())
    if not referral_ids and not offer_ids:
        return
    zone = session.info.get(ZONE)
    if zone is None:
        raise RuntimeError(
            "a referral changed in a session without the clinic's time zone (see figure_counters.count_days_in)"
        )
    # Under asyncio this runs in the session's greenlet: the synchronous calls are adapted.
    refigure(session.connection(), referral_ids=referral_ids, offer_ids=offer_ids, zone=ZoneInfo(zone))


@event.listens_for(Session, "after_soft_rollback")
def _forget_touched(session: Session, _previous: object) -> None:
    session.info.pop(_TOUCHED_REFERRALS, None)
    session.info.pop(_TOUCHED_OFFERS, None)


def refigure(
    connection: Connection, *, referral_ids: Iterable[str] = (), offer_ids: Iterable[str] = (), zone: ZoneInfo
) -> None:
    """Recompute the figures of these referrals (and of these offers' referrals) from their rows,
    and apply the difference to the day counters."""
    ids = set(referral_ids)
    offer_ids = sorted(set(offer_ids))
    for chunk in _chunks(offer_ids):
        ids.update(connection.execute(_REFERRALS_OF_OFFERS, {"ids": chunk}).scalars())
    chunks = list(_chunks(sorted(ids)))
    if len(chunks) > 1 and connection.dialect.name == "postgresql":
        # Every referral's row locked before any day counter is (see _refigure), in one order.
        for chunk in chunks:
            connection.execute(_HELD_FOR_UPDATE, {"ids": chunk})
    for chunk in chunks:
        _refigure(connection, chunk, zone=zone)


def _refigure(connection: Connection, ids: list[str], *, zone: ZoneInfo) -> None:
    postgres = connection.dialect.name == "postgresql"
    # Lock what each referral counts as now: a concurrent transaction refiguring one of them
    # waits, then reads what this one wrote, so no difference is applied twice. (The day
    # counters' rows are locked after, in order: no two transactions wait on each other.)
    old = {row.referral_id: row for row in connection.execute(_HELD_FOR_UPDATE if postgres else _HELD, {"ids": ids})}
    deltas: dict[tuple[date, str, str], list[int]] = {}
    days: dict[str, tuple[date, str]] = {}
    changed: list[dict] = []
    added: list[dict] = []
    now_stages: dict[str, int] = {}
    for row in connection.execute(_EACH_OF, {"ids": ids}):
        day = aware(row.created_at).astimezone(zone).date()
        days[row.id] = (day, row.created_by)
        now_stages[row.id] = row.stages
        now = (day, row.created_by, row.category or "", row.stages)
        values = {"day": day, "created_by": row.created_by, "category": now[2], "stages": row.stages}
        was = old.get(row.id)
        if was is None:
            added.append({"referral_id": row.id, **values})
        elif (was.day, was.created_by, was.category, was.stages) != now:
            _count(deltas, (was.day, was.created_by, was.category), was.stages, -1)
            changed.append({"b_id": row.id, **{f"b_{k}": v for k, v in values.items()}})
        else:
            continue
        _count(deltas, now[:3], row.stages, +1)
    if added:
        connection.execute(_ADD_FIGURES, added)
    if changed:
        connection.execute(_CHANGE_FIGURES, changed)
    changes = [
        {"day": day, "created_by": by, "category": category, **dict(zip(COUNTS, counts, strict=True))}
        for (day, by, category), counts in sorted(deltas.items())
        if any(counts)
    ]
    if changes:
        connection.execute(_ADD_TO_DAYS[postgres], changes)
    # Acceptances only of referrals that count as accepted (before, for those to remove; now,
    # for those to add): a referral being issued needs neither statement.
    if any(row.stages & _ACCEPTED for row in old.values()):
        connection.execute(_FORGET_ACCEPTANCES, {"ids": ids})
    accepting = [referral_id for referral_id, reached in now_stages.items() if reached & _ACCEPTED]
    if not accepting:
        return
    accepted = [
        {
            "offer_id": row.id,
            "referral_id": row.referral_id,
            "day": days[row.referral_id][0],
            "created_by": days[row.referral_id][1],
            "partner_id": row.partner_id,
            "hours": (aware(row.responded_at) - aware(row.offered_at)).total_seconds() / 3600,
        }
        for row in connection.execute(_ACCEPTANCES, {"ids": accepting})
    ]
    if accepted:
        connection.execute(insert(accept_times), accepted)


def backfill(connection: Connection, *, zone: ZoneInfo | str) -> None:
    """Compute every referral's figures, the day counters and the acceptances' hours from the
    rows, replacing what the counters held: on PostgreSQL in a few statements (a million
    referrals in well under a minute), on SQLite as :func:`refigure` does, a chunk at a time."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    for table in (accept_times, daily_figures, referral_figures):
        connection.execute(delete(table))
    if connection.dialect.name != "postgresql":
        refigure(connection, referral_ids=connection.execute(select(referrals.c.id)).scalars().all(), zone=zone)
        return
    connection.execute(text("SET LOCAL jit = off"))
    each = _each().subquery()
    connection.execute(
        insert(referral_figures).from_select(
            ["referral_id", "day", "created_by", "category", "stages"],
            select(
                each.c.id,
                cast(func.timezone(zone.key, each.c.created_at), Date),
                each.c.created_by,
                func.coalesce(each.c.category, ""),
                each.c.stages,
            ),
        )
    )
    figured = referral_figures.c
    sums = [
        func.count(),
        *(func.sum(case((figured.stages.op("&")(1 << i) != 0, 1), else_=0)) for i in range(len(STAGES))),
    ]
    for query in (
        select(figured.day, figured.created_by, figured.category, *sums).group_by(
            figured.day, figured.created_by, figured.category
        ),
        select(figured.day, literal(EVERYONE), figured.category, *sums).group_by(figured.day, figured.category),
    ):
        connection.execute(insert(daily_figures).from_select(["day", "created_by", "category", *COUNTS], query))
    connection.execute(
        insert(accept_times).from_select(
            ["offer_id", "referral_id", "day", "created_by", "partner_id", "hours"],
            select(
                offers.c.id,
                offers.c.referral_id,
                referral_figures.c.day,
                referral_figures.c.created_by,
                offers.c.partner_id,
                extract("epoch", offers.c.responded_at - offers.c.offered_at).cast(Float) / 3600,
            )
            .join(referral_figures, referral_figures.c.referral_id == offers.c.referral_id)
            .where(*_answered_acceptance()),
        )
    )
    # The planner's statistics now, rather than when autovacuum gets to tables filled at once.
    connection.execute(text("ANALYZE referral_figures, daily_figures, accept_times"))


def _each() -> Select:
    """One row per referral: its id, creation, creator, first offer's partner's category (None
    when none) and stages (the bits of :data:`STAGES`), as the module's docstring defines them."""
    first_category = (
        select(partners.c.category)
        .join(offers, offers.c.partner_id == partners.c.id)
        .where(offers.c.referral_id == referrals.c.id, partners.c.category != "")
        .order_by(offers.c.position)
        .limit(1)
        .scalar_subquery()
    )
    accepted_offer = exists().where(offers.c.referral_id == referrals.c.id, offers.c.status == "accepted")
    booking = exists().where(outcomes.c.referral_id == referrals.c.id, outcomes.c.outcome.in_(("booked", "completed")))
    reached = (
        referrals.c.status != "draft",
        referrals.c.status.in_(("accepted", "in-progress", "completed")) | accepted_offer,
        referrals.c.status.in_(("in-progress", "completed")) | booking,
        referrals.c.status == "completed",
    )
    stages = functools.reduce(
        operator.add, (case((condition, literal(1 << i)), else_=literal(0)) for i, condition in enumerate(reached))
    )
    return select(
        referrals.c.id,
        referrals.c.created_at,
        referrals.c.created_by,
        first_category.label("category"),
        stages.label("stages"),
    )


def _answered_acceptance() -> tuple:
    return (offers.c.status == "accepted", offers.c.offered_at.is_not(None), offers.c.responded_at.is_not(None))


def _count(deltas: dict[tuple[date, str, str], list[int]], key: tuple[date, str, str], stages: int, sign: int) -> None:
    """Count a referral in (or, ``sign`` -1, out of) its creator's day and everyone's."""
    day, created_by, category = key
    for who in (created_by, EVERYONE):
        counts = deltas.setdefault((day, who, category), [0] * len(COUNTS))
        counts[0] += sign
        for i in range(len(STAGES)):
            if stages & (1 << i):
                counts[1 + i] += sign


def _upsert_days(postgres: bool) -> Insert:
    upsert = (postgresql.insert if postgres else sqlite.insert)(daily_figures)
    return upsert.on_conflict_do_update(
        index_elements=[daily_figures.c.day, daily_figures.c.created_by, daily_figures.c.category],
        set_={c: daily_figures.c[c] + upsert.excluded[c] for c in COUNTS},
    )


# The statements every commit that touched a referral runs (every create does), built once:
# building them at each call cost more of the event loop's time than running them.
_IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
_REFERRALS_OF_OFFERS = select(offers.c.referral_id).where(offers.c.id.in_(_IDS))
_HELD = (
    select(referral_figures).where(referral_figures.c.referral_id.in_(_IDS)).order_by(referral_figures.c.referral_id)
)
_HELD_FOR_UPDATE = _HELD.with_for_update()
_EACH_OF = _each().where(referrals.c.id.in_(_IDS))
_ADD_FIGURES = insert(referral_figures)
_CHANGE_FIGURES = (
    update(referral_figures)
    .where(referral_figures.c.referral_id == bindparam("b_id"))
    .values({k: bindparam(f"b_{k}") for k in ("day", "created_by", "category", "stages")})
)
_ADD_TO_DAYS = {postgres: _upsert_days(postgres) for postgres in (False, True)}
_FORGET_ACCEPTANCES = delete(accept_times).where(accept_times.c.referral_id.in_(_IDS))
_ACCEPTANCES = (
    select(offers.c.id, offers.c.referral_id, offers.c.partner_id, offers.c.offered_at, offers.c.responded_at)
    .where(offers.c.referral_id.in_(_IDS), *_answered_acceptance())
    .order_by(offers.c.id)
)


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
