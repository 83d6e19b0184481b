"""Scoping a referral: what the scope-of-practice rules say for its reasons (an emergency stops
it, with the advice recorded in the audit log), and which partners suit it, best first, each
with why (their category, the client's location and language, how they answered past offers)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import matching
from services.referrals.context import Context
from services.referrals.domain import EmergencyStop
from services.referrals.intake import SuggestionQuery
from services.referrals.records import EmergencyAdvice, Suggestion
from services.referrals.rules import Assessment
from services.referrals.storage import offer_store, outcome_store, partner_store, referral_store
from shared import geo
from shared.auth import Staff
from shared.errors import InvalidInput
from shared.messages import PartnerSnapshot


async def assess(ctx: Context, *, staff: Staff, reasons: list[str]) -> Assessment:
    """What the rules say for ``reasons``. An emergency is recorded in the audit log (the advice
    was given) and raised as :class:`EmergencyStop`."""
    assessment = ctx.rules.assess(reasons)
    if assessment.emergencies:
        async with ctx.sessions.begin() as session:
            await referral_store.add_audit(
                session,
                at=ctx.clock(),
                actor=staff.email,
                action="emergency_advice_given",
                referral_id=None,
                detail={
                    "reasons": [r.code for r in assessment.emergencies],
                    "instruction": assessment.instruction(),
                    "rules_version": ctx.rules.version,
                },
            )
        raise _emergency(assessment)
    return assessment


async def suggest(ctx: Context, *, query: SuggestionQuery) -> list[Suggestion]:
    """Partners in scope for the query's reasons, best first, each with why."""
    return [suggestion for suggestion, _ in await ranked(ctx, query=query)]


async def ranked(ctx: Context, *, query: SuggestionQuery) -> list[tuple[Suggestion, PartnerSnapshot]]:
    """The suggestions for ``query``, each with the partner it suggests."""
    assessment = ctx.rules.assess(query.reasons)
    if assessment.emergencies:
        raise _emergency(assessment)
    near = None
    if query.postal_code:
        near = geo.centroid(query.postal_code)
        if near is None:
            raise InvalidInput(f"{query.postal_code!r} is not a known US ZIP code", field="postal_code")
    async with ctx.sessions() as session:
        candidates = await partner_store.snapshots(session, categories=assessment.categories)
        history = await _history(session, [p.id for p in candidates])
    suggestions = matching.rank(
        candidates,
        assessment,
        today=clinic_today(ctx),
        near=near,
        near_label=(query.postal_code or "").strip()[:5],
        language=query.language,
        telehealth=query.telehealth,
        history=history,
        limit=query.limit,
    )
    by_id = {p.id: p for p in candidates}
    return [(suggestion, by_id[suggestion.partner_id]) for suggestion in suggestions]


def clinic_today(ctx: Context) -> date:
    """Today in the clinic's time zone: a licence is valid through its expiry day there."""
    return ctx.clock().astimezone(ZoneInfo(ctx.settings.clinic_timezone)).date()


async def _history(session: AsyncSession, partner_ids: list[str]) -> dict[str, matching.PartnerHistory]:
    """Each partner's answers to past offers (acceptance rate, median time to accept) and the
    referrals they saw through to a completed visit."""
    if not partner_ids:
        return {}
    answers = await offer_store.answers_by_partner(session, partner_ids)
    completed = await outcome_store.completed_by_partner(session, partner_ids)
    return {
        pid: msgspec.structs.replace(matching.history_from(closed), completed=completed.get(pid, 0))
        for pid, closed in answers.items()
    }


def _emergency(assessment: Assessment) -> EmergencyStop:
    advice = EmergencyAdvice(
        urgency="emergency", instruction=assessment.instruction(), reasons=[r.code for r in assessment.emergencies]
    )
    return EmergencyStop(
        f"Emergency: do not refer. {advice.instruction}", field="reasons", extra=msgspec.to_builtins(advice)
    )
