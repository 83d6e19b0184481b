"""Referrals, their timelines, the audit log, staff addresses and Idempotency-Keys: the rows and
their SQL, in the caller's session (and so in the caller's transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    RowMapping,
    Select,
    bindparam,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.domain import CLOSED_STATUSES, URGENCY_ORDER
from services.referrals.records import TimelineEntry
from services.referrals.storage import figure_counters
from services.referrals.storage.client_store import StoredClient
from services.referrals.storage.tables import (
    audit_log,
    aware,
    clients,
    email_deliveries,
    idempotency_keys,
    offers,
    outcomes,
    referral_events,
    referrals,
    staff_users,
    updated_one,
)


class StoredReferral(msgspec.Struct, kw_only=True, frozen=True):
    """One row of ``referrals``, timestamps in UTC, with what its client record says now
    (``client``: name, contact, language, postal code; read, never written, through here)."""

    id: str
    reference: str
    status: str
    urgency: str
    reasons: list[str]
    note: str
    client_id: str
    consent: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime
    next_step: str = "partner_contacts_client"
    client: dict[str, Any] = {}
    # Shared by the referrals sent together with this one; None when it was sent alone.
    batch_id: str | None = None


class StoredAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """What an Idempotency-Key was used with, and the answer given to it."""

    body_hash: str
    response: Any


# The client's fields a referral is read with: who it is for, how to reach them, where they live.
_CLIENT_FIELDS = (
    "name",
    "date_of_birth",
    "phone",
    "email",
    "preferred_contact",
    "language",
    "postal_code",
    "email_consent",
)


def _with_client() -> Select:
    return select(referrals, *(clients.c[name].label(f"client_{name}") for name in _CLIENT_FIELDS)).join(
        clients, clients.c.id == referrals.c.client_id
    )


def _referral(row: RowMapping) -> StoredReferral:
    return StoredReferral(
        id=row["id"],
        reference=row["reference"],
        status=row["status"],
        urgency=row["urgency"],
        reasons=list(row["reasons"]),
        note=row["note"],
        client_id=row["client_id"],
        next_step=row["next_step"],
        client={"id": row["client_id"], **{name: row[f"client_{name}"] for name in _CLIENT_FIELDS}},
        consent=dict(row["consent"]),
        created_by=row["created_by"],
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
        batch_id=row["batch_id"],
    )


def with_client(referral: StoredReferral, client: StoredClient) -> StoredReferral:
    """``referral`` with ``client``'s fields as a read through here gives them (see
    :func:`_referral`), for a referral whose client record the caller holds already."""
    fields = {name: getattr(client, name) for name in _CLIENT_FIELDS}
    return msgspec.structs.replace(referral, client={"id": client.id, **fields})


# The statements every referral's create runs, built once: building one (and its cache key) per
# call cost more of the event loop's time than SQLite takes to run it (tests/bench).
_INSERT_REFERRAL = insert(referrals)
_ADD_EVENT = insert(referral_events)
_TIMELINE = (
    select(referral_events)
    .where(referral_events.c.referral_id == bindparam("referral_id"))
    .order_by(referral_events.c.id)
)


async def insert_referral(session: AsyncSession, referral: StoredReferral) -> None:
    values = msgspec.structs.asdict(referral)
    del values["client"]  # the client's record is its own row (services.referrals.storage.client_store)
    figure_counters.touch(session, referral_ids=[referral.id])
    await session.execute(_INSERT_REFERRAL, values)


async def get(session: AsyncSession, referral_id: str) -> StoredReferral | None:
    row = (await session.execute(_with_client().where(referrals.c.id == referral_id))).mappings().first()
    return None if row is None else _referral(row)


async def load(session: AsyncSession, referral_id: str) -> StoredReferral:
    """The referral, which must exist (``NoResultFound`` otherwise)."""
    return _referral((await session.execute(_with_client().where(referrals.c.id == referral_id))).mappings().one())


async def lock(session: AsyncSession, referral_id: str) -> None:
    """Hold the referral's row until the transaction ends (PostgreSQL ``SELECT ... FOR UPDATE``;
    on SQLite every writing transaction holds the whole database already, see
    shared.database). Whatever changes a referral's offers takes this first, so two partners
    answering at once queue here, in one order, instead of each locking an offer and waiting for
    the other's (a deadlock)."""
    await session.execute(select(referrals.c.id).where(referrals.c.id == referral_id).with_for_update())


