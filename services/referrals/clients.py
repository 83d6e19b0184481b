"""Clients as records of their own: adding one, finding one (by name, date of birth or phone) for
a person to choose from, and one client's page (their referrals and current clearance). Every
view of a client's details, a search's results included, is audited.

A referral names its client by id, or brings the details of a new client, which always makes a
new record: nothing here decides that two records are the same person (see :func:`for_referral`)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import contact
from services.referrals.context import Context
from services.referrals.intake import Client, NewClient
from services.referrals.outcomes import CLEARANCES
from services.referrals.records import ClearanceRecord, ClientDetail, ClientRecord, ReferralSummary
from services.referrals.storage import client_store, outcome_store, referral_store
from services.referrals.storage.client_store import StoredClient
from services.referrals.storage.outcome_store import GivenClearance
from shared.auth import Staff
from shared.errors import InvalidInput, NotFound
from shared.text import has_control_character

SEARCH_LIMIT = 50
# The ways staff write a date of birth in the search box.
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y")


async def create(ctx: Context, *, staff: Staff, details: NewClient) -> ClientRecord:
    """Add a client record (always a new one, whatever its name)."""
    client = new_client(details, staff=staff, now=ctx.clock(), prefix="")
    async with ctx.sessions.begin() as session:
        await client_store.insert_client(session, client)
        await _audit(ctx, session, staff=staff, action="client_created", client_ids=[client.id])
    return record(client)


async def search(ctx: Context, *, staff: Staff, q: str) -> list[ClientRecord]:
    """Clients by name (every word, anywhere in the name), date of birth (``1961-03-14`` or
    ``03/14/1961``) or phone (any part of the number, however it is written)."""
    q = " ".join(q.split())
    if len(q) < 2:
        raise InvalidInput("type at least 2 characters of a name, a date of birth or a phone number", field="q")
    if len(q) > 100 or has_control_character(q):
        raise InvalidInput("search for a name, a date of birth or a phone number", field="q")
    born = _as_date(q)
    digits = contact.phone_digits(q)
    async with ctx.sessions.begin() as session:
        if born is not None:
            found = await client_store.search(session, born=born, limit=SEARCH_LIMIT)
        elif not re.search(r"[^\W\d_]", q) and len(digits) >= 3:
            found = await client_store.search(session, phone_digits=digits, limit=SEARCH_LIMIT)
        else:
            found = await client_store.search(session, name_words=q.split(), limit=SEARCH_LIMIT)
        await _audit(ctx, session, staff=staff, action="clients_searched", client_ids=[c.id for c in found])
    return [record(c) for c in found]


async def get(ctx: Context, *, staff: Staff, client_id: str) -> ClientDetail:
    """One client with the referrals ``staff`` may see (a therapist their own, an admin every one)
    and the client's current clearance, whoever's referral it was given on. Audited."""
    async with ctx.sessions.begin() as session:
        client = await client_store.get(session, client_id)
        if client is None:
            raise NotFound(f"no client {client_id}", field="client.id")
        referrals = await referral_store.listing(
            session,
            created_by=None if staff.role == "admin" else staff.id,
            client_id=client.id,
            status=None,
            since=None,
            partner_id=None,
            needs_attention=None,
            limit=200,
        )
        given = await outcome_store.latest_clearance(session, client.id)
        await _audit(ctx, session, staff=staff, action="client_viewed", client_ids=[client.id])
    return ClientDetail(
        **{f: getattr(record(client), f) for f in ClientRecord.__struct_fields__},
        referrals=[
            ReferralSummary(
                id=r.id,
                reference=r.reference,
                status=r.status,
                urgency=r.urgency,
                reasons=list(r.reasons),
                created_at=r.created_at,
            )
            for r in referrals
        ],
        clearance=None if given is None else clearance(given),
    )


async def for_referral(
    ctx: Context, session: AsyncSession, *, staff: Staff, given: Client, next_step: str
) -> tuple[StoredClient, bool]:
    """The client a referral is for, and whether it is a new record (to be stored with the
    referral, in its transaction): the existing record ``given.id`` names (404 on ``client.id``
    when there is none), or a new record made from the details given. Either way, the partner
    must be able to reach them when the partner is to make the call."""
    client, new = await _resolve(ctx, session, staff=staff, given=given)
    contact.check_reachable(phone=client.phone, email=client.email, next_step=next_step)
    return client, new


async def preview(ctx: Context, *, staff: Staff, given: Client) -> ClientRecord:
    """The client a referral being written is for, checked as issuing will check it, stored
    nowhere (the new-referral form shows it between its steps). Viewing an existing one is audited."""
    async with ctx.sessions.begin() as session:
        client, new = await _resolve(ctx, session, staff=staff, given=given)
        if not new:
            await _audit(ctx, session, staff=staff, action="client_viewed", client_ids=[client.id])
    return record(client)


async def _resolve(ctx: Context, session: AsyncSession, *, staff: Staff, given: Client) -> tuple[StoredClient, bool]:
    if given.id is not None:
        if any(value not in (None, False) for name, value in _fields(given).items() if name != "id"):
            raise InvalidInput(
                "give either the id of an existing client or a new client's details, not both", field="client"
            )
        client = await client_store.get(session, given.id)
        if client is None:
            raise NotFound(f"no client {given.id}", field="client.id")
        return client, False
    if given.name is None:
        raise InvalidInput("give the client's name, or the id of an existing client", field="client.name")
    details = NewClient(
        name=given.name,
        date_of_birth=given.date_of_birth,
        email=given.email,
        phone=given.phone,
        preferred_contact=given.preferred_contact,
        language=given.language,
        postal_code=given.postal_code,
        email_consent=given.email_consent,
    )
    return new_client(details, staff=staff, now=ctx.clock(), prefix="client."), True


def new_client(details: NewClient, *, staff: Staff, now: datetime, prefix: str) -> StoredClient:
    """A new client record from ``details``, each checked, errors naming ``prefix + field``."""
    name = " ".join(details.name.split())
    if not name:
        raise InvalidInput("give the client's name", field=f"{prefix}name")
    contact.check_date_of_birth(details.date_of_birth, today=now.date(), field=f"{prefix}date_of_birth")
    phone = contact.normalised_phone(details.phone, field=f"{prefix}phone")
    email = contact.normalised_client_email(details.email, field=f"{prefix}email")
    if details.email_consent and not email:
        raise InvalidInput("the client agreed to be emailed but gave no email address", field=f"{prefix}email")
    postal_code = (details.postal_code or "").strip() or None
    return StoredClient(
        id=str(uuid.uuid4()),
        name=name,
        date_of_birth=details.date_of_birth,
        phone=phone,
        email=email,
        preferred_contact=contact.preferred_contact(
            details.preferred_contact, phone=phone, email=email, field=f"{prefix}preferred_contact"
        ),
        language=contact.language_code(details.language, field=f"{prefix}language"),
        postal_code=postal_code,
        email_consent=details.email_consent,
        created_by=staff.id,
        created_at=now,
    )


def record(client: StoredClient) -> ClientRecord:
    return ClientRecord(
        id=client.id,
        name=client.name,
        date_of_birth=client.date_of_birth,
        phone=client.phone,
        email=client.email,
        preferred_contact=client.preferred_contact,
        language=client.language,
        postal_code=client.postal_code,
        email_consent=client.email_consent,
        created_at=client.created_at,
    )


def clearance(given: GivenClearance, *, referral_id: str | None = None) -> ClearanceRecord:
    """A clearance as staff read it; ``referral_id``: the referral it is shown on."""
    return ClearanceRecord(
        clearance=given.clearance,
        label=CLEARANCES.get(given.clearance, given.clearance),
        reference=given.reference,
        reported_at=given.reported_at,
        areas_to_avoid=given.areas_to_avoid,
        pressure_limit=given.pressure_limit,
        note=given.note,
        from_earlier_referral=referral_id is not None and given.referral_id != referral_id,
    )


async def _audit(ctx: Context, session: AsyncSession, *, staff: Staff, action: str, client_ids: list[str]) -> None:
    await referral_store.add_audit(
        session, at=ctx.clock(), actor=staff.email, action=action, referral_id=None, detail={"client_ids": client_ids}
    )


def _fields(given: Client) -> dict[str, object]:
    return {name: getattr(given, name) for name in given.__struct_fields__}


def _as_date(text: str) -> date | None:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None
