"""What a therapist does to a referral after issuing it: cancel it, put it on hold and resume it,
forward it to a partner of their choice, or record that a partner accepted it by phone. Each
partner affected is told by email; each action answers with the referral as it now stands."""

from __future__ import annotations

from services.referrals import client_emails, offering, partner_links, queries, unit_of_work
from services.referrals.context import Context
from services.referrals.domain import ScopeViolation, check_consent, waitlist_refused
from services.referrals.records import ReferralRecord
from services.referrals.rules import Assessment
from services.referrals.storage import offer_store, outcome_store, partner_store, referral_store
from shared import categories
from shared.auth import Staff
from shared.errors import Conflict, InvalidInput, NotFound
from shared.messages import PartnerSnapshot


async def cancel(ctx: Context, *, staff: Staff, referral_id: str, reason: str = "") -> ReferralRecord:
    """Cancel a referral: its open offers are withdrawn, and the partners who were to answer it
    or had accepted it are told."""
    async with ctx.sessions.begin() as session:
        referral = await queries.referral_for(session, staff=staff, referral_id=referral_id)
        await unit_of_work.transition(
            ctx,
            session,
            referral=referral,
            to="cancelled",
            actor=staff.email,
            why=reason or "cancelled by the therapist",
        )
        await offering.withdraw_open_offers(ctx, session, referral=referral, kind="referral_cancelled")
    return await queries.get(ctx, staff=staff, referral_id=referral_id)


async def hold(ctx: Context, *, staff: Staff, referral_id: str, reason: str = "") -> ReferralRecord:
    """Pause a referral. An offer still waiting for its partner's answer is withdrawn (the
    partner is told) and goes back to the head of the queue; an accepted one stays."""
    async with ctx.sessions.begin() as session:
        referral = await queries.referral_for(session, staff=staff, referral_id=referral_id)
        await unit_of_work.transition(
            ctx,
            session,
            referral=referral,
            to="on-hold",
            actor=staff.email,
            why=reason or "put on hold by the therapist",
        )
        for offer in await offer_store.of_referrals(session, [referral.id], statuses=("offered",)):
            await offer_store.requeue(session, offer.id)
            await unit_of_work.email_partner(ctx, session, referral=referral, offer=offer, kind="offer_withdrawn")
    return await queries.get(ctx, staff=staff, referral_id=referral_id)


async def resume(ctx: Context, *, staff: Staff, referral_id: str) -> ReferralRecord:
    """Take a referral off hold: back with its accepting partner (who gets a fresh report link
    if theirs was used), or offered again, with a full deadline, to the next partner."""
    async with ctx.sessions.begin() as session:
        referral = await queries.referral_for(session, staff=staff, referral_id=referral_id)
        if referral.status != "on-hold":
            raise Conflict(f"a referral that is {referral.status} is not on hold", field="status")
        accepted = await offer_store.of_referrals(session, [referral.id], statuses=("accepted",))
        if accepted:
            booked = await outcome_store.was_booked(session, referral.id)
            await unit_of_work.transition(
                ctx,
                session,
                referral=referral,
                to="in-progress" if booked else "accepted",
                actor=staff.email,
                why="resumed by the therapist",
            )
            if accepted[0].report_nonce is None:
                await partner_links.send_report_link(ctx, session, referral=referral, offer=accepted[0])
        elif await offer_store.next_queued(session, referral.id, today=ctx.today()) is not None:
            await unit_of_work.transition(
                ctx, session, referral=referral, to="requested", actor=staff.email, why="resumed by the therapist"
            )
            await offering.offer_next(ctx, session, referral=referral)
        else:
            await unit_of_work.transition(
                ctx,
                session,
                referral=referral,
                to="failed",
                actor=staff.email,
                why="resumed with no partner left to offer it to",
            )
            await client_emails.referral_failed(ctx, session, referral=referral)
    return await queries.get(ctx, staff=staff, referral_id=referral_id)


async def forward_candidates(ctx: Context, *, reasons: list[str]) -> list[PartnerSnapshot]:
    """Active partners in scope for ``reasons``, by name: who a referral may be forwarded to (no
    waitlist for an urgent one)."""
    assessment = ctx.rules.assess(reasons)
    async with ctx.sessions() as session:
        found = await partner_store.snapshots(session, categories=_scope(assessment))
    found = [
        p
        for p in found
        if not waitlist_refused(urgency=assessment.urgency, accepting_new_clients=p.accepting_new_clients)
    ]
    return sorted(found, key=lambda p: p.name.casefold())