async def sent_with(session: AsyncSession, referral: StoredReferral) -> list[StoredReferral]:
    """The referrals sent together with ``referral`` (not itself), most urgent first."""
    if referral.batch_id is None:
        return []
    rows = await session.execute(
        _with_client().where(referrals.c.batch_id == referral.batch_id, referrals.c.id != referral.id)
    )
    return sorted((_referral(row) for row in rows.mappings()), key=lambda r: URGENCY_ORDER.index(r.urgency))


async def set_status(session: AsyncSession, referral_id: str, *, expected: str, status: str, at: datetime) -> bool:
    """Move the referral from ``expected`` to ``status``; False when it is no longer ``expected``."""
    statement = (
        update(referrals)
        .where(referrals.c.id == referral_id, referrals.c.status == expected)
        .values(status=status, updated_at=at)
    )
    figure_counters.touch(session, referral_ids=[referral_id])
    return await updated_one(session, statement)


async def with_offer_to(session: AsyncSession, partner_id: str) -> list[StoredReferral]:
    """The referrals waiting for ``partner_id``'s answer to their offer."""
    rows = await session.execute(
        _with_client()
        .join(offers, offers.c.referral_id == referrals.c.id)
        .where(offers.c.partner_id == partner_id, offers.c.status == "offered")
    )
    return [_referral(row) for row in rows.mappings()]


async def listing(
    session: AsyncSession,
    *,
    created_by: str | None,
    status: str | None,
    since: datetime | None,
    partner_id: str | None,
    needs_attention: bool | None,
    limit: int | None,
    client_id: str | None = None,
) -> list[StoredReferral]:
    """Referrals newest first, narrowed by whichever filters are given (``created_by``: only that
    staff member's; ``client_id``: only that client's; ``needs_attention``: see
    :func:`_needs_attention`)."""
    query = _with_client().order_by(referrals.c.created_at.desc())
    if limit is not None:
        query = query.limit(limit)
    if needs_attention is not None:
        attention = _needs_attention()
        query = query.where(attention if needs_attention else ~attention)
    if created_by is not None:
        query = query.where(referrals.c.created_by == created_by)
    if client_id is not None:
        query = query.where(referrals.c.client_id == client_id)
    if status:
        query = query.where(referrals.c.status == status)
    if since:
        query = query.where(referrals.c.created_at >= since)
    if partner_id:
        query = query.where(referrals.c.id.in_(select(offers.c.referral_id).where(offers.c.partner_id == partner_id)))
    return [_referral(row) for row in (await session.execute(query)).mappings()]


