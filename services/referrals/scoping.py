"""Scoping a referral: what the scope-of-practice rules say for its reasons (an emergency stops
it and advice alone needs no partner, either recorded in the audit log; reasons that need
different kinds of partner are split into groups), and which partners suit it, best first, each
with why (their category, the client's location and language, how they answered past offers)."""

from __future__ import annotations

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import matching
from services.referrals.context import Context
from services.referrals.domain import AdviceOnly, EmergencyStop, MixedReasons
from services.referrals.intake import SuggestionQuery
from services.referrals.records import AdviceGiven, EmergencyAdvice, EmergencyStopRecord, Suggestion
from services.referrals.rules import Assessment, Reason
from services.referrals.storage import partner_store, referral_store
from shared import geo
from shared.auth import Staff
from shared.errors import InvalidInput
from shared.messages import PartnerSnapshot

# The audit log's action for an emergency stop: the instruction was given, no referral made.
EMERGENCY_STOP = "emergency_advice_given"
# The emergency stops list shows the newest this many.
STOPS_SHOWN = 500


async def assess(ctx: Context, *, staff: Staff, reasons: list[str], record_advice: bool = True) -> Assessment:
    """What the rules say for ``reasons``. An emergency is recorded in the audit log (the advice
    was given) and raised as :class:`EmergencyStop`. Advice reasons are recorded the same way
    (unless ``record_advice`` is False: the caller showed and recorded them already); advice
    alone, which needs no partner, is raised as :class:`AdviceOnly`."""
    assessment = ctx.rules.assess(reasons)
    if assessment.emergencies:
        await _record(ctx, staff=staff, action=EMERGENCY_STOP, reasons=assessment.emergencies)
        raise _emergency(assessment)
    if assessment.advice and record_advice:
        await _record(ctx, staff=staff, action="advice_given", reasons=assessment.advice)
    if not assessment.groups:
        raise _advice_only(ctx, assessment)
    return assessment


async def _record(ctx: Context, *, staff: Staff, action: str, reasons: list[Reason]) -> None:
    """That the instruction for ``reasons`` was given, in the audit log: which reasons, what was
    said, under which rules. Never the client, nor the therapist's note."""
    async with ctx.sessions.begin() as session:
        await referral_store.add_audit(
            session,
            at=ctx.clock(),
            actor=staff.email,
            action=action,
            referral_id=None,
            detail={
                "reasons": [r.code for r in reasons],
                "instruction": " ".join(dict.fromkeys(r.instruction for r in reasons)),
                "rules_version": ctx.rules.version,
            },
        )


async def emergency_stops(ctx: Context, *, staff: Staff) -> list[EmergencyStopRecord]:
    """The newest emergency stops (at most :data:`STOPS_SHOWN`), newest first, the reasons by their
    labels; for admins. The view is audited, as any view of the audit log's records."""
    async with ctx.sessions.begin() as session:
        entries = await referral_store.audit_entries(session, action=EMERGENCY_STOP, limit=STOPS_SHOWN)
        await referral_store.add_audit(
            session,
            at=ctx.clock(),
            actor=staff.email,
            action="emergency_stops_viewed",
            referral_id=None,
            detail={"shown": len(entries)},
        )
    return [
        EmergencyStopRecord(
            at=entry.at,
            staff_email=entry.actor,
            reasons=ctx.labels(list(entry.detail.get("reasons", []))),
            instruction=str(entry.detail.get("instruction", "")),
        )
        for entry in entries
    ]


async def suggest(ctx: Context, *, query: SuggestionQuery) -> list[Suggestion]:
    """Partners in scope for the query's reasons, best first, each with why."""
    return [suggestion for suggestion, _ in await ranked(ctx, query=query)]


async def ranked(
    ctx: Context,
    *,
    query: SuggestionQuery,
    assessment: Assessment | None = None,
    session: AsyncSession | None = None,
) -> list[tuple[Suggestion, PartnerSnapshot]]:
    """The suggestions for ``query`` (or for ``assessment``, one group's, when given), each with
    the partner it suggests. Reasons that need several referrals are refused, naming the groups.
    Read in the caller's ``session`` when given: a caller in a writing transaction must not wait
    for a second connection (SQLite's writers take turns, see shared.database)."""
    assessment = assessment or ctx.rules.assess(query.reasons)
    if assessment.emergencies:
        raise _emergency(assessment)
    if assessment.mixed:
        raise mixed(assessment)
    near = None
    if query.postal_code:
        near = geo.centroid(query.postal_code)
        if near is None:
            raise InvalidInput(f"{query.postal_code!r} is not a known US ZIP code", field="postal_code")
    if session is None:
        async with ctx.sessions() as own:
            candidates = await partner_store.snapshots(own, categories=assessment.categories)
            history = await ctx.history.of(own, [p.id for p in candidates])
    else:
        candidates = await partner_store.snapshots(session, categories=assessment.categories)
        history = await ctx.history.of(session, [p.id for p in candidates])
    suggestions = matching.rank(
        candidates,
        assessment,
        today=ctx.today(),
        near=near,
        near_label=(query.postal_code or "").strip()[:5],
        language=query.language,
        telehealth=query.telehealth,
        history=history,
        limit=query.limit,
    )
    by_id = {p.id: p for p in candidates}
    return [(suggestion, by_id[suggestion.partner_id]) for suggestion in suggestions]


def mixed(assessment: Assessment) -> MixedReasons:
    """The refusal of reasons that need different kinds of partner, naming the groups to split
    them into, most urgent first, as the new-referral page does."""
    return MixedReasons(
        f"these reasons need {len(assessment.groups)} kinds of partner: send one referral per group, "
        "most urgent first (see extra.groups)",
        field="reasons",
        extra={"groups": [g.summary() for g in assessment.groups]},
    )


def _advice_only(ctx: Context, assessment: Assessment) -> AdviceOnly:
    """Advice alone needs no partner: answered like an emergency, with the instruction and the
    state's reporting duties, and nothing created but the audit record."""
    advice = AdviceGiven(
        urgency="advice",
        instruction=assessment.advice_instruction(),
        reasons=[r.code for r in assessment.advice],
        reporting_duties=ctx.settings.clinic_reporting_duties,
    )
    return AdviceOnly(f"Advice, no referral: {advice.instruction}", field="reasons", extra=msgspec.to_builtins(advice))


def _emergency(assessment: Assessment) -> EmergencyStop:
    advice = EmergencyAdvice(
        urgency="emergency", instruction=assessment.instruction(), reasons=[r.code for r in assessment.emergencies]
    )
    return EmergencyStop(
        f"Emergency: do not refer. {advice.instruction}", field="reasons", extra=msgspec.to_builtins(advice)
    )
