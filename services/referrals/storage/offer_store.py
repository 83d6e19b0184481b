"""Offers: a referral's queue of partners, offered one at a time (several at once when urgent,
see services.referrals.offering). The rows and their SQL, in the
caller's session. Every change that must happen once (a reminder, an expiry, an answer, a report
link used) is a conditional UPDATE that says whether it claimed the offer."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date, datetime

import msgspec
from sqlalchemy import RowMapping, Select, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.storage import figure_counters
from services.referrals.storage.tables import aware, offers, partners, referrals, updated_one


class StoredOffer(msgspec.Struct, kw_only=True, frozen=True):
    """One row of ``offers``, timestamps in UTC, with its partner's name and address from the
    replica ("" when the replica does not know the partner)."""

    id: str
    referral_id: str
    partner_id: str
    position: int
    status: str
    offered_at: datetime | None = None
    expires_at: datetime | None = None
    responded_at: datetime | None = None
    decline_reason: str | None = None
    decline_note: str | None = None
    reminded_at: datetime | None = None
    report_nonce: str | None = None
    # The nonce of the answer link of the offering now open (see tables.offers).
    offer_nonce: str | None = None
    acknowledged_at: datetime | None = None
    partner_name: str = ""
    partner_email: str = ""
    # E.164, "" when the partner gave none: staff call partners of an urgent referral.
    partner_phone: str = ""


class DueOffer(msgspec.Struct, kw_only=True, frozen=True):
    """An offer waiting for its partner's answer, with its deadline."""

    id: str
    referral_id: str
    offered_at: datetime
    expires_at: datetime
    reminded_at: datetime | None


def _with_partner() -> Select:
    return select(
        offers,
        partners.c.name.label("partner_name"),
        partners.c.email.label("partner_email"),
        partners.c.snapshot["phone"].as_string().label("partner_phone"),
    ).join(partners, partners.c.id == offers.c.partner_id, isouter=True)


# Built once, as the create's other statements are (see referral_store).
_OF_REFERRALS = (
    _with_partner()
    .where(offers.c.referral_id.in_(bindparam("referral_ids", expanding=True)))
    .order_by(offers.c.position)
)


def _offer(row: RowMapping) -> StoredOffer:
    def moment(name: str) -> datetime | None:
        return row[name] and aware(row[name])

    return StoredOffer(
        id=row["id"],
        referral_id=row["referral_id"],
        partner_id=row["partner_id"],
        position=row["position"],
        status=row["status"],
        offered_at=moment("offered_at"),
        expires_at=moment("expires_at"),
        responded_at=moment("responded_at"),
        decline_reason=row["decline_reason"],
        decline_note=row["decline_note"],
        reminded_at=moment("reminded_at"),
        report_nonce=row["report_nonce"],
        offer_nonce=row["offer_nonce"],
        acknowledged_at=moment("acknowledged_at"),
        partner_name=row["partner_name"] or "",
        partner_email=row["partner_email"] or "",
        partner_phone=row["partner_phone"] or "",
    )


async def get(session: AsyncSession, offer_id: str) -> StoredOffer | None:
    row = (await session.execute(_with_partner().where(offers.c.id == offer_id))).mappings().first()
    return None if row is None else _offer(row)


async def load(session: AsyncSession, offer_id: str) -> StoredOffer:
    """The offer, which must exist (``NoResultFound`` otherwise)."""
    return _offer((await session.execute(_with_partner().where(offers.c.id == offer_id))).mappings().one())


async def of_referrals(
    session: AsyncSession, referral_ids: list[str], *, statuses: Collection[str] | None = None
) -> list[StoredOffer]:
    """The referrals' offers (only those in ``statuses`` when given), in queue order."""
    if not referral_ids:
        return []
    query = _OF_REFERRALS
    if statuses is not None:
        query = query.where(offers.c.status.in_(statuses))
    return [_offer(row) for row in (await session.execute(query, {"referral_ids": referral_ids})).mappings()]


async def next_queued(session: AsyncSession, referral_id: str, *, today: date) -> StoredOffer | None:
    """The referral's next queued offer to a partner still active and licensed ``today`` (the
    clinic's), or None. A licence may have run out while the offer waited in the queue."""
    licence = partners.c.snapshot["licence_expires_on"].as_string()
    query = (
        _with_partner()
        .where(
            offers.c.referral_id == referral_id,
            offers.c.status == "queued",
            partners.c.status == "active",
            # ISO dates compare as text; a partner without a licence date is not refused here.
            or_(licence.is_(None), licence >= today.isoformat()),
        )
        .order_by(offers.c.position)
        .limit(1)
    )
    row = (await session.execute(query)).mappings().first()
    return None if row is None else _offer(row)


