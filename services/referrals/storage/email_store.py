"""Emails: staged in the outbox with the change that causes them, and the notifier's delivery
reports on them. The rows and their SQL, in the caller's session."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.storage.tables import email_deliveries, outbox
from shared import codec
from shared import outbox as outbox_module
from shared.messages import EmailDelivery, SendEmail


class StagedEmail(msgspec.Struct, kw_only=True, frozen=True):
    """What an email was: its kind and its recipient."""

    kind: str
    to: str


class FailedEmail(msgspec.Struct, kw_only=True, frozen=True):
    """An email that could not be delivered, for good."""

    referral_id: str
    detail: str
    # None when what was sent is no longer known.
    email: StagedEmail | None


async def stage(session: AsyncSession, message: SendEmail, *, staged_at: datetime) -> None:
    """Put the email in the outbox, to be sent once the caller's transaction commits."""
    await outbox_module.add(session, outbox, message, message_id=message.notification_id)


async def staged(session: AsyncSession, notification_id: str) -> StagedEmail | None:
    payload = (await session.execute(select(outbox.c.payload).where(outbox.c.id == notification_id))).scalar()
    return _described(payload)


async def record_delivery(session: AsyncSession, message: EmailDelivery) -> bool:
    """Note a delivery report; False when this outcome of this email was noted already."""
    try:
        async with session.begin_nested():
            await session.execute(
                insert(email_deliveries).values(
                    notification_id=message.notification_id,
                    outcome=message.outcome,
                    referral_id=message.referral_id,
                    at=message.at,
                    detail=message.detail[:2000],
                )
            )
    except IntegrityError:
        return False
    return True


async def failed(session: AsyncSession, referral_ids: list[str]) -> list[FailedEmail]:
    """The referrals' emails that failed for good, in the order they failed."""
    if not referral_ids:
        return []
    rows = await session.execute(
        select(email_deliveries.c.referral_id, email_deliveries.c.detail, outbox.c.payload)
        .join(outbox, outbox.c.id == email_deliveries.c.notification_id, isouter=True)
        .where(email_deliveries.c.referral_id.in_(referral_ids), email_deliveries.c.outcome == "failed")
        .order_by(email_deliveries.c.at)
    )
    return [FailedEmail(referral_id=row.referral_id, detail=row.detail, email=_described(row.payload)) for row in rows]


def _described(payload: str | None) -> StagedEmail | None:
    sent = codec.decode(payload) if payload else None
    return StagedEmail(kind=sent.kind, to=sent.to) if isinstance(sent, SendEmail) else None
