"""Read-only views of the public directory that the standards APIs (Open Referral HSDS, FHIR)
need beyond :class:`~services.directory.service.PartnerService`'s search: numbered pages with
their total, and practices (the partners naming one practice, see
:func:`~services.directory.identifiers.practice_id`). The same filters (:class:`PartnerQuery`)
and the same repository serve them; only public partners are ever shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from services.directory.domain import Partner
from services.directory.identifiers import practice_id as _practice_id
from services.directory.search import PartnerQuery
from services.directory.storage import PartnerRepository
from shared.errors import NotFound

T = TypeVar("T")


class PracticeNotFound(NotFound):
    """No public partner names this practice."""

    def __init__(self, practice_id: str) -> None:
        super().__init__(f"no practice {practice_id!r}", field="id")


@dataclass(frozen=True)
class Practice:
    """A practice and its public partners, by name."""

    id: str
    partners: tuple[Partner, ...]

    @property
    def name(self) -> str:
        """The practice's name as its first partner writes it; a partner without a practice is a
        practice of its own, named after the partner."""
        first = self.partners[0].details
        return first.practice or first.name


@dataclass(frozen=True)
class Numbered(Generic[T]):
    """One numbered page: its items and how many there are in all."""

    items: list[T]
    total: int


class Catalogue:
    """Numbered pages of public partners and practices, on the read engine."""

    def __init__(self, *, reads: AsyncEngine) -> None:
        self._reads = reads

    async def count(self, query: PartnerQuery) -> int:
        """How many public partners match ``query`` (within its ``near`` radius, if any)."""
        async with self._reading() as repository:
            return await repository.count(_public(query))

    async def partners(self, query: PartnerQuery, *, offset: int, limit: int) -> Numbered[Partner]:
        """Public partners matching ``query`` by name (``query.near`` is not ranked here), ``limit``
        of them after the first ``offset``."""
        query = _public(dataclasses.replace(query, near=None))
        async with self._reading() as repository:
            total = await repository.count(query)
            found = await repository.search(query, offset=offset, limit=limit) if 0 <= offset < total else []
        return Numbered(found, total)

    async def practices(self, query: PartnerQuery, *, offset: int, limit: int) -> Numbered[Practice]:
        """Practices with a public partner matching ``query``, by name, ``limit`` of them after the
        first ``offset``; each with all its public partners."""
        query = _public(query)
        async with self._reading() as repository:
            total = await repository.count_practices(query)
            ids = await repository.practices(query, offset=offset, limit=limit) if 0 <= offset < total else []
            members = await repository.search(PartnerQuery(practices=tuple(ids))) if ids else []
        by_practice: dict[str, list[Partner]] = {practice_id: [] for practice_id in ids}
        for partner in members:
            by_practice[practice_of(partner)].append(partner)
        return Numbered([Practice(id, tuple(partners)) for id, partners in by_practice.items()], total)

    async def practice(self, *, practice_id: str) -> Practice:
        """The practice with this id; :class:`PracticeNotFound` if no public partner names it."""
        async with self._reading() as repository:
            members = await repository.search(PartnerQuery(practices=(practice_id,)))
        if not members:
            raise PracticeNotFound(practice_id)
        return Practice(practice_id, tuple(members))

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[PartnerRepository]:
        async with self._reads.connect() as connection:
            yield PartnerRepository(connection)


def practice_of(partner: Partner) -> str:
    """The id of the practice ``partner`` belongs to."""
    return _practice_id(practice=partner.details.practice, partner_id=partner.id)


def has_location(partner: Partner) -> bool:
    """Whether the partner has a place to publish: a position or a street address (what
    ``PartnerQuery.located`` asks of the database)."""
    d = partner.details
    return d.location is not None or bool(d.address and d.address.line1)


def _public(query: PartnerQuery) -> PartnerQuery:
    return dataclasses.replace(query, public_only=True, status=None)
