"""Emails: staged in the outbox with the change that causes them (and recorded in ``emails``:
what each one was, for as long as the referral needs to say so), and the notifier's delivery
reports on them. The rows and their SQL, in the caller's session."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.storage.tables import email_deliveries, emails, outbox
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
    # None for an email this service has no record of staging.
    email: StagedEmail | None


async def stage(session: AsyncSession, message: SendEmail, *, staged_at: datetime) -> None:
    """Put the email in the outbox, to be sent once the caller's transaction commits, and
    record what it is."""
    await outbox_module.add(session, outbox, message, message_id=message.notification_id)
    await session.execute(
        insert(emails).values(
            notification_id=message.notification_id,
            referral_id=message.referral_id,
            kind=message.kind,
            recipient=message.to,
            staged_at=staged_at,
        )
    )


async def staged(session: AsyncSession, notification_id: str) -> StagedEmail | None:
    row = (
        await session.execute(
            select(emails.c.kind, emails.c.recipient).where(emails.c.notification_id == notification_id)
        )
    ).first()
    return None if row is None else StagedEmail(kind=row.kind, to=row.recipient)


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
        select(email_deliveries.c.referral_id, email_deliveries.c.detail, emails.c.kind, emails.c.recipient)
        .join(emails, emails.c.notification_id == email_deliveries.c.notification_id, isouter=True)
        .where(email_deliveries.c.referral_id.in_(referral_ids), email_deliveries.c.outcome == "failed")
        .order_by(email_deliveries.c.at)
    )
    return [
        FailedEmail(
            referral_id=row.referral_id,
            detail=row.detail,
            email=None if row.kind is None else StagedEmail(kind=row.kind, to=row.recipient),
        )
        for row in rows
    ]