async def count_offered(session: AsyncSession, referral_id: str) -> int:
    """How many of the referral's offers wait for their partner's answer now."""
    query = select(func.count()).where(offers.c.referral_id == referral_id, offers.c.status == "offered")
    return (await session.execute(query)).scalar_one()


async def taken_by_other(session: AsyncSession, referral_id: str, offer_id: str) -> bool:
    """Whether another partner's offer of the referral was accepted."""
    query = select(offers.c.id).where(
        offers.c.referral_id == referral_id, offers.c.status == "accepted", offers.c.id != offer_id
    )
    return (await session.execute(query.limit(1))).first() is not None


async def due(session: AsyncSession) -> list[DueOffer]:
    """Every offer of a referral still looking for a partner that waits for an answer, soonest
    deadline first."""
    rows = await session.execute(
        select(offers.c.id, offers.c.referral_id, offers.c.offered_at, offers.c.expires_at, offers.c.reminded_at)
        .join(referrals, referrals.c.id == offers.c.referral_id)
        .where(
            offers.c.status == "offered",
            offers.c.expires_at.is_not(None),
            referrals.c.status.in_(("requested", "received")),
        )
        .order_by(offers.c.expires_at)
    )
    return [
        DueOffer(
            id=row.id,
            referral_id=row.referral_id,
            offered_at=aware(row.offered_at),
            expires_at=aware(row.expires_at),
            reminded_at=row.reminded_at and aware(row.reminded_at),
        )
        for row in rows
    ]


async def answers_by_partner(
    session: AsyncSession, partner_ids: list[str]
) -> dict[str, list[tuple[str, datetime | None, datetime | None]]]:
    """Each partner's closed offers as ``(status, offered_at, responded_at)``."""
    rows = await session.execute(
        select(offers.c.partner_id, offers.c.status, offers.c.offered_at, offers.c.responded_at).where(
            offers.c.partner_id.in_(partner_ids), offers.c.status.in_(("accepted", "declined", "expired"))
        )
    )
    by_partner: dict[str, list[tuple[str, datetime | None, datetime | None]]] = {}
    for row in rows:
        offered = row.offered_at and aware(row.offered_at)
        responded = row.responded_at and aware(row.responded_at)
        by_partner.setdefault(row.partner_id, []).append((row.status, offered, responded))
    return by_partner


# ------------------------------------------------------------------ the queue


async def insert_new(session: AsyncSession, new: list[StoredOffer]) -> None:
    """Store a new referral's offers, each as given (queued, or offered with its clock and nonce)."""
    figure_counters.touch(session, referral_ids={o.referral_id for o in new})
    await session.execute(
        insert(offers),
        [
            {
                "id": o.id,
                "referral_id": o.referral_id,
                "partner_id": o.partner_id,
                "position": o.position,
                "status": o.status,
                "offered_at": o.offered_at,
                "expires_at": o.expires_at,
                "offer_nonce": o.offer_nonce,
            }
            for o in new
        ],
    )


async def append(session: AsyncSession, referral_id: str, partner_id: str) -> None:
    """Queue an offer to ``partner_id`` after the referral's last one."""
    last = (
        await session.execute(
            select(offers.c.position)
            .where(offers.c.referral_id == referral_id)
            .order_by(offers.c.position.desc())
            .limit(1)
        )
    ).first()
    figure_counters.touch(session, referral_ids=[referral_id])
    await session.execute(
        insert(offers).values(
            id=str(uuid.uuid4()),
            referral_id=referral_id,
            partner_id=partner_id,
            position=(last.position + 1) if last else 0,
            status="queued",
        )
    )


async def mark_offered(session: AsyncSession, offer_id: str, *, at: datetime, expires_at: datetime, nonce: str) -> None:
    """Make the offer, its clock started and ``nonce`` the one its answer link must carry."""
    await session.execute(
        update(offers)
        .where(offers.c.id == offer_id)
        .values(status="offered", offered_at=at, expires_at=expires_at, offer_nonce=nonce)
    )


async def requeue(session: AsyncSession, offer_id: str) -> None:
    """Put an offer still waiting for its answer back in the queue, its clock cleared and its
    link void (the next offering gets a new nonce)."""
    await session.execute(
        update(offers)
        .where(offers.c.id == offer_id, offers.c.status == "offered")
        .values(
            status="queued", offered_at=None, expires_at=None, reminded_at=None, offer_nonce=None, acknowledged_at=None
        )
    )