async def changed(
    session: AsyncSession,
    *,
    created_by: str | None,
    bounds: list[tuple[str, datetime]],
    client_id: str | None = None,
    referral_id: str | None = None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> tuple[list[StoredReferral], int]:
    """Referrals last changed within ``bounds`` (``(">=", moment)`` and the like, all of them),
    oldest change first, from just ``after`` a page's last (updated_at, id); with how many match
    in all. ``created_by``: only that staff member's."""
    compare = {
        ">=": referrals.c.updated_at.__ge__,
        ">": referrals.c.updated_at.__gt__,
        "<=": referrals.c.updated_at.__le__,
        "<": referrals.c.updated_at.__lt__,
    }
    conditions: list[ColumnElement[bool]] = [compare[op](moment) for op, moment in bounds]
    if created_by is not None:
        conditions.append(referrals.c.created_by == created_by)
    if client_id is not None:
        conditions.append(referrals.c.client_id == client_id)
    if referral_id is not None:
        conditions.append(referrals.c.id == referral_id)
    total = (await session.execute(select(func.count()).select_from(referrals).where(*conditions))).scalar_one()
    query = _with_client().where(*conditions).order_by(referrals.c.updated_at, referrals.c.id).limit(limit)
    if after is not None:
        moment, last_id = after
        query = query.where(
            (referrals.c.updated_at > moment) | ((referrals.c.updated_at == moment) & (referrals.c.id > last_id))
        )
    return [_referral(row) for row in (await session.execute(query)).mappings()], total


def _needs_attention() -> ColumnElement[bool]:
    """Referrals a therapist must act on: an open one whose email failed for good (the partner or
    therapist never heard of it), one that failed (no partner accepted in time) or was declined,
    one still looking for a partner after a decline or an expiry, one whose offer is unanswered
    past half its deadline (the sweep has reminded the partner), or a no-show put on hold."""
    # Each test looks up the referral's own rows (EXISTS, by the referral's id): an IN over
    # every declined offer, or every no-show, of the whole history grows with it.
    looking = referrals.c.status.in_(("requested", "received"))
    mine = offers.c.referral_id == referrals.c.id
    passed_over = exists().where(mine, offers.c.status.in_(("declined", "expired")))
    overdue = exists().where(mine, offers.c.status == "offered", offers.c.reminded_at.is_not(None))
    failed_email = exists().where(
        email_deliveries.c.referral_id == referrals.c.id, email_deliveries.c.outcome == "failed"
    )
    no_show = exists().where(outcomes.c.referral_id == referrals.c.id, outcomes.c.outcome == "no_show")
    return (
        (referrals.c.status.in_(("failed", "rejected")))
        | (failed_email & referrals.c.status.not_in(sorted(CLOSED_STATUSES)))
        | ((referrals.c.status == "on-hold") & no_show)
        | (looking & (passed_over | overdue))
    )


# ------------------------------------------------------------------ the timeline and the audit log


async def add_event(
    session: AsyncSession,
    referral_id: str,
    *,
    at: datetime,
    actor: str,
    from_status: str | None,
    to_status: str,
    why: str,
) -> int:
    """Add a line to the referral's timeline: its id."""
    added = await session.execute(
        _ADD_EVENT,
        {
            "referral_id": referral_id,
            "at": at,
            "actor": actor,
            "from_status": from_status,
            "to_status": to_status,
            "why": why,
        },
    )
    key = cast(CursorResult, added).inserted_primary_key
    assert key is not None  # an INSERT of one row
    return int(key[0])


async def timeline(session: AsyncSession, referral_id: str) -> list[TimelineEntry]:
    rows = await session.execute(_TIMELINE, {"referral_id": referral_id})
    return [
        TimelineEntry(
            id=e.id, at=aware(e.at), actor=e.actor, from_status=e.from_status, to_status=e.to_status, why=e.why
        )
        for e in rows
    ]


async def add_audit(
    session: AsyncSession, *, at: datetime, actor: str, action: str, referral_id: str | None, detail: dict[str, Any]
) -> None:
    await session.execute(
        insert(audit_log).values(at=at, actor=actor, action=action, referral_id=referral_id, detail=detail)
    )


class AuditEntry(msgspec.Struct, kw_only=True, frozen=True):
    at: datetime
    actor: str
    detail: dict[str, Any]


async def audit_entries(session: AsyncSession, *, action: str, limit: int) -> list[AuditEntry]:
    """The audit log's newest ``limit`` entries of ``action``, newest first."""
    rows = await session.execute(
        select(audit_log.c.at, audit_log.c.actor, audit_log.c.detail)
        .where(audit_log.c.action == action)
        .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        .limit(limit)
    )
    return [AuditEntry(at=aware(row.at), actor=row.actor, detail=dict(row.detail)) for row in rows]


async def audit_count(session: AsyncSession, *, action: str, since: datetime, until: datetime) -> int:
    """How many entries of ``action`` the audit log has in [since, until)."""
    counted = select(func.count()).where(audit_log.c.action == action, audit_log.c.at >= since, audit_log.c.at < until)
    return (await session.execute(counted)).scalar_one()


async def staff_email(session: AsyncSession, staff_id: str) -> str | None:
    return (await session.execute(select(staff_users.c.email).where(staff_users.c.id == staff_id))).scalar()


# ------------------------------------------------------------------ Idempotency-Keys


async def stored_answer(session: AsyncSession, *, staff_id: str, key: str) -> StoredAnswer | None:
    row = (
        await session.execute(
            select(idempotency_keys.c.body_hash, idempotency_keys.c.response).where(
                idempotency_keys.c.staff_id == staff_id, idempotency_keys.c.key == key
            )
        )
    ).first()
    return None if row is None else StoredAnswer(body_hash=row.body_hash, response=row.response)


async def store_answer(
    session: AsyncSession, *, staff_id: str, key: str, body_hash: str, response: Any, at: datetime
) -> None:
    await session.execute(
        insert(idempotency_keys).values(
            staff_id=staff_id, key=key, body_hash=body_hash, response=response, status_code=201, created_at=at
        )
    )
