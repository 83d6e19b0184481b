"""Emails: staged in the outbox with the change that causes them (and recorded in ``emails``:
what each one was, for as long as the referral needs to say so), and the notifier's delivery
reports on them. The rows and their SQL, in the caller's session."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.records import EmailNote
from services.referrals.storage.tables import aware, email_deliveries, emails, outbox
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


async def stage(session: AsyncSession, message: SendEmail, *, staged_at: datetime, event_id: int | None) -> None:
    """Put the email in the outbox, to be sent once the caller's transaction commits, and
    record what it is and which timeline step (``event_id``) sent it."""
    await outbox_module.add(session, outbox, message, message_id=message.notification_id)
    await session.execute(
        _STAGE,
        {
            "notification_id": message.notification_id,
            "referral_id": message.referral_id,
            "kind": message.kind,
            "recipient": message.to,
            "staged_at": staged_at,
            "event_id": event_id,
        },
    )


# Built once, as the create's other statements are (see referral_store).
_STAGE = insert(emails)


async def staged(session: AsyncSession, notification_id: str) -> StagedEmail | None:
    row = (
        await session.execute(
            select(emails.c.kind, emails.c.recipient).where(emails.c.notification_id == notification_id)
        )
    ).first()
    return None if row is None else StagedEmail(kind=row.kind, to=row.recipient)


class SentEmail(msgspec.Struct, kw_only=True, frozen=True):
    """An email about a referral, the step that sent it, and its newest delivery report."""

    event_id: int | None
    note: EmailNote


_OF_REFERRAL = (
    select(
        emails.c.notification_id,
        emails.c.event_id,
        emails.c.kind,
        emails.c.recipient,
        emails.c.staged_at,
        email_deliveries.c.outcome,
        email_deliveries.c.at,
        email_deliveries.c.detail,
    )
    .join(email_deliveries, email_deliveries.c.notification_id == emails.c.notification_id, isouter=True)
    .where(emails.c.referral_id == bindparam("referral_id"))
    .order_by(emails.c.staged_at, emails.c.notification_id, email_deliveries.c.at)
)


async def of_referral(session: AsyncSession, referral_id: str) -> list[SentEmail]:
    """The referral's emails in the order they were staged, each with its newest delivery report."""
    rows = await session.execute(_OF_REFERRAL, {"referral_id": referral_id})
    found: dict[str, SentEmail] = {}
    for row in rows:
        note = EmailNote(kind=row.kind, to=row.recipient, staged_at=aware(row.staged_at))
        if row.outcome is not None:
            note.delivery, note.delivered_at, note.detail = row.outcome, aware(row.at), row.detail
        # The newest report wins: a deferral is followed by the send or the failure.
        found[row.notification_id] = SentEmail(event_id=row.event_id, note=note)
    return list(found.values())


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
