"""The directory's use cases. Each runs in one transaction; each committed change stages a
``PartnerChanged`` in the outbox within that transaction and then nudges the relay.

Used by the web controllers and by the CLI (seed, import) alike::

    directory = PartnerService(sessions=database.sessions(engine), nudge=relay.nudge)
    partner = await directory.create(details=PartnerDetails(name=..., category=..., email=...))
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.directory.domain import (
    InvalidPartner,
    Partner,
    PartnerDetails,
    PartnerNotFound,
    StaleVersion,
    Status,
    new_partner,
    slug_base,
    unique_slug,
    validate_category,
)
from services.directory.publisher import stage_partner_changed
from services.directory.storage import PartnerRepository
from shared import categories as vocabulary

MAX_PAGE_SIZE = 100
# Two admins creating "Bay Physical Therapy" at the same instant both pick the same free slug;
# the loser's insert violates the unique index and simply tries the next one.
SLUG_ATTEMPTS = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Page:
    partners: list[Partner]
    # Where the next page starts, or None on the last page.
    next_offset: int | None


class PartnerService:
    """Create, read, change and list partners.

    ``nudge`` is called after every commit that staged a message (the relay's ``nudge`` in a
    web process; nothing in a one-off CLI run, where the next running relay picks rows up).
    """

    def __init__(
        self,
        *,
        sessions: async_sessionmaker,
        categories: Collection[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        nudge: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._categories = tuple(categories if categories is not None else vocabulary.load())
        self._clock = clock
        self._nudge = nudge

    async def create(self, *, details: PartnerDetails, status: Status = "active") -> Partner:
        """A new partner at version 1 (``active`` unless stated), published."""
        details = details.validated(categories=self._categories)
        base = slug_base(details.name)
        for attempt in range(SLUG_ATTEMPTS):
            now = self._clock()
            try:
                async with self._sessions.begin() as session:
                    repository = PartnerRepository(session)
                    slug = unique_slug(base, taken=await repository.slugs_starting_with(base))
                    partner = new_partner(
                        id=str(uuid.uuid4()),
                        slug=slug,
                        details=details,
                        status=status,
                        categories=self._categories,
                        now=now,
                    )
                    await repository.add(partner)
                    await stage_partner_changed(session, partner=partner, changed_at=now)
            except IntegrityError:
                if attempt == SLUG_ATTEMPTS - 1:
                    raise
                continue
            self._nudge()
            return partner
        raise AssertionError("unreachable")

    async def get(self, *, partner_id: str, include_hidden: bool = False) -> Partner:
        """The partner; :class:`PartnerNotFound` if there is none or it is hidden from the
        public (not active, or unlisted) and ``include_hidden`` is false."""
        async with self._sessions() as session:
            partner = await PartnerRepository(session).get(partner_id)
        return self._visible(partner, partner_id, include_hidden)

    async def get_by_slug(self, *, slug: str, include_hidden: bool = False) -> Partner:
        async with self._sessions() as session:
            partner = await PartnerRepository(session).get_by_slug(slug)
        return self._visible(partner, slug, include_hidden)

    async def update(
        self,
        *,
        partner_id: str,
        version: int,
        changes: Mapping[str, Any] | None = None,
        status: Status | None = None,
    ) -> Partner:
        """Apply ``changes`` (partner-detail fields → new values) and/or a status change to the
        partner the caller saw at ``version``. A stale ``version`` raises :class:`StaleVersion`
        carrying the current one. A change that changes nothing keeps the version."""

        def revise(current: Partner, now: datetime) -> Partner:
            details = current.details.with_changes(changes) if changes else None
            return current.revise(details=details, status=status, categories=self._categories, now=now)

        return await self._change(partner_id, expected_version=version, revise=revise)

    async def archive(self, *, partner_id: str, version: int | None = None) -> Partner:
        """Archive the partner (hidden everywhere, never offered again). Archiving an archived
        partner changes nothing; ``version``, when given, guards against a stale view."""

        def revise(current: Partner, now: datetime) -> Partner:
            if current.status == "archived":
                return current
            return current.revise(status="archived", categories=self._categories, now=now)

        return await self._change(partner_id, expected_version=version, revise=revise)

    async def list(
        self,
        *,
        category: str | None = None,
        q: str | None = None,
        limit: int | None = 20,
        offset: int = 0,
    ) -> Page:
        """Public partners (active and listed) by name, optionally of one ``category`` and with
        ``q`` in their name. ``limit=None`` returns them all."""
        if category:
            validate_category(category, categories=self._categories)
        if limit is not None and not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidPartner(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
        if offset < 0:
            raise InvalidPartner("cursor points before the first partner", field="cursor")
        async with self._sessions() as session:
            found = await PartnerRepository(session).search(
                public_only=True,
                category=category or None,
                q=(q or "").strip() or None,
                limit=None if limit is None else limit + 1,
                offset=offset,
            )
        if limit is not None and len(found) > limit:
            return Page(partners=found[:limit], next_offset=offset + limit)
        return Page(partners=found, next_offset=None)

    async def _change(
        self, partner_id: str, *, expected_version: int | None, revise: Callable[[Partner, datetime], Partner]
    ) -> Partner:
        now = self._clock()
        async with self._sessions.begin() as session:
            repository = PartnerRepository(session)
            current = await repository.get(partner_id)
            if current is None:
                raise PartnerNotFound(partner_id)
            if expected_version is not None and current.version != expected_version:
                raise StaleVersion(expected=expected_version, current=current.version)
            revised = revise(current, now)
            if revised is current:
                return current
            if not await repository.replace(revised, expected_version=current.version):
                # Another writer committed between our read and our write.
                latest = await repository.current_version(partner_id)
                if latest is None:
                    raise PartnerNotFound(partner_id)
                raise StaleVersion(expected=current.version, current=latest)
            await stage_partner_changed(session, partner=revised, changed_at=now)
        self._nudge()
        return revised

    @staticmethod
    def _visible(partner: Partner | None, key: str, include_hidden: bool) -> Partner:
        if partner is None or not (include_hidden or partner.is_public):
            raise PartnerNotFound(key)
        return partner
