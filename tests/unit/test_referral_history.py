"""Partners' answering histories are read once a minute per set of candidates, not per ranking."""

from __future__ import annotations

import asyncio

from services.referrals.history import HistoryCache
from services.referrals.matching import PartnerHistory


def test_a_history_is_read_again_only_after_a_minute_or_for_other_partners() -> None:
    now = [1000.0]
    reads: list[list[str]] = []

    async def reader(_session, partner_ids: list[str]) -> dict[str, PartnerHistory]:
        reads.append(sorted(partner_ids))
        return {pid: PartnerHistory(answered=len(reads), accepted=0) for pid in partner_ids}

    cache = HistoryCache(seconds=60, now=lambda: now[0], reader=reader)

    async def rank(ids: list[str]) -> int:
        return (await cache.of(None, ids))[ids[0]].answered  # type: ignore[arg-type]

    async def scenario() -> list[int]:
        seen = [await rank(["a", "b"]), await rank(["b", "a"])]  # the same set, in another order
        now[0] += 59.9
        seen.append(await rank(["a", "b"]))
        seen.append(await rank(["c"]))  # another set of candidates: its own read
        now[0] += 0.2  # the first read is a minute old now
        seen.append(await rank(["a", "b"]))
        return seen

    assert asyncio.run(scenario()) == [1, 1, 1, 2, 3]
    assert reads == [["a", "b"], ["c"], ["a", "b"]]
