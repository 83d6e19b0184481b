"""Each partner's history: every committed change, at its version, with who made it ("partner"
through a manage link, "admin:<email>", "import", "system" for the confirmation sweep) and what
changed, old and new, in the flat form of the CSV columns. Written in the change's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.directory.columns import record_from_partner
from services.directory.domain import Partner
from services.directory.storage import partner_history


@dataclass(frozen=True, kw_only=True)
class Entry:
    version: int
    at: datetime
    actor: str
    action: str
    # column -> [before, after]; plus what the action itself carries (e.g. a review's note).
    detail: dict[str, Any]


def changes(before: Partner | None, after: Partner) -> dict[str, list[str]]:
    """column -> [before, after] for every column that differs (before is "" for a new partner)."""
    old = record_from_partner(before) if before is not None else {}
    new = record_from_partner(after)
    found = {name: [old.get(name, ""), value] for name, value in new.items() if old.get(name, "") != value}
    for flag in ("last_confirmed_at", "needs_review_since", "hidden_until_confirmed"):
        was, now = (getattr(before, flag) if before else None), getattr(after, flag)
        if was != now:
            found[flag] = [_text(was), _text(now)]
    return found


async def record(
    session: AsyncSession,
    *,
    before: Partner | None,
    after: Partner,
    actor: str,
    action: str,
    at: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    """Note ``after`` (the change from ``before``) in its partner's history."""
    await note(
        session,
        partner_id=after.id,
        version=after.version,
        actor=actor,
        action=action,
        at=at,
        detail={"changes": changes(before, after), **(extra or {})},
    )


async def note(
    session: AsyncSession, *, partner_id: str, version: int, actor: str, action: str, at: datetime, detail: dict
) -> None:
    """Note something that happened to a partner without changing it (a change asked for, a
    review rejected)."""
    await session.execute(
        insert(partner_history).values(
            id=str(uuid.uuid4()),
            partner_id=partner_id,
            version=version,
            at=at,
            actor=actor,
            action=action,
            detail=detail,
        )
    )


async def recent(connection: AsyncConnection | AsyncSession, *, partner_id: str, limit: int) -> list[Entry]:
    query = (
        select(partner_history)
        .where(partner_history.c.partner_id == partner_id)
        .order_by(partner_history.c.at.desc(), partner_history.c.version.desc())
        .limit(limit)
    )
    return [
        Entry(
            version=row.version,
            at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),
            actor=row.actor,
            action=row.action,
            detail=row.detail,
        )
        for row in await connection.execute(query)
    ]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).lower() if isinstance(value, bool) else str(value)
