"""Issuing a referral: the therapist's draft held to the scope rules and the client's consent,
its partners chosen (the therapist's own choice, each in scope, or the best suggestions), stored
with its queue of offers and offered to the first partner, all in one transaction. Reasons that
need different kinds of partner go as one referral per group, sent together under one consent
(:func:`create_together`); the API refuses them as one referral, naming the groups. With an
Idempotency-Key, the same request makes its referral(s) once however often it is sent."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import clients, offering, queries, scoping, unit_of_work
from services.referrals.contact import DEFAULT_LANGUAGE, language_name
from services.referrals.context import Context
from services.referrals.domain import ScopeViolation, check_consent, waitlist_refused
from services.referrals.identifiers import check_note
from services.referrals.intake import ReferralDraft, SuggestionQuery
from services.referrals.records import ReferralRecord
from services.referrals.rules import Assessment, Group
from services.referrals.storage import client_store, partner_store, referral_store
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

    Reasons that need different kinds of partner are refused (:class:`MixedReasons`, naming the
    groups) so that the caller splits them as :func:`create_together` does; advice reasons are
    recorded and never reach the partner.

    The key is stored with its answer in the referral's own transaction: a request that fails
    part way (the database busy or away) leaves no trace, so sending it again is always safe,
    and the same request sent twice at once waits for the first and replays it."""
    key = _key(staff, idempotency_key, draft)
    if key is not None:
        stored = await _replay(ctx, key)
        if stored is not None:
            return msgspec.convert(stored, ReferralRecord)
    assessment = await scoping.assess(ctx, staff=staff, reasons=list(draft.reasons))
    if assessment.mixed:
        raise scoping.mixed(assessment)
    group = assessment.groups[0]

    async def issue(session: AsyncSession) -> list[ReferralRecord]:
        client, new_client = await _client(ctx, session, staff=staff, draft=draft)
        chosen = await _choose_partners(ctx, session, draft=draft, assessment=group.assessment(), client=client)
        return await _issue(
            ctx,
            session,
            staff=staff,
            draft=draft,
            client=client,
            new_client=new_client,
            plan=[(group, chosen)],
            key=key,
            together=False,
        )

    return (await _in_one_transaction(ctx, issue, key=key, together=False))[0]


async def create_together(
    ctx: Context,
    *,
    staff: Staff,
    draft: ReferralDraft,
    partner_ids: list[list[str] | None],
    idempotency_key: str | None = None,
) -> list[ReferralRecord]:
    """Issue one referral per group of the draft's reasons (see :meth:`Rules.groups`), most
    urgent first, under the draft's one consent, in one transaction: each with its own partners
    (``partner_ids[i]`` for group ``i``, in the therapist's order, or None for the best
    suggestions), offers and timeline, and each linked to the others. The draft's own
    ``partner_ids`` is not used.

    Advice reasons are not recorded again (the new-referral page showed and recorded them) and
    never reach a partner. The same ``idempotency_key`` and body give the same referrals once."""
    key = _key(staff, idempotency_key, _Together(draft=draft, partner_ids=partner_ids))
    if key is not None:
        stored = await _replay(ctx, key)
        if stored is not None:
            return msgspec.convert(stored, list[ReferralRecord])
    assessment = await scoping.assess(ctx, staff=staff, reasons=list(draft.reasons), record_advice=False)
    if len(partner_ids) != len(assessment.groups):
        raise InvalidInput(
            f"these reasons make {len(assessment.groups)} referral(s): give partners for each", field="partner_ids"
        )

    async def issue(session: AsyncSession) -> list[ReferralRecord]:
        client, new_client = await _client(ctx, session, staff=staff, draft=draft)
        plan = []
        for index, (group, ids) in enumerate(zip(assessment.groups, partner_ids, strict=True)):
            part = msgspec.structs.replace(draft, reasons=group.codes, partner_ids=ids)
            chosen = await _choose_partners(
                ctx,
                session,
                draft=part,
                assessment=group.assessment(),
                client=client,
                field=f"groups[{index}].partner_ids",
            )
            plan.append((group, chosen))
        return await _issue(
            ctx,
            session,
            staff=staff,
            draft=draft,
            client=client,
            new_client=new_client,
            plan=plan,
            key=key,
            together=True,
        )

    return await _in_one_transaction(ctx, issue, key=key, together=True)