async def withdraw_unanswered(session: AsyncSession, referral_id: str, *, at: datetime) -> None:
    """Withdraw the referral's offers still waiting for an answer or queued."""
    await session.execute(
        update(offers)
        .where(offers.c.referral_id == referral_id, offers.c.status.in_(("offered", "queued")))
        .values(status="withdrawn", responded_at=at)
    )


async def withdraw(session: AsyncSession, offer_id: str, *, at: datetime) -> bool:
    """Withdraw one offer still waiting for its partner's answer; False when it was not."""
    return await updated_one(
        session,
        update(offers)
        .where(offers.c.id == offer_id, offers.c.status == "offered")
        .values(status="withdrawn", responded_at=at),
    )


async def withdraw_accepted(session: AsyncSession, referral_id: str) -> None:
    figure_counters.touch(session, referral_ids=[referral_id])
    await session.execute(
        update(offers)
        .where(offers.c.referral_id == referral_id, offers.c.status == "accepted")
        .values(status="withdrawn", report_nonce=None)
    )


async def withdraw_offered_to(session: AsyncSession, referral_id: str, partner_id: str, *, at: datetime) -> None:
    await session.execute(
        update(offers)
        .where(offers.c.referral_id == referral_id, offers.c.partner_id == partner_id, offers.c.status == "offered")
        .values(status="withdrawn", responded_at=at)
    )


# ------------------------------------------------------------------ claims (see tables.updated_one)


async def claim_reminder(session: AsyncSession, offer_id: str, *, now: datetime) -> bool:
    """Mark the offer reminded, unless it was answered, expired or reminded meanwhile."""
    return await updated_one(
        session,
        update(offers)
        .where(
            offers.c.id == offer_id,
            offers.c.status == "offered",
            offers.c.reminded_at.is_(None),
            offers.c.expires_at > now,
        )
        .values(reminded_at=now),
    )


async def claim_expiry(session: AsyncSession, offer_id: str, *, now: datetime) -> bool:
    """Expire the offer if its deadline has passed, unless it was answered or expired meanwhile.
    Its answer is dated at the deadline, not now: the same record whenever the sweep runs."""
    return await updated_one(
        session,
        update(offers)
        .where(offers.c.id == offer_id, offers.c.status == "offered", offers.c.expires_at <= now)
        .values(status="expired", responded_at=offers.c.expires_at),
    )


async def claim_answer(
    session: AsyncSession,
    offer_id: str,
    *,
    status: str,
    at: datetime,
    reason: str | None,
    note: str | None,
    open_statuses: Collection[str] = ("offered",),
) -> bool:
    """Record the partner's answer, unless the offer was answered (or closed) meanwhile. Staff
    recording an answer given by phone may also answer an offer still ``queued``."""
    figure_counters.touch(session, offer_ids=[offer_id])
    return await updated_one(
        session,
        update(offers)
        .where(offers.c.id == offer_id, offers.c.status.in_(open_statuses))
        .values(status=status, responded_at=at, decline_reason=reason, decline_note=note),
    )


async def claim_acknowledgement(session: AsyncSession, offer_id: str, *, at: datetime) -> bool:
    """Note that the partner has seen the offer, unless they said so already (or it closed)."""
    return await updated_one(
        session,
        update(offers)
        .where(offers.c.id == offer_id, offers.c.status == "offered", offers.c.acknowledged_at.is_(None))
        .values(acknowledged_at=at),
    )


async def set_report_nonce(session: AsyncSession, offer_id: str, nonce: str) -> None:
    await session.execute(update(offers).where(offers.c.id == offer_id).values(report_nonce=nonce))


async def claim_report_nonce(session: AsyncSession, offer_id: str, nonce: str) -> bool:
    """Use up the offer's outcome-report link, unless it was used (or replaced) meanwhile."""
    return await updated_one(
        session,
        update(offers).where(offers.c.id == offer_id, offers.c.report_nonce == nonce).values(report_nonce=None),
    )


async def made_to(session: AsyncSession, partner_ids: list[str], *, since: datetime) -> list[StoredOffer]:
    """The partners' offers that were made (not merely queued): every one still waiting for an
    answer or accepted, and the others offered or answered since ``since``; newest first."""
    if not partner_ids:
        return []
    query = (
        _with_partner()
        .where(
            offers.c.partner_id.in_(partner_ids),
            offers.c.offered_at.is_not(None),
            or_(
                offers.c.status.in_(("offered", "accepted")),
                offers.c.offered_at >= since,
                offers.c.responded_at >= since,
            ),
        )
        .order_by(offers.c.offered_at.desc())
    )
    return [_offer(row) for row in (await session.execute(query)).mappings()]
