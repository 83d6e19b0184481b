"""The directory's use cases. Each runs in one transaction; each committed change stages a
``PartnerChanged`` in the outbox within that transaction, which the commit hands to the relay.

Used by the web controllers and by the CLI (seed, import) alike::

    directory = PartnerService(sessions=database.sessions(engine))
    partner = await directory.create(details=PartnerDetails(name=..., category=..., email=...))
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.directory import history
from services.directory.catalogue import Catalogue
from services.directory.domain import Partner, PartnerDetails, PartnerNotFound, StaleVersion, Status, new_partner_with
from services.directory.fields import InvalidPartner, Location, slug_base, unique_slug, validate_category
from services.directory.importing import ImportIndex, ImportReport, ImportRow, plan_rows
from services.directory.publisher import stage_partner_changed, stage_partners_changed
from services.directory.search import After, Hit, InvalidSearch, PartnerQuery, SearchPage, decode_cursor, encode_cursor
from services.directory.storage import PartnerRepository
from shared import categories as vocabulary
from shared import geo
from shared.errors import Conflict

# Runs inside a change's transaction, before the partner is stored: for work that must commit or
# roll back with the change (a manage link's use, a review's decision, an email to stage).
InTransaction = Callable[[AsyncSession, Partner], Awaitable[None]]

MAX_PAGE_SIZE = 100
# Two admins creating "Bay Physical Therapy" at the same instant both pick the same free slug;
# the loser's insert violates the unique index and simply tries the next one.
SLUG_ATTEMPTS = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


def zip_centroid(postal_code: str) -> Location | None:
    """The offline centre of a US ZIP code (see :mod:`shared.geo`), as a domain location."""
    found = geo.centroid(postal_code)
    return None if found is None else Location(found.lat, found.lon)


class PartnerService:
    """Create, read, change, search, import and republish partners.

    ``nudge`` is called after every commit that staged a message (in a web process, to drop the
    cached public pages; the commit itself hands the message to the relay, see shared.outbox).
    ``geocode`` turns a postal code into a location for partners given without one; ``reads``
    is an engine for read-only queries (by default the sessions' own).
    """

    def __init__(
        self,
        *,
        sessions: async_sessionmaker,
        categories: Collection[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        nudge: Callable[[], None] = lambda: None,
        geocode: Callable[[str], Location | None] = zip_centroid,
        reads: AsyncEngine | None = None,
    ) -> None:
        self._sessions = sessions
        # Queries that never write may use their own engine (see shared.database.create_engine).
        self._reads: AsyncEngine = reads or sessions.kw["bind"]
        self._categories = tuple(categories if categories is not None else vocabulary.load())
        self._clock = clock
        self._nudge = nudge
        self._geocode = geocode
        # Numbered pages and practices of the public directory, for the standards APIs.
        self.catalogue = Catalogue(reads=self._reads)

    @property
    def categories(self) -> tuple[str, ...]:
        return self._categories

    async def create(self, *, details: PartnerDetails, status: Status = "active", actor: str = "admin") -> Partner:
        """A new partner at version 1 (``active`` unless stated), published; ``actor`` (who made
        it) goes into its history."""
        details = details.validated(categories=self._categories, geocode=self._geocode)
        base = slug_base(details.name)
        for attempt in range(SLUG_ATTEMPTS):
            now = self._clock()
            try:
                async with self._sessions.begin() as session:
                    repository = PartnerRepository(session)
                    await self._check_npi_free(repository, details.npi, partner_id=None)
                    slug = unique_slug(base, taken=await repository.slugs_starting_with(base))
                    partner = new_partner_with(
                        id=str(uuid.uuid4()), slug=slug, valid_details=details, status=status, now=now
                    )
                    await repository.add(partner)
                    await repository.touch_catalogue()
                    await history.record(session, before=None, after=partner, actor=actor, action="created", at=now)
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
        async with self._reading() as repository:
            partner = await repository.get(partner_id)
        return self._visible(partner, partner_id, include_hidden)

    async def get_by_slug(self, *, slug: str, include_hidden: bool = False) -> Partner:
        async with self._reading() as repository:
            partner = await repository.get_by_slug(slug)
        return self._visible(partner, slug, include_hidden)

    async def update(
        self,
        *,
        partner_id: str,
        version: int | None,
        changes: Mapping[str, Any] | None = None,
        status: Status | None = None,
        actor: str = "admin",
        action: str = "updated",
        also: InTransaction | None = None,
    ) -> Partner:
        """Apply ``changes`` (partner-detail fields → new values) and/or a status change to the
        partner the caller saw at ``version``. A stale ``version`` raises :class:`StaleVersion`
        carrying the current one. A change that changes nothing keeps the version. ``actor`` and
        ``action`` go into the partner's history; ``also`` runs in the change's transaction."""

        def revise(current: Partner, now: datetime) -> Partner:
            details = current.details.with_changes(relocated(current.details, changes)) if changes else None
            return current.revise(
                details=details, status=status, categories=self._categories, now=now, geocode=self._geocode
            )

        return await self._change(
            partner_id, expected_version=version, revise=revise, actor=actor, action=action, also=also
        )

    async def revise(
        self,
        *,
        partner_id: str,
        revise: Callable[[Partner, datetime], Partner],
        actor: str,
        action: str,
        version: int | None = None,
        also: InTransaction | None = None,
    ) -> Partner:
        """Store what ``revise`` makes of the current partner (itself: no change), published and
        in its history as ``action`` by ``actor``; for the confirmation cycle and the manage page."""
        return await self._change(
            partner_id, expected_version=version, revise=revise, actor=actor, action=action, also=also
        )

    async def history(self, *, partner_id: str, limit: int = 50) -> list[history.Entry]:
        """The partner's history, newest first."""
        async with self._reads.connect() as connection:
            return await history.recent(connection, partner_id=partner_id, limit=limit)

    async def archive(self, *, partner_id: str, version: int | None = None, actor: str = "admin") -> Partner:
        """Archive the partner (hidden everywhere, never offered again). Archiving an archived
        partner changes nothing; ``version``, when given, guards against a stale view."""

        def revise(current: Partner, now: datetime) -> Partner:
            if current.status == "archived":
                return current
            return current.revise(status="archived", categories=self._categories, now=now)

        return await self._change(partner_id, expected_version=version, revise=revise, actor=actor, action="archived")

    async def search(self, query: PartnerQuery, *, limit: int = 20, cursor: str | None = None) -> SearchPage:
        """One page of partners matching ``query``: by name, or nearest first when
        ``query.near`` is set (each hit then carries its distance)."""
        if query.category:
            try:
                validate_category(query.category, categories=self._categories)
            except InvalidPartner as exc:
                raise InvalidSearch(exc.detail, field="category") from None
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidSearch(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
        after = decode_cursor(cursor, near=query.near is not None)
        async with self._reading() as repository:
            if query.near is None:
                found = await repository.search(query, after=after, limit=limit + 1)
                hits = [Hit(partner) for partner in found]
            else:
                found_near = await repository.nearest(query, after=after, limit=limit + 1)
                keys = {partner.id: key for partner, key in found_near}
                hits = [
                    Hit(partner, round(query.near.distance_km(partner.details.location), 3))  # type: ignore[arg-type]  # nearest() finds located partners only
                    for partner, _ in found_near
                ]
        if len(hits) <= limit:
            return SearchPage(hits=hits, next_cursor=None)
        hits = hits[:limit]
        last = hits[-1]
        if query.near is None:
            position = After("name", last.partner.details.name, last.partner.id)
        else:
            position = After("distance", keys[last.partner.id], last.partner.id)
        return SearchPage(hits=hits, next_cursor=encode_cursor(position))

    async def languages(self, query: PartnerQuery) -> set[str]:
        """The languages the partners matching ``query`` list (for the public page's picker)."""
        async with self._reading() as repository:
            return await repository.languages(query)

    async def count_by_category(self, query: PartnerQuery) -> dict[str, int]:
        async with self._reading() as repository:
            return await repository.count_by_category(query)

    async def catalogue_revision(self) -> int:
        """A number that grows with every committed partner change (for caches and ETags)."""
        async with self._reading() as repository:
            return await repository.catalogue_revision()

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[PartnerRepository]:
        """A repository for reads only, on a plain connection of the read engine (no ORM session;
        rolled back when done)."""
        async with self._reads.connect() as connection:
            yield PartnerRepository(connection)

    async def every_partner(self) -> AsyncIterator[Partner]:
        """Every partner, whatever its status, by name (export)."""
        async with self._sessions() as session:
            async for batch in PartnerRepository(session).batches():
                for partner in batch:
                    yield partner

    async def republish(self) -> int:
        """Stage ``PartnerChanged`` with the current state and version of every partner (for a
        consumer that lost its replica). Consumers ignore versions they already hold."""
        count = 0
        now = self._clock()
        async with self._sessions.begin() as session:
            async for batch in PartnerRepository(session).batches():
                await stage_partners_changed(session, partners=batch, changed_at=now)
                count += len(batch)
        if count:
            self._nudge()
        return count

    async def import_rows(
        self,
        rows: Iterable[ImportRow],
        *,
        skip_invalid: bool = False,
        progress: Callable[[int], None] = lambda _: None,
    ) -> ImportReport:
        """Create or update partners from import rows, in one transaction, keyed on NPI, else
        name + postal code. With any bad row nothing is stored unless ``skip_invalid``; an
        unchanged row changes nothing (so importing a file twice stores it once).

        Reading and checking the rows (``rows`` may be a parser still reading the file) is
        plain CPU work for every row: it runs in a worker thread, so the event loop keeps serving
        other requests meanwhile; only the database work runs on the loop."""
        now = self._clock()
        report = ImportReport()
        async with self._sessions.begin() as session:
            repository = PartnerRepository(session)
            index = ImportIndex()
            async for batch in repository.batches():
                for partner in batch:
                    index.add(partner)
            plan = functools.partial(
                plan_rows,
                rows,
                index=index,
                report=report,
                now=now,
                progress=progress,
                categories=self._categories,
                geocode=self._geocode,
            )
            planned = await anyio.to_thread.run_sync(plan)
            if report.error_count and not skip_invalid:
                report.rejected = True
                return report
            changed: list[Partner] = []
            created = [revised for current, revised in planned if current is None]
            await repository.add_many(created)
            report.created += len(created)
            changed += created
            for current, revised in planned:
                if current is None:
                    continue
                if revised is current:
                    report.unchanged += 1
                    continue
                else:
                    if not await repository.replace(revised, expected_version=current.version):
                        raise StaleVersion(expected=current.version, current=current.version + 1)
                    report.updated += 1
                await history.record(session, before=current, after=revised, actor="import", action="imported", at=now)
                changed.append(revised)
            await stage_partners_changed(session, partners=changed, changed_at=now)
            report.skipped = report.error_count
            if report.created or report.updated:
                await repository.touch_catalogue()
        if report.created or report.updated:
            self._nudge()
        return report

    async def _check_npi_free(self, repository: PartnerRepository, npi: str | None, *, partner_id: str | None) -> None:
        if npi is None:
            return
        holder = await repository.get_by_npi(npi)
        if holder is not None and holder.id != partner_id:
            raise NpiTaken(npi)

    async def _change(
        self,
        partner_id: str,
        *,
        expected_version: int | None,
        revise: Callable[[Partner, datetime], Partner],
        actor: str = "admin",
        action: str = "updated",
        also: InTransaction | None = None,
    ) -> Partner:
        now = self._clock()
        unchanged = False
        async with self._sessions.begin() as session:
            repository = PartnerRepository(session)
            current = await repository.get(partner_id)
            if current is None:
                raise PartnerNotFound(partner_id)
            if expected_version is not None and current.version != expected_version:
                raise StaleVersion(expected=expected_version, current=current.version)
            revised = revise(current, now)
            if also is not None:
                await also(session, revised)
            if revised is current:
                unchanged = True
            else:
                await self._store(repository, current=current, revised=revised)
                await history.record(session, before=current, after=revised, actor=actor, action=action, at=now)
                await stage_partner_changed(session, partner=revised, changed_at=now)
        if unchanged and also is None:
            return current
        self._nudge()  # the change, or what ``also`` staged
        return revised

    async def _store(self, repository: PartnerRepository, *, current: Partner, revised: Partner) -> None:
        if revised.details.npi != current.details.npi:
            await self._check_npi_free(repository, revised.details.npi, partner_id=current.id)
        if not await repository.replace(revised, expected_version=current.version):
            # Another writer committed between our read and our write.
            latest = await repository.current_version(current.id)
            if latest is None:
                raise PartnerNotFound(current.id)
            raise StaleVersion(expected=current.version, current=latest)
        await repository.touch_catalogue()

    @staticmethod
    def _visible(partner: Partner | None, key: str, include_hidden: bool) -> Partner:
        if partner is None or not (include_hidden or partner.is_public):
            raise PartnerNotFound(key)
        return partner


class NpiTaken(Conflict):
    """Another partner already has this NPI (it identifies one provider)."""

    def __init__(self, npi: str) -> None:
        super().__init__(f"another partner already has NPI {npi}", field="npi")


def relocated(current: PartnerDetails, changes: Mapping[str, Any]) -> Mapping[str, Any]:
    """``changes``, plus dropping a location that no longer fits: when the postal code changes
    and no new location is given, the partner is geocoded again from its new postal code."""
    if "address" not in changes or "location" in changes:
        return changes
    old = current.address.postal_code if current.address else ""
    new = changes["address"].postal_code if changes["address"] else ""
    return {**changes, "location": None} if old != new else changes
