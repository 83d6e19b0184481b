"""Issuing a referral: the therapist's draft held to the scope rules and the client's consent,
its partners chosen (the therapist's own choice, each in scope, or the best suggestions), stored
with its queue of offers and offered to the first partner, all in one transaction. With an
Idempotency-Key, the same request makes one referral however often it is sent."""

from __future__ import annotations

import hashlib
import secrets
import uuid

import msgspec
from sqlalchemy.exc import IntegrityError

from services.referrals import offering, queries, scoping, unit_of_work
from services.referrals.context import Context
from services.referrals.domain import ScopeViolation, check_consent, waitlist_refused
from services.referrals.intake import ReferralDraft, SuggestionQuery
from services.referrals.records import ReferralRecord
from services.referrals.rules import Assessment
from services.referrals.storage import offer_store, partner_store, referral_store
from services.referrals.storage.referral_store import StoredReferral
from shared import categories, geo
from shared.auth import Staff
from shared.errors import InvalidInput
from shared.messages import PartnerSnapshot


class _Key(msgspec.Struct, frozen=True):
    """An Idempotency-Key, whose it is, and the request body it came with."""

    staff_id: str
    key: str
    body_hash: str


async def create(
    ctx: Context, *, staff: Staff, draft: ReferralDraft, idempotency_key: str | None = None
) -> ReferralRecord:
    """Issue a referral and offer it to its first partner. With ``idempotency_key``, the same
    key and body give the same referral once; another body under that key is refused.

    The key is stored with its answer in the referral's own transaction: a request that fails
    part way (the database busy or away) leaves no trace, so sending it again is always safe,
    and the same request sent twice at once waits for the first and replays it."""
    if not idempotency_key:
        return await _create(ctx, staff=staff, draft=draft)
    if len(idempotency_key) > 200:
        raise InvalidInput("Idempotency-Key must be at most 200 characters", field="Idempotency-Key")
    key = _Key(staff.id, idempotency_key, hashlib.sha256(msgspec.json.encode(draft)).hexdigest())
    stored = await _replay(ctx, key)
    if stored is not None:
        return stored
    try:
        return await _create(ctx, staff=staff, draft=draft, key=key)
    except IntegrityError:
        # The key is unique: the same request, sent at the same moment, committed first.
        stored = await _replay(ctx, key)
        if stored is None:
            raise
        return stored


async def _replay(ctx: Context, key: _Key) -> ReferralRecord | None:
    """The answer stored under an Idempotency-Key, None if there is none; 422 when the key was
    used with another body."""
    async with ctx.sessions() as session:
        stored = await referral_store.stored_answer(session, staff_id=key.staff_id, key=key.key)
    if stored is None:
        return None
    if stored.body_hash != key.body_hash:
        raise InvalidInput("this Idempotency-Key was used with a different request body", field="Idempotency-Key")
    return msgspec.convert(stored.response, ReferralRecord)


async def _create(ctx: Context, *, staff: Staff, draft: ReferralDraft, key: _Key | None = None) -> ReferralRecord:
    assessment = await scoping.assess(ctx, staff=staff, reasons=list(draft.reasons))
    chosen = await _choose_partners(ctx, draft=draft, assessment=assessment)
    vocabulary = categories.load()
    check_consent(
        given=draft.consent.given,
        scope=list(draft.consent.scope),
        kinds_needed={vocabulary[p.category].kind for p in chosen},
    )
    now = ctx.clock()
    referral = StoredReferral(
        id=str(uuid.uuid4()),
        reference=_new_reference(),
        status="requested",
        urgency=assessment.urgency,
        reasons=list(draft.reasons),
        note=draft.note,
        client=msgspec.to_builtins(draft.client),
        consent={**msgspec.to_builtins(draft.consent), "recorded_at": now.isoformat(), "recorded_by": staff.email},
        created_by=staff.id,
        created_at=now,
        updated_at=now,
    )
    async with ctx.sessions.begin() as session:
        await referral_store.insert_referral(session, referral)
        await offer_store.queue(session, referral.id, [p.id for p in chosen])
        await unit_of_work.event(
            ctx,
            session,
            referral_id=referral.id,
            actor=staff.email,
            from_status=None,
            to_status="requested",
            why=f"issued for {', '.join(draft.reasons)} to {len(chosen)} partner(s) in turn",
        )
        await offering.offer_next(ctx, session, referral=referral)
        # Read back in the same transaction: what was committed, without another round trip.
        record = await queries.record(session, await referral_store.load(session, referral.id))
        if key is not None:
            await referral_store.store_answer(
                session,
                staff_id=key.staff_id,
                key=key.key,
                body_hash=key.body_hash,
                response=msgspec.to_builtins(record),
                at=now,
            )
    ctx.on_commit()
    return record


async def _choose_partners(ctx: Context, *, draft: ReferralDraft, assessment: Assessment) -> list[PartnerSnapshot]:
    """The therapist's partners, in their order, each known, active and in scope; or, when they
    chose none, every suggestion for the reasons, best first."""
    if draft.partner_ids is None:
        near = draft.client.postal_code if draft.client.postal_code and geo.centroid(draft.client.postal_code) else None
        ranked = await scoping.ranked(
            ctx,
            query=SuggestionQuery(reasons=list(draft.reasons), postal_code=near, language=draft.client.language),
        )
        if not ranked:
            raise InvalidInput(
                "no active partner in the directory can take these reasons",
                field="reasons",
                extra={"categories": assessment.categories},
            )
        return [partner for _, partner in ranked]
    if not draft.partner_ids:
        raise InvalidInput("give at least one partner, or leave partner_ids out for suggestions", field="partner_ids")
    if len(set(draft.partner_ids)) != len(draft.partner_ids):
        raise InvalidInput("a partner is listed twice", field="partner_ids")
    async with ctx.sessions() as session:
        found = {p.id: p for p in await partner_store.snapshots(session, ids=list(draft.partner_ids))}
    chosen = []
    for index, partner_id in enumerate(draft.partner_ids):
        field = f"partner_ids[{index}]"
        partner = found.get(partner_id)
        if partner is None:
            raise InvalidInput(f"unknown partner {partner_id!r}", field=field)
        if partner.status != "active":
            raise InvalidInput(f"{partner.name} is {partner.status} and cannot receive referrals", field=field)
        if partner.category not in assessment.categories:
            refusing = [r.code for r in assessment.reasons if partner.category not in r.categories]
            raise ScopeViolation(
                f"{partner.name} ({partner.category}) is outside the scope allowed for {', '.join(refusing)}",
                field=field,
                extra={"partner_id": partner_id, "reasons": refusing, "allowed": assessment.categories},
            )
        if waitlist_refused(urgency=assessment.urgency, accepting_new_clients=partner.accepting_new_clients):
            raise ScopeViolation(
                f"{partner.name} has a waitlist for new clients and cannot see an urgent referral today",
                field=field,
                extra={"partner_id": partner_id, "accepting_new_clients": "waitlist", "urgency": "urgent"},
            )
        chosen.append(partner)
    return chosen


def _new_reference() -> str:
    # Opaque, short enough to read over the phone; no client information in it.
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "HX-" + "".join(secrets.choice(alphabet) for _ in range(8))
