"""What every change to a referral is made of, in the caller's transaction: a status transition
(allowed by the state machine, and made only if nobody changed the referral meanwhile), a line
on its timeline, and emails staged in the outbox, which the relay sends after the commit.

Each email belongs to the timeline step that sent it: the last line added to its referral's
timeline in the same transaction (so a step is written before its emails), unless the caller
says otherwise with :func:`emails_belong_to`. The referral's page shows each email there."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import links
from services.referrals.context import Context
from services.referrals.domain import check_transition
from services.referrals.storage import email_store, inbox_store, referral_store
from services.referrals.storage.offer_store import StoredOffer
from services.referrals.storage.referral_store import StoredReferral
from shared import manage_links
from shared.errors import Conflict
from shared.messages import EmailContext, EmailKind, PartnerContact, SendEmail


async def transition(
    ctx: Context, session: AsyncSession, *, referral: StoredReferral, to: str, actor: str, why: str
) -> int:
    """Move ``referral`` to status ``to``, with its timeline event (whose id is returned). Raises
    ``InvalidTransition`` when the state machine forbids it, :class:`Conflict` when the referral
    changed meanwhile."""
    check_transition(referral.status, to)
    if not await referral_store.set_status(session, referral.id, expected=referral.status, status=to, at=ctx.clock()):
        raise Conflict("the referral changed meanwhile; reload and try again", field="status")
    return await event(
        ctx, session, referral_id=referral.id, actor=actor, from_status=referral.status, to_status=to, why=why
    )


async def event(
    ctx: Context,
    session: AsyncSession,
    *,
    referral_id: str,
    actor: str,
    from_status: str | None,
    to_status: str,
    why: str,
) -> int:
    """Add a line to the referral's timeline: the step the emails staged next belong to. Its id."""
    step = await referral_store.add_event(
        session, referral_id, at=ctx.clock(), actor=actor, from_status=from_status, to_status=to_status, why=why
    )
    emails_belong_to(session, referral_id=referral_id, step=step)
    return step


def emails_belong_to(session: AsyncSession, *, referral_id: str, step: int) -> None:
    """The emails about ``referral_id`` staged next in this transaction belong to timeline
    step ``step`` (see the module's docstring)."""
    session.info.setdefault(_STEPS, {})[referral_id] = step


# Where a transaction keeps each referral's current step: its session's own dictionary.
_STEPS = "handoff.referral_steps"


async def note(ctx: Context, session: AsyncSession, *, referral: StoredReferral, actor: str, why: str) -> None:
    """Add a line to the referral's timeline that leaves its status as it is."""
    await event(
        ctx,
        session,
        referral_id=referral.id,
        actor=actor,
        from_status=referral.status,
        to_status=referral.status,
        why=why,
    )


async def email_partner(
    ctx: Context,
    session: AsyncSession,
    *,
    referral: StoredReferral,
    offer: StoredOffer,
    kind: EmailKind,
    action_url: str = "",
    expires_at: datetime | None = None,
) -> None:
    """Stage an email about the referral to the partner ``offer`` goes to."""
    context = EmailContext(
        recipient_name=offer.partner_name,
        partner_name=offer.partner_name,
        reference=referral.reference,
        urgency=referral.urgency,
        action_url=action_url,
        expires_at=expires_at,
        manage_url=_manage_url(ctx, offer.partner_id),
        inbox_url=await _inbox_url(ctx, session, offer.partner_email),
    )
    await _stage_email(ctx, session, referral_id=referral.id, kind=kind, to=offer.partner_email, context=context)


def _manage_url(ctx: Context, partner_id: str) -> str:
    """The partner's link to its own listing on the directory (see shared.manage_links)."""
    expires_at = ctx.clock() + manage_links.LIFETIME
    token = manage_links.issue(key=ctx.signing_key, partner_id=partner_id, expires_at=expires_at)
    return f"{ctx.settings.public_url('directory')}/manage/{token}"


async def _inbox_url(ctx: Context, session: AsyncSession, email: str) -> str:
    """The partner's inbox link (services.referrals.partner_inbox), of its address's current
    generation, so a revoked address gets a working link with its next email."""
    if not email:
        return ""
    generation = await inbox_store.generation(session, email)
    expires_at = ctx.clock() + links.INBOX_LIFETIME
    token = links.issue_inbox(key=ctx.signing_key, email=email, generation=generation, expires_at=expires_at)
    return f"{ctx.settings.public_url('referrals')}/inbox/{token}"


async def email_therapist(
    ctx: Context, session: AsyncSession, *, referral: StoredReferral, kind: EmailKind, partner_name: str = ""
) -> None:
    """Stage an email to the therapist who made the referral (none when their account is gone),
    linking to the referral's page."""
    therapist = await referral_store.staff_email(session, referral.created_by)
    if therapist is None:
        return
    await _stage_email(
        ctx,
        session,
        referral_id=referral.id,
        kind=kind,
        to=therapist,
        # The staff page's link carries the referral's id only: the page asks them to sign in.
        context=EmailContext(
            partner_name=partner_name,
            action_url=f"{ctx.settings.public_url('referrals')}/referrals/{referral.id}",
            reference=referral.reference,
            urgency=referral.urgency,
            next_step=referral.next_step,  # type: ignore[arg-type]  # a NextStep, stored as text
        ),
    )


async def email_client(
    ctx: Context,
    session: AsyncSession,
    *,
    referral: StoredReferral,
    kind: EmailKind,
    partners: list[PartnerContact],
    partner_name: str = "",
) -> bool:
    """Stage an email to the referral's client, in their language, listing ``partners``: only
    when the client gave an email address and agreed to be emailed (False when not sent). The
    address is the only thing of the client's the email goes with; its context holds the
    partners' public details and the referral's reference and urgency, nothing of the client."""
    client = referral.client
    to = str(client.get("email") or "")
    if not to or not client.get("email_consent"):
        return False
    context = EmailContext(
        partner_name=partner_name,
        reference=referral.reference,
        urgency=referral.urgency,
        partners=partners,
        language=str(client.get("language") or ""),
    )
    await _stage_email(ctx, session, referral_id=referral.id, kind=kind, to=to, context=context)
    return True


async def _stage_email(
    ctx: Context, session: AsyncSession, *, referral_id: str, kind: EmailKind, to: str, context: EmailContext
) -> None:
    """Stage one email about the referral, sent once the transaction commits."""
    notification_id = str(uuid.uuid4())
    message = SendEmail(notification_id=notification_id, kind=kind, to=to, context=context, referral_id=referral_id)
    step = session.info.get(_STEPS, {}).get(referral_id)
    await email_store.stage(session, message, staged_at=ctx.clock(), event_id=step)