async def _in_one_transaction(
    ctx: Context,
    issue: Callable[[AsyncSession], Awaitable[list[ReferralRecord]]],
    *,
    key: _Key | None,
    together: bool,
) -> list[ReferralRecord]:
    """``issue`` in one transaction: the client and partners it reads are those it writes with,
    and it is all or nothing. The same Idempotency-Key committed meanwhile replays its answer."""
    try:
        async with ctx.sessions.begin() as session:
            return await issue(session)
    except IntegrityError:
        # The key is unique: the same request, sent at the same moment, committed first.
        stored = await _replay(ctx, key) if key is not None else None
        if stored is None:
            raise
        return msgspec.convert(stored if together else [stored], list[ReferralRecord])


async def _client(
    ctx: Context, session: AsyncSession, *, staff: Staff, draft: ReferralDraft
) -> tuple[StoredClient, bool]:
    """The draft's client (an existing record, or a new one not stored yet: True) and, since
    every offered partner reads the note before accepting, the check that nothing in it
    identifies them."""
    client, new_client = await clients.for_referral(
        ctx, session, staff=staff, given=draft.client, next_step=draft.next_step
    )
    check_note(draft.note, client_name=client.name, today=ctx.clock().date())
    return client, new_client


class _Together(msgspec.Struct, frozen=True):
    """What an Idempotency-Key of :func:`create_together` stands for."""

    draft: ReferralDraft
    partner_ids: list[list[str] | None]


def _key(staff: Staff, idempotency_key: str | None, body: msgspec.Struct) -> _Key | None:
    if not idempotency_key:
        return None
    if len(idempotency_key) > 200:
        raise InvalidInput("Idempotency-Key must be at most 200 characters", field="Idempotency-Key")
    return _Key(staff.id, idempotency_key, hashlib.sha256(msgspec.json.encode(body)).hexdigest())


async def _replay(ctx: Context, key: _Key) -> object | None:
    """The answer stored under an Idempotency-Key, None if there is none; 422 when the key was
    used with another body."""
    async with ctx.sessions() as session:
        stored = await referral_store.stored_answer(session, staff_id=key.staff_id, key=key.key)
    if stored is None:
        return None
    if stored.body_hash != key.body_hash:
        raise InvalidInput("this Idempotency-Key was used with a different request body", field="Idempotency-Key")
    return stored.response


async def _issue(
    ctx: Context,
    session: AsyncSession,
    *,
    staff: Staff,
    draft: ReferralDraft,
    client: StoredClient,
    new_client: bool,
    plan: list[tuple[Group, list[PartnerSnapshot]]],
    key: _Key | None,
    together: bool,
) -> list[ReferralRecord]:
    """Store the client when ``new_client``, then one referral per (group, partners) with its
    queue of offers, offer each to its first partner(s), and store the answer under ``key``: all in
    the caller's transaction. Referrals sent ``together`` share a batch and say so on their
    timelines."""
    vocabulary = categories.load()
    check_consent(
        given=draft.consent.given,
        scope=list(draft.consent.scope),
        kinds_needed={vocabulary[p.category].kind for _, chosen in plan for p in chosen},
    )
    now = ctx.clock()
    batch_id = str(uuid.uuid4()) if together and len(plan) > 1 else None
    made = [
        StoredReferral(
            id=str(uuid.uuid4()),
            reference=_new_reference(),
            status="requested",
            urgency=group.urgency,
            reasons=group.codes,
            note=draft.note,
            client_id=client.id,
            next_step=draft.next_step,
            consent={**msgspec.to_builtins(draft.consent), "recorded_at": now.isoformat(), "recorded_by": staff.email},
            created_by=staff.id,
            created_at=now,
            updated_at=now,
            batch_id=batch_id,
        )
        for group, _ in plan
    ]
    records = []
    if new_client:
        await client_store.insert_client(session, client)
    for referral, (group, chosen) in zip(made, plan, strict=True):
        await referral_store.insert_referral(session, referral)
        at_once = min(len(chosen), offering.at_once(ctx, urgency=referral.urgency))
        if len(chosen) == 1:
            to = "1 partner"
        else:
            to = f"{len(chosen)} partners, " + ("one at a time" if at_once == 1 else f"{at_once} at a time")
        why = f"issued for {ctx.labels(group.codes)} to {to}"
        others = [f"{r.reference} ({r.urgency})" for r in made if r is not referral]
        if others:
            why += f"; sent together with {', '.join(others)} under one consent"
        await unit_of_work.event(
            ctx,
            session,
            referral_id=referral.id,
            actor=staff.email,
            from_status=None,
            to_status="requested",
            why=why,
        )
        await offering.offer_first(ctx, session, referral=referral, partners=chosen)
    for referral in made:
        # Read back in the same transaction: what was committed, without another round trip.
        records.append(await queries.issued(session, referral, client=client, new_client=new_client, together=made))
    if key is not None:
        answer = [msgspec.to_builtins(r) for r in records] if together else msgspec.to_builtins(records[0])
        await referral_store.store_answer(
            session, staff_id=key.staff_id, key=key.key, body_hash=key.body_hash, response=answer, at=now
        )
    return records


