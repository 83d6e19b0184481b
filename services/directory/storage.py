"""The directory's own tables and the repository that maps them to :mod:`.domain` partners.
Nothing outside this service reads or writes them; other services learn of partners through
``PartnerChanged`` messages staged in :data:`outbox`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.domain import Address, Location, Partner, PartnerDetails
from shared.outbox import outbox_table

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = MetaData()

partners = Table(
    "partners",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("slug", String(80), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(60), nullable=False),
    Column("email", String(320), nullable=False),
    Column("phone", String(20), nullable=True),
    Column("credentials", String(120), nullable=False),
    Column("practice", String(200), nullable=False),
    Column("website", String(500), nullable=True),
    Column("address_line1", String(200), nullable=False),
    Column("address_line2", String(200), nullable=False),
    Column("address_city", String(100), nullable=False),
    Column("address_state", String(50), nullable=False),
    Column("address_postal_code", String(20), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("languages", JSON, nullable=False),
    Column("telehealth", Boolean, nullable=False),
    Column("accepting_new_clients", String(10), nullable=False),
    Column("listed", Boolean, nullable=False),
    Column("status", String(10), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("slug", name="uq_partners_slug"),
    # The public listing: active, listed partners of a category, by name.
    Index("ix_partners_status_category_name", "status", "category", "name"),
)

outbox = outbox_table(metadata)

_ADDRESS_PARTS = ("line1", "line2", "city", "state", "postal_code")


class PartnerRepository:
    """Partners in the caller's session (and so in the caller's transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, partner_id: str) -> Partner | None:
        row = (await self._session.execute(select(partners).where(partners.c.id == partner_id))).first()
        return None if row is None else to_partner(row._mapping)

    async def get_by_slug(self, slug: str) -> Partner | None:
        row = (await self._session.execute(select(partners).where(partners.c.slug == slug))).first()
        return None if row is None else to_partner(row._mapping)

    async def slugs_starting_with(self, base: str) -> set[str]:
        query = select(partners.c.slug).where(partners.c.slug.startswith(base, autoescape=True))
        return set((await self._session.execute(query)).scalars())

    async def add(self, partner: Partner) -> None:
        await self._session.execute(insert(partners).values(**to_row(partner)))

    async def replace(self, partner: Partner, *, expected_version: int) -> bool:
        """Store ``partner`` if the stored row is still at ``expected_version``; False when a
        concurrent writer got there first (compare-and-set, so no lost update)."""
        row = to_row(partner)
        del row["id"], row["created_at"]
        result = await self._session.execute(
            update(partners)
            .where(partners.c.id == partner.id, partners.c.version == expected_version)
            .values(**row)
        )
        return result.rowcount == 1

    async def current_version(self, partner_id: str) -> int | None:
        query = select(partners.c.version).where(partners.c.id == partner_id)
        return (await self._session.execute(query)).scalar_one_or_none()

    async def search(
        self,
        *,
        public_only: bool,
        category: str | None = None,
        q: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Partner]:
        """Partners by name (then id, for a stable order across pages)."""
        query = select(partners).order_by(partners.c.name, partners.c.id).offset(offset)
        if public_only:
            query = query.where(partners.c.status == "active", partners.c.listed.is_(True))
        if category:
            query = query.where(partners.c.category == category)
        if q:
            query = query.where(func.lower(partners.c.name).contains(q.lower(), autoescape=True))
        if limit is not None:
            query = query.limit(limit)
        return [to_partner(row._mapping) for row in await self._session.execute(query)]


def to_row(partner: Partner) -> dict[str, Any]:
    details = partner.details
    address = details.address or Address()
    return {
        "id": partner.id,
        "slug": partner.slug,
        "name": details.name,
        "category": details.category,
        "email": details.email,
        "phone": details.phone,
        "credentials": details.credentials,
        "practice": details.practice,
        "website": details.website,
        **{f"address_{part}": getattr(address, part) for part in _ADDRESS_PARTS},
        "lat": details.location.lat if details.location else None,
        "lon": details.location.lon if details.location else None,
        "languages": list(details.languages),
        "telehealth": details.telehealth,
        "accepting_new_clients": details.accepting_new_clients,
        "listed": details.listed,
        "status": partner.status,
        "version": partner.version,
        "created_at": partner.created_at,
        "updated_at": partner.updated_at,
    }


def to_partner(row: Mapping[str, Any]) -> Partner:
    address = Address(**{part: row[f"address_{part}"] for part in _ADDRESS_PARTS})
    location = None if row["lat"] is None or row["lon"] is None else Location(row["lat"], row["lon"])
    return Partner(
        id=row["id"],
        slug=row["slug"],
        details=PartnerDetails(
            name=row["name"],
            category=row["category"],
            email=row["email"],
            accepting_new_clients=row["accepting_new_clients"],
            phone=row["phone"],
            credentials=row["credentials"],
            practice=row["practice"],
            website=row["website"],
            address=None if address.is_empty() else address,
            location=location,
            languages=tuple(row["languages"] or ()),
            telehealth=bool(row["telehealth"]),
            listed=bool(row["listed"]),
        ),
        status=row["status"],
        version=row["version"],
        created_at=_aware(row["created_at"]),
        updated_at=_aware(row["updated_at"]),
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp here was written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