async def forward(ctx: Context, *, staff: Staff, referral_id: str, partner_id: str) -> ReferralRecord:
    """Offer a declined, failed or held referral to a partner of the therapist's choice, in
    scope and covered by the consent like any other; whatever it still had open is withdrawn."""
    async with ctx.sessions.begin() as session:
        referral = await queries.referral_for(session, staff=staff, referral_id=referral_id)
        await referral_store.lock(session, referral.id)  # see offering: the referral first, then its offers
        referral = await referral_store.load(session, referral.id)
        if referral.status not in ("rejected", "failed", "on-hold"):
            raise Conflict(
                f"a referral that is {referral.status} cannot be forwarded; put it on hold first", field="status"
            )
        assessment = ctx.rules.assess(list(referral.reasons))
        found = await partner_store.snapshots(session, ids=[partner_id])
        partner = found[0] if found else None
        if partner is None:
            raise InvalidInput(f"unknown partner {partner_id!r}", field="partner_id")
        if partner.status != "active":
            raise InvalidInput(f"{partner.name} is {partner.status} and cannot receive referrals", field="partner_id")
        if partner.category not in _scope(assessment):
            raise ScopeViolation(
                f"{partner.name} ({partner.category}) is outside the scope allowed for this referral's reasons",
                field="partner_id",
                extra={"allowed": _scope(assessment)},
            )
        if waitlist_refused(urgency=referral.urgency, accepting_new_clients=partner.accepting_new_clients):
            raise ScopeViolation(
                f"{partner.name} has a waitlist for new clients and cannot see an urgent referral today",
                field="partner_id",
                extra={"accepting_new_clients": "waitlist", "urgency": "urgent"},
            )
        check_consent(
            given=bool(referral.consent.get("given")),
            scope=list(referral.consent.get("scope", [])),
            kinds_needed={categories.load()[partner.category].kind},
        )
        await unit_of_work.transition(
            ctx,
            session,
            referral=referral,
            to="requested",
            actor=staff.email,
            why=f"forwarded by the therapist to {partner.name}",
        )
        await offering.withdraw_open_offers(ctx, session, referral=referral, kind="offer_withdrawn")
        # The partner who had accepted it (before a no-show, say) no longer has it either.
        await offer_store.withdraw_accepted(session, referral.id)
        await offer_store.append(session, referral.id, partner.id)
        await offering.offer_next(ctx, session, referral=referral)
    return await queries.get(ctx, staff=staff, referral_id=referral_id)


async def accept_by_phone(ctx: Context, *, staff: Staff, referral_id: str, offer_id: str) -> ReferralRecord:
    """Record that the partner of ``offer_id`` accepted the referral by phone (urgent referrals
    are phoned): accepted on their behalf as if through their link, the other partners still
    deciding withdrawn and told, the partner emailed the link to report the outcome. Audited."""
    async with ctx.sessions.begin() as session:
        referral = await queries.referral_for(session, staff=staff, referral_id=referral_id)
        await referral_store.lock(session, referral.id)  # see offering: the referral first, then its offers
        referral = await referral_store.load(session, referral.id)
        offer = await offer_store.get(session, offer_id)
        if offer is None or offer.referral_id != referral.id:
            raise NotFound(f"no offer {offer_id} on this referral", field="offer_id")
        if referral.status not in ("requested", "received"):
            raise Conflict(
                f"a referral that is {referral.status} cannot be accepted by phone: it is not looking for a partner",
                field="status",
            )
        now = ctx.clock()
        # A partner next in line may be phoned too; one who answered or was withdrawn may not.
        claimed = await offer_store.claim_answer(
            session, offer.id, status="accepted", at=now, reason=None, note=None, open_statuses=("offered", "queued")
        )
        if not claimed:
            raise Conflict(
                f"the offer to {offer.partner_name or 'this partner'} is {offer.status}: it cannot be accepted now",
                field="offer_id",
            )
        await offering.award(
            ctx,
            session,
            referral=referral,
            offer=offer,
            actor=staff.email,
            why=f"accepted by {offer.partner_name} by phone, recorded by {staff.email}",
        )
        await referral_store.add_audit(
            session,
            at=now,
            actor=staff.email,
            action="accepted_by_phone",
            referral_id=referral.id,
            detail={"offer_id": offer.id, "partner_id": offer.partner_id},
        )
        await partner_links.send_report_link(ctx, session, referral=referral, offer=offer)
    return await queries.get(ctx, staff=staff, referral_id=referral_id)


def _scope(assessment: Assessment) -> list[str]:
    """The categories an existing referral may go to. A referral issued before reasons were split
    into groups may hold reasons for several kinds of partner: it follows its most urgent group,
    as the review's fallback says (route by the most urgent reason; the others are noted)."""
    return assessment.categories or (assessment.groups[0].categories if assessment.groups else [])
