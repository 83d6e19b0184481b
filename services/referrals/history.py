"""How partners answered past offers, for ranking suggestions (see :mod:`.matching`): read from
the offers and outcome reports, and kept a minute per set of candidate partners."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import matching
from services.referrals.storage import offer_store, outcome_store

# How long a read of the partners' answering history serves rankings before it is read again.
# It only orders suggestions, and reading it goes through every closed offer of every candidate:
# on each referral's create, a cost that grew with the years of referrals behind it.
HISTORY_SECONDS = 60.0


async def read(session: AsyncSession, partner_ids: list[str]) -> dict[str, matching.PartnerHistory]:
    """Each partner's answers to past offers (acceptance rate, median time to accept) and the
    referrals they saw through to a completed visit."""
    if not partner_ids:
        return {}
    answers = await offer_store.answers_by_partner(session, partner_ids)
    completed = await outcome_store.completed_by_partner(session, partner_ids)
    return {
        pid: msgspec.structs.replace(matching.history_from(closed), completed=completed.get(pid, 0))
        for pid, closed in answers.items()
    }


class HistoryCache:
    """Partners' answering histories (see :func:`read`), each read kept for ``seconds`` of real
    time, per set of candidate partners."""

    def __init__(
        self,
        seconds: float = HISTORY_SECONDS,
        now: Callable[[], float] = time.monotonic,
        reader: Callable[[AsyncSession, list[str]], Awaitable[dict[str, matching.PartnerHistory]]] | None = None,
    ) -> None:
        self._seconds = seconds
        self._now = now
        self._read = reader or read
        self._kept: dict[frozenset[str], tuple[float, dict[str, matching.PartnerHistory]]] = {}

    async def of(self, session: AsyncSession, partner_ids: list[str]) -> dict[str, matching.PartnerHistory]:
        key, now = frozenset(partner_ids), self._now()
        kept = self._kept.get(key)
        if kept is not None and now - kept[0] < self._seconds:
            return kept[1]
        history = await self._read(session, partner_ids)
        if len(self._kept) >= 64:  # candidate sets change as the directory does: keep the recent
            self._kept.clear()
        self._kept[key] = (now, history)
        return history