async def _choose_partners(
    ctx: Context,
    session: AsyncSession,
    *,
    draft: ReferralDraft,
    assessment: Assessment,
    client: StoredClient,
    field: str = "partner_ids",
) -> list[PartnerSnapshot]:
    """The therapist's partners, in their order, each known, active, licensed, in scope and able
    to see the client in time; or, when they chose none, every suggestion for the reasons, best
    first."""
    if draft.partner_ids is None:
        near = client.postal_code if client.postal_code and geo.centroid(client.postal_code) else None
        ranked = await scoping.ranked(
            ctx,
            query=SuggestionQuery(reasons=list(draft.reasons), postal_code=near, language=matching_language(client)),
            assessment=assessment,
            session=session,
        )
        if not ranked:
            raise InvalidInput(
                "no active partner in the directory can take these reasons",
                field="reasons",
                extra={"categories": assessment.categories},
            )
        return [partner for _, partner in ranked]
    if not draft.partner_ids:
        raise InvalidInput("give at least one partner, or leave partner_ids out for suggestions", field=field)
    if len(set(draft.partner_ids)) != len(draft.partner_ids):
        raise InvalidInput("a partner is listed twice", field=field)
    found = {p.id: p for p in await partner_store.snapshots(session, ids=list(draft.partner_ids))}
    chosen = []
    today = ctx.today()
    for index, partner_id in enumerate(draft.partner_ids):
        at = f"{field}[{index}]"
        partner = found.get(partner_id)
        if partner is None:
            raise InvalidInput(f"unknown partner {partner_id!r}", field=at)
        if partner.status != "active":
            raise InvalidInput(f"{partner.name} is {partner.status} and cannot receive referrals", field=at)
        expired = partner.licence_expires_on
        if expired is not None and expired < today:
            raise ScopeViolation(
                f"{partner.name}'s licence expired on {expired:%B} {expired.day}, {expired:%Y}: no referral can "
                "be offered to them until the directory holds a renewed licence",
                field=at,
                extra={"partner_id": partner_id, "licence_expires_on": str(expired)},
            )
        if partner.category not in assessment.categories:
            refusing = [r.code for r in assessment.reasons if partner.category not in r.categories]
            raise ScopeViolation(
                f"{partner.name} ({partner.category}) is outside the scope allowed for {', '.join(refusing)}",
                field=at,
                extra={"partner_id": partner_id, "reasons": refusing, "allowed": assessment.categories},
            )
        if waitlist_refused(urgency=assessment.urgency, accepting_new_clients=partner.accepting_new_clients):
            raise ScopeViolation(
                f"{partner.name} has a waitlist for new clients and cannot see an urgent referral today",
                field=at,
                extra={"partner_id": partner_id, "accepting_new_clients": "waitlist", "urgency": "urgent"},
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
