"""Clients: the rows and their SQL, in the caller's session. Finding a client is a staff search
(by name, date of birth or phone) whose results a person chooses from; nothing here ever decides
that two records are the same person."""

from __future__ import annotations

from datetime import date, datetime

import msgspec
from sqlalchemy import RowMapping, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.storage.tables import aware, clients


class StoredClient(msgspec.Struct, kw_only=True, frozen=True):
    """One row of ``clients`` (``phone`` in E.164, timestamps in UTC)."""

    id: str
    name: str
    language: str
    email_consent: bool
    created_by: str
    created_at: datetime
    date_of_birth: date | None = None
    phone: str | None = None
    email: str | None = None
    preferred_contact: str | None = None
    postal_code: str | None = None


def _client(row: RowMapping) -> StoredClient:
    return StoredClient(
        id=row["id"],
        name=row["name"],
        language=row["language"],
        email_consent=bool(row["email_consent"]),
        created_by=row["created_by"],
        created_at=aware(row["created_at"]),
        date_of_birth=row["date_of_birth"],
        phone=row["phone"],
        email=row["email"],
        preferred_contact=row["preferred_contact"],
        postal_code=row["postal_code"],
    )


async def insert_client(session: AsyncSession, client: StoredClient) -> None:
    digits = "".join(ch for ch in client.phone or "" if ch.isdigit()) or None
    await session.execute(_INSERT_CLIENT, {**msgspec.structs.asdict(client), "phone_digits": digits})


# Built once, as the create's other statements are (see referral_store).
_INSERT_CLIENT = insert(clients)


async def get(session: AsyncSession, client_id: str) -> StoredClient | None:
    row = (await session.execute(select(clients).where(clients.c.id == client_id))).mappings().first()
    return None if row is None else _client(row)


async def of_ids(session: AsyncSession, client_ids: list[str]) -> dict[str, StoredClient]:
    if not client_ids:
        return {}
    rows = await session.execute(select(clients).where(clients.c.id.in_(set(client_ids))))
    return {row["id"]: _client(row) for row in rows.mappings()}


async def search(
    session: AsyncSession,
    *,
    name_words: list[str] | None = None,
    born: date | None = None,
    phone_digits: str | None = None,
    limit: int = 50,
) -> list[StoredClient]:
    """Clients whose name holds every one of ``name_words`` (case-insensitive), or born on
    ``born``, or whose phone holds ``phone_digits``; by name, then newest first."""
    query = select(clients).order_by(func.lower(clients.c.name), clients.c.created_at.desc()).limit(limit)
    if name_words:
        for word in name_words:
            query = query.where(func.lower(clients.c.name).contains(word.lower(), autoescape=True))
    elif born is not None:
        query = query.where(clients.c.date_of_birth == born)
    elif phone_digits:
        query = query.where(clients.c.phone_digits.contains(phone_digits, autoescape=True))
    else:
        return []
    return [_client(row) for row in (await session.execute(query)).mappings()]
