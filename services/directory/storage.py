"""The directory's own tables and the repository that maps them to :mod:`.domain` partners.
Nothing outside this service reads or writes them; other services learn of partners through
``PartnerChanged`` messages staged in :data:`outbox`. The tables themselves are declared in
:mod:`.tables` and re-exported here for the modules that read them through the repository."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import ColumnElement, Select

from services.directory.domain import Partner, PartnerDetails
from services.directory.fields import Address, Location
from services.directory.identifiers import practice_id
from services.directory.search import After, Near, PartnerQuery, language_keys, query_terms, search_text
from services.directory.tables import (
    MIGRATIONS,
    catalogue,
    listing_notices,
    listing_reviews,
    manage_link_uses,
    metadata,
    outbox,
    partner_history,
    partners,
)
from shared import categories, languages

__all__ = [
    "MIGRATIONS",
    "PartnerRepository",
    "catalogue",
    "listing_notices",
    "listing_reviews",
    "manage_link_uses",
    "metadata",
    "outbox",
    "partner_history",
    "partners",
    "to_partner",
    "to_row",
]

_ADDRESS_PARTS = ("line1", "line2", "city", "state", "postal_code")


# Rows per INSERT of an import (each a few KB of parameters).
_INSERT_BATCH = 1000


class PartnerRepository:
    """Partners in the caller's session (and so in the caller's transaction)."""

    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self._session = session

    async def get(self, partner_id: str) -> Partner | None:
        row = (await self._session.execute(select(partners).where(partners.c.id == partner_id))).first()
        return None if row is None else to_partner(row._mapping)

    async def get_by_slug(self, slug: str) -> Partner | None:
        row = (await self._session.execute(select(partners).where(partners.c.slug == slug))).first()
        return None if row is None else to_partner(row._mapping)

    async def get_by_npi(self, npi: str) -> Partner | None:
        row = (await self._session.execute(select(partners).where(partners.c.npi == npi))).first()
        return None if row is None else to_partner(row._mapping)

    async def slugs_starting_with(self, base: str) -> set[str]:
        query = select(partners.c.slug).where(partners.c.slug.startswith(base, autoescape=True))
        return set((await self._session.execute(query)).scalars())

    async def add(self, partner: Partner) -> None:
        await self._session.execute(insert(partners).values(**to_row(partner)))

    async def add_many(self, new: Sequence[Partner]) -> None:
        """Insert ``new`` partners with one statement per batch (an import of many thousands):
        a statement built and sent per row cost far more than storing the row."""
        for start in range(0, len(new), _INSERT_BATCH):
            await self._session.execute(insert(partners), [to_row(p) for p in new[start : start + _INSERT_BATCH]])

    async def replace(self, partner: Partner, *, expected_version: int) -> bool:
        """Store ``partner`` if the stored row is still at ``expected_version``; False when a
        concurrent writer got there first (compare-and-set, so no lost update)."""
        row = to_row(partner)
        del row["id"], row["created_at"]
        result = await self._session.execute(
            update(partners).where(partners.c.id == partner.id, partners.c.version == expected_version).values(**row)
        )
        return _rowcount(result) == 1

    async def current_version(self, partner_id: str) -> int | None:
        query = select(partners.c.version).where(partners.c.id == partner_id)
        return (await self._session.execute(query)).scalar_one_or_none()

    async def search(
        self, query: PartnerQuery, *, after: After | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Partner]:
        """Partners matching ``query`` by name, then id (a stable order for keyset paging), after
        ``after`` when given, skipping ``offset`` (numbered pages). ``query.near`` only narrows to
        its bounding box here."""
        statement = _filtered(select(partners), query).order_by(partners.c.name, partners.c.id)
        if after is not None:
            statement = statement.where(
                or_(partners.c.name > after.key, and_(partners.c.name == after.key, partners.c.id > after.id))
            )
        if limit is not None:
            statement = statement.limit(limit)
        if offset:
            statement = statement.offset(offset)
        return [to_partner(row._mapping) for row in await self._session.execute(statement)]

    async def count(self, query: PartnerQuery) -> int:
        """How many partners match ``query`` (within ``query.near``'s radius, as :meth:`nearest`)."""
        statement = _filtered(select(func.count()).select_from(partners), query)
        if query.near is not None:
            statement = statement.where(_squared_km(query.near) <= query.near.radius_km**2)
        return (await self._session.execute(statement)).scalar_one()

    async def practices(self, query: PartnerQuery, *, offset: int, limit: int) -> list[str]:
        """Ids of the practices with a partner matching ``query``, by name (a practice without a
        name by its partner's), skipping ``offset``."""
        name = func.min(func.coalesce(func.nullif(partners.c.practice, ""), partners.c.name))
        statement = (
            _filtered(select(partners.c.practice_id), query)
            .group_by(partners.c.practice_id)
            .order_by(name, partners.c.practice_id)
            .offset(offset)
            .limit(limit)
        )
        return list((await self._session.execute(statement)).scalars())

    async def count_practices(self, query: PartnerQuery) -> int:
        statement = _filtered(select(func.count(partners.c.practice_id.distinct())), query)
        return (await self._session.execute(statement)).scalar_one()

    async def nearest(
        self, query: PartnerQuery, *, after: After | None = None, limit: int
    ) -> list[tuple[Partner, float]]:
        """Partners matching ``query`` within ``query.near``'s radius, nearest first (then by
        id), after ``after``, each with its ranking key (see :meth:`Near.squared_km`). The
        ranking runs in the database over the covering index; only the page's rows are read."""
        near = query.near
        assert near is not None
        # Where partners are dense, one page lies well inside the radius, and ranking every
        # partner in the radius's box (thousands in a city) is most of the search's time. So
        # first within a sixteenth of it, then a quarter: a circle holding a full page holds
        # the nearest partners exactly (every partner closer than its radius is inside it).
        for fraction in (1 / 16, 1 / 4):
            circle = dataclasses.replace(query, near=dataclasses.replace(near, radius_km=near.radius_km * fraction))
            found = await self._nearest_within(circle, after=after, limit=limit)
            if len(found) >= limit:
                return found
        return await self._nearest_within(query, after=after, limit=limit)

    async def _nearest_within(
        self, query: PartnerQuery, *, after: After | None, limit: int
    ) -> list[tuple[Partner, float]]:
        near = query.near
        assert near is not None
        key = _squared_km(near)
        ranked = _filtered(select(partners.c.id), query).where(key <= near.radius_km**2)
        if after is not None:
            ranked = ranked.where(or_(key > after.key, and_(key == after.key, partners.c.id > after.id)))
        ranked = ranked.order_by(key, partners.c.id).limit(limit)
        statement = (
            select(partners, key.label("ranking_key"))
            .where(partners.c.id.in_(ranked.scalar_subquery()))
            .order_by(key, partners.c.id)
        )
        return [(to_partner(row._mapping), row.ranking_key) for row in await self._session.execute(statement)]

    async def languages(self, query: PartnerQuery) -> set[str]:
        """Every language the partners matching ``query`` list, lower-cased (as search reads
        them: from ``language_keys``, a string column PostgreSQL can make distinct, unlike JSON)."""
        statement = _filtered(select(partners.c.language_keys).distinct(), query)
        found: set[str] = set()
        for (keys,) in await self._session.execute(statement):
            found.update(language for language in (keys or "").split("|") if language.strip())
        return found

    async def count_by_category(self, query: PartnerQuery) -> dict[str, int]:
        statement = _filtered(select(partners.c.category, func.count()), query).group_by(partners.c.category)
        return dict((await self._session.execute(statement)).tuples().all())

    async def batches(self, *, size: int = 500) -> AsyncIterator[list[Partner]]:
        """Every partner, whatever its status, by name then id, ``size`` at a time."""
        after: After | None = None
        while True:
            batch = await self.search(PartnerQuery(public_only=False), after=after, limit=size)
            if not batch:
                return
            yield batch
            last = batch[-1]
            after = After("name", last.details.name, last.id)

    async def touch_catalogue(self) -> None:
        """Grow the catalogue revision (call once in every transaction that changes partners)."""
        result = await self._session.execute(
            update(catalogue).where(catalogue.c.id == 1).values(revision=catalogue.c.revision + 1)
        )
        if _rowcount(result) == 0:
            await self._session.execute(insert(catalogue).values(id=1, revision=1))

    async def catalogue_revision(self) -> int:
        found = (await self._session.execute(select(catalogue.c.revision).where(catalogue.c.id == 1))).scalar()
        return found or 0


def _squared_km(near: Near) -> ColumnElement[float]:
    """:meth:`Near.squared_km` as SQL: plain arithmetic, so SQLite and PostgreSQL agree on it
    to the last bit and a cursor can name a position by it."""
    ky, kx = near.km_per_degree()
    dlat, dlon = partners.c.lat - near.origin.lat, partners.c.lon - near.origin.lon
    return dlat * dlat * (ky * ky) + dlon * dlon * (kx * kx)


def _filtered(statement: Select, query: PartnerQuery) -> Select:
    c = partners.c
    if query.public_only:
        statement = statement.where(c.status == "active", c.listed.is_(True), c.hidden_until_confirmed.is_(False))
    elif query.status:
        statement = statement.where(c.status == query.status)
    if query.category:
        statement = statement.where(c.category == query.category)
    if query.q:
        # A word that names a kind of practitioner ("chiropractor", "doctor") finds that kind too.
        for term in query_terms(query.q, categories.search_words()):
            found = c.search_text.contains(term.text, autoescape=True)
            if term.categories:
                found = or_(found, c.category.in_(sorted(term.categories)))
            statement = statement.where(found)
    if query.accepting:
        statement = statement.where(c.accepting_new_clients == query.accepting)
    if query.language:
        # "es", "Spanish" and "Español" are one language (shared.languages).
        spellings = languages.spellings(query.language)
        statement = statement.where(or_(*(c.language_keys.contains(f"|{f}|", autoescape=True) for f in spellings)))
    if query.telehealth is not None:
        statement = statement.where(c.telehealth.is_(query.telehealth))
    if query.near is not None:
        min_lat, max_lat, min_lon, max_lon = query.near.bounding_box()
        statement = statement.where(c.lat.between(min_lat, max_lat), c.lon.between(min_lon, max_lon))
    if query.practices is not None:
        statement = statement.where(c.practice_id.in_(query.practices))
    if query.needs_review:
        statement = statement.where(c.needs_review_since.is_not(None))
    if query.located:
        statement = statement.where(or_(c.lat.is_not(None), c.address_line1 != ""))
    return statement


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
        "specialties": list(details.specialties),
        "bio": details.bio,
        "hours": details.hours,
        "insurance_notes": details.insurance_notes,
        "accessibility_notes": details.accessibility_notes,
        "npi": details.npi,
        "license_number": details.license_number,
        "license_state": details.license_state,
        "accepts_referrals_from": list(details.accepts_referrals_from),
        "response_window_days": details.response_window_days,
        "search_text": search_text(
            details.name,
            details.credentials,
            details.practice,
            " ".join(details.specialties),
            address.city,
            address.postal_code,
        ),
        "language_keys": language_keys(details.languages),
        "last_confirmed_at": partner.last_confirmed_at,
        "practice_id": practice_id(practice=details.practice, partner_id=partner.id),
        "accepting_until": details.accepting_until,
        "licence_expires_on": details.licence_expires_on,
        "needs_review_since": partner.needs_review_since,
        "hidden_until_confirmed": partner.hidden_until_confirmed,
    }


def to_partner(row: Mapping[Any, Any]) -> Partner:
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
            specialties=tuple(row["specialties"] or ()),
            bio=row["bio"],
            hours=row["hours"],
            insurance_notes=row["insurance_notes"],
            accessibility_notes=row["accessibility_notes"],
            npi=row["npi"],
            license_number=row["license_number"],
            license_state=row["license_state"],
            accepts_referrals_from=tuple(row["accepts_referrals_from"] or ()),
            response_window_days=row["response_window_days"],
            accepting_until=row["accepting_until"],
            licence_expires_on=row["licence_expires_on"],
        ),
        status=row["status"],
        version=row["version"],
        created_at=_aware(row["created_at"]),
        updated_at=_aware(row["updated_at"]),
        last_confirmed_at=None if row["last_confirmed_at"] is None else _aware(row["last_confirmed_at"]),
        needs_review_since=None if row["needs_review_since"] is None else _aware(row["needs_review_since"]),
        hidden_until_confirmed=bool(row["hidden_until_confirmed"]),
    )


def _rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE matched (every UPDATE's result is a cursor result)."""
    return cast(CursorResult[Any], result).rowcount


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp here was written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
