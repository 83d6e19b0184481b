"""The read-only replica of directory's partners, fed by ``PartnerChanged`` messages: the rows
and their SQL, in the caller's session."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.storage import figure_counters
from services.referrals.storage.tables import offers, partners
from shared.messages import PartnerChanged, PartnerSnapshot


async def snapshots(
    session: AsyncSession, *, ids: list[str] | None = None, categories: list[str] | None = None
) -> list[PartnerSnapshot]:
    """The partners with these ``ids`` (whatever their status), or the active ones in these
    ``categories``."""
    if ids is None and categories is not None:
        found = await session.execute(_ACTIVE_IN, {"categories": categories})
    else:
        query = select(partners.c.snapshot)
        if ids is not None:
            query = query.where(partners.c.id.in_(ids))
        if categories is not None:
            query = query.where(partners.c.category.in_(categories), partners.c.status == "active")
        found = await session.execute(query)
    return [msgspec.convert(snapshot, PartnerSnapshot) for snapshot in found.scalars()]


# Built once: every create ranks the active partners of its categories (see referral_store).
_ACTIVE_IN = select(partners.c.snapshot).where(
    partners.c.category.in_(bindparam("categories", expanding=True)), partners.c.status == "active"
)


async def keep_newer(session: AsyncSession, changes: Sequence[PartnerChanged]) -> list[PartnerSnapshot]:
    """Store each change's snapshot unless the replica holds that version or a newer one (of
    several changes to one partner, the newest counts); the snapshots stored. A few statements
    for the whole batch, whatever its size."""
    newest: dict[str, PartnerChanged] = {}
    for change in changes:
        kept = newest.get(change.partner.id)
        if kept is None or change.version > kept.version:
            newest[change.partner.id] = change
    versions = select(partners.c.id, partners.c.version)
    held = select(partners.c.id, partners.c.version, partners.c.category).where(partners.c.id.in_(list(newest)))
    rows = (await session.execute(held)).all()
    stored = {pid: version for pid, version, _ in rows}
    categories = {pid: category for pid, _, category in rows}
    new = [change for pid, change in newest.items() if pid not in stored]
    newer = [change for pid, change in newest.items() if pid in stored and stored[pid] < change.version]
    if new:
        await session.execute(insert(partners), [{"id": c.partner.id, **_values(c)} for c in new])
    if newer:
        # Still conditional on the version: a concurrent worker may have stored a newer one meanwhile.
        statement = (
            update(partners)
            .where(partners.c.id == bindparam("b_id"), partners.c.version < bindparam("b_version"))
            .values({name: bindparam(f"b_{name}") for name in _COLUMNS})
        )
        await session.execute(
            statement, [{"b_id": c.partner.id, **{f"b_{k}": v for k, v in _values(c).items()}} for c in newer]
        )
        now_held = dict((await session.execute(versions.where(partners.c.id.in_([c.partner.id for c in newer])))).all())
        newer = [c for c in newer if now_held.get(c.partner.id) == c.version]
    # A referral counts under its first offer's partner's category (figure_counters): a partner
    # the replica did not hold, or one whose category changed, moves its referrals' figures.
    moved = [c.partner.id for c in (*new, *newer) if categories.get(c.partner.id) != c.partner.category]
    if moved:
        offered = select(offers.c.referral_id).where(offers.c.partner_id.in_(moved)).distinct()
        figure_counters.touch(session, referral_ids=(await session.execute(offered)).scalars().all())
    return [change.partner for change in (*new, *newer)]


_COLUMNS = ("version", "name", "category", "status", "email", "snapshot", "updated_at")


def _values(change: PartnerChanged) -> dict[str, object]:
    snapshot = change.partner
    return {
        "version": change.version,
        "name": snapshot.name,
        "category": snapshot.category,
        "status": snapshot.status,
        "email": snapshot.email,
        "snapshot": msgspec.to_builtins(snapshot),
        "updated_at": change.changed_at,
    }
