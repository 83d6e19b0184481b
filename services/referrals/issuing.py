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

from services.referrals import clients, offering, queries, scoping, unit_of_work
from services.referrals.contact import DEFAULT_LANGUAGE, language_name
from services.referrals.context import Context
from services.referrals.domain import ScopeViolation, check_consent
from services.referrals.identifiers import check_note
from services.referrals.intake import ReferralDraft, SuggestionQuery
from services.referrals.records import ReferralRecord
from services.referrals.rules import Assessment
from services.referrals.storage import client_store, offer_store, partner_store, referral_store
from services.referrals.storage.client_store import StoredClient
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
    async with ctx.sessions() as session:
        client, new_client = await clients.for_referral(
            ctx, session, staff=staff, given=draft.client, next_step=draft.next_step
        )
    # Every offered partner reads the note before accepting: nothing in it may identify the client.
    check_note(draft.note, client_name=client.name, today=ctx.clock().date())
    chosen = await _choose_partners(ctx, draft=draft, assessment=assessment, client=client)
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
        client_id=client.id,
        next_step=draft.next_step,
        consent={**msgspec.to_builtins(draft.consent), "recorded_at": now.isoformat(), "recorded_by": staff.email},
        created_by=staff.id,
        created_at=now,
        updated_at=now,
    )
    async with ctx.sessions.begin() as session:
        if new_client:
            await client_store.insert_client(session, client)
        await referral_store.insert_referral(session, referral)
        await offer_store.queue(session, referral.id, [p.id for p in chosen])
        await unit_of_work.event(
            ctx,
            session,
            referral_id=referral.id,
            actor=staff.email,
            from_status=None,
            to_status="requested",
            why=f"issued for {', '.join(draft.reasons)} to {len(chosen)} partner(s), "
            f"{min(len(chosen), offering.at_once(ctx, urgency=referral.urgency))} at a time",
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


async def _choose_partners(
    ctx: Context, *, draft: ReferralDraft, assessment: Assessment, client: StoredClient
) -> list[PartnerSnapshot]:
    """The therapist's partners, in their order, each known, active and in scope; or, when they
    chose none, every suggestion for the reasons, best first."""
    if draft.partner_ids is None:
        near = client.postal_code if client.postal_code and geo.centroid(client.postal_code) else None
        ranked = await scoping.ranked(
            ctx,
            query=SuggestionQuery(reasons=list(draft.reasons), postal_code=near, language=matching_language(client)),
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
    today = scoping.clinic_today(ctx)
    for index, partner_id in enumerate(draft.partner_ids):
        field = f"partner_ids[{index}]"
        partner = found.get(partner_id)
        if partner is None:
            raise InvalidInput(f"unknown partner {partner_id!r}", field=field)
        if partner.status != "active":
            raise InvalidInput(f"{partner.name} is {partner.status} and cannot receive referrals", field=field)
        expired = partner.licence_expires_on
        if expired is not None and expired < today:
            raise ScopeViolation(
                f"{partner.name}'s licence expired on {expired:%B} {expired.day}, {expired:%Y}: no referral can "
                "be offered to them until the directory holds a renewed licence",
                field=field,
                extra={"partner_id": partner_id, "licence_expires_on": str(expired)},
            )
        if partner.category not in assessment.categories:
            refusing = [r.code for r in assessment.reasons if partner.category not in r.categories]
            raise ScopeViolation(
                f"{partner.name} ({partner.category}) is outside the scope allowed for {', '.join(refusing)}",
                field=field,
                extra={"partner_id": partner_id, "reasons": refusing, "allowed": assessment.categories},
            )
        chosen.append(partner)
    return chosen


def matching_language(client: StoredClient) -> str | None:
    """The language to prefer partners for: the client's, unless it is English, which every
    partner here works in and which listings mostly leave out of the languages they name."""
    return None if client.language == DEFAULT_LANGUAGE else language_name(client.language)


def _new_reference() -> str:
    # Opaque, short enough to read over the phone; no client information in it.
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "HX-" + "".join(secrets.choice(alphabet) for _ in range(8))
