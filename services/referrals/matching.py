"""Ranking partners for a set of reasons: allowed categories first, then what makes a partner a
good fit for this client (distance, accepting new clients, language, telehealth, how the partner
has answered past offers). Every suggestion says why it ranks where it does.

Pure: the caller brings the partners, the client's location and each partner's history.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from datetime import date, datetime

import msgspec

from services.referrals.domain import waitlist_refused
from services.referrals.records import Suggestion
from services.referrals.rules import Assessment
from shared import geo
from shared.messages import Location, PartnerSnapshot

# Weights, in points. A step down the rules' category preference (10) outweighs any one other
# factor, so "allowed categories first" holds; within a category the rest decide.
CATEGORY_STEP = 10.0
ACCEPTING = 5.0
# Distance costs up to DISTANCE_MAX points, linearly up to DISTANCE_FAR_KM and flat beyond.
DISTANCE_MAX = 8.0
DISTANCE_FAR_KM = 50.0
LANGUAGE = 4.0
TELEHEALTH = 3.0
# History: up to HISTORY_MAX points for the acceptance rate, minus up to SLOW_MAX for a slow
# median answer. A partner with too little history gets the middle, so newcomers are not starved.
HISTORY_MAX = 6.0
# Closing the loop: up to LOOP_MAX points for the share of accepted referrals the partner saw
# through to a reported completed visit.
LOOP_MAX = 3.0
SLOW_MAX = 2.0
SLOW_HOURS = 48.0
MIN_HISTORY = 3


class PartnerHistory(msgspec.Struct, kw_only=True, frozen=True):
    """How a partner answered past offers (closed ones only: accepted, declined or expired)."""

    answered: int
    accepted: int
    median_hours_to_accept: float | None = None
    # Accepted referrals the partner reported as completed (from the outcome reports).
    completed: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.answered if self.answered else 0.0

    @property
    def completion_rate(self) -> float:
        return min(1.0, self.completed / self.accepted) if self.accepted else 0.0


def history_from(offers: Iterable[tuple[str, datetime | None, datetime | None]]) -> PartnerHistory:
    """A partner's history from its closed offers, given as ``(status, offered_at, responded_at)``."""
    answered = accepted = 0
    hours: list[float] = []
    for status, offered_at, responded_at in offers:
        if status not in ("accepted", "declined", "expired"):
            continue
        answered += 1
        if status == "accepted":
            accepted += 1
            if offered_at is not None and responded_at is not None:
                hours.append(max(0.0, (responded_at - offered_at).total_seconds() / 3600))
    return PartnerHistory(
        answered=answered, accepted=accepted, median_hours_to_accept=statistics.median(hours) if hours else None
    )


def partner_location(partner: PartnerSnapshot) -> Location | None:
    """The partner's coordinates, or its ZIP's centre when the directory has no coordinates."""
    if partner.location is not None:
        return partner.location
    if partner.address is not None and partner.address.postal_code:
        return geo.centroid(partner.address.postal_code)
    return None


def licence_expired(partner: PartnerSnapshot, today: date) -> bool:
    """Whether the partner's licence expired before ``today`` (valid through its expiry day)."""
    return partner.licence_expires_on is not None and partner.licence_expires_on < today


def rank(
    partners: list[PartnerSnapshot],
    assessment: Assessment,
    *,
    today: date | None = None,
    near: Location | None = None,
    near_label: str = "",
    language: str | None = None,
    telehealth: bool | None = None,
    history: Mapping[str, PartnerHistory] | None = None,
    limit: int = 5,
) -> list[Suggestion]:
    """The best ``limit`` partners in scope for ``assessment``, best first. ``near`` is the
    client's location (``near_label`` names it in the reasons, e.g. the ZIP). A partner whose
    licence expired before ``today`` is left out, and so is one with a waitlist for an urgent
    assessment; one not accepting new clients ranks after every partner that is, saying so (and
    until when)."""
    preference = {category: index for index, category in enumerate(assessment.categories)}
    history = history or {}
    scored: list[tuple[bool, float, float, str, Suggestion]] = []
    for partner in partners:
        if partner.status != "active" or partner.category not in preference:
            continue
        if today is not None and licence_expired(partner, today):
            continue
        if waitlist_refused(urgency=assessment.urgency, accepting_new_clients=partner.accepting_new_clients):
            continue
        closed = partner.accepting_new_clients == "no"
        why: list[str] = []
        rank_in_scope = preference[partner.category]
        score = 100.0 - CATEGORY_STEP * rank_in_scope
        why.append(
            "first choice for these reasons"
            if rank_in_scope == 0
            else f"in scope ({partner.category}, choice {rank_in_scope + 1} for these reasons)"
        )

        distance = None
        if near is not None:
            where = partner_location(partner)
            if where is not None:
                distance = round(geo.distance_km(near, where), 1)
                score -= DISTANCE_MAX * min(distance, DISTANCE_FAR_KM) / DISTANCE_FAR_KM
                why.append(f"{distance:g} km from {near_label or 'the client'}")
            else:
                # Unknown is not near: ranked as if at the far limit.
                score -= DISTANCE_MAX
                why.append("distance unknown (no address on file)")

        until = f" until {_day(partner.accepting_until)}" if partner.accepting_until else ""
        if partner.accepting_new_clients == "yes":
            score += ACCEPTING
            why.append("accepting new clients")
        elif closed:
            why.append(f"ranked last: not accepting new clients{until}")
        else:
            why.append(f"waitlist for new clients{until}")
        if language and language.lower() in (lang.lower() for lang in partner.languages):
            score += LANGUAGE
            why.append(f"speaks {language}")
        if telehealth and partner.telehealth:
            score += TELEHEALTH
            why.append("offers telehealth")

        past = history.get(partner.id)
        if past is None or past.answered < MIN_HISTORY:
            score += HISTORY_MAX / 2
            why.append("little referral history yet" if past and past.answered else "no referral history yet")
        else:
            score += HISTORY_MAX * past.acceptance_rate
            line = f"accepted {past.accepted} of {past.answered} offers ({past.acceptance_rate:.0%})"
            if past.median_hours_to_accept is not None:
                score -= SLOW_MAX * min(past.median_hours_to_accept, SLOW_HOURS) / SLOW_HOURS
                line += f", usually within {_duration(past.median_hours_to_accept)}"
            why.append(line)
            if past.accepted >= MIN_HISTORY:
                score += LOOP_MAX * past.completion_rate
                why.append(f"reported a completed visit for {past.completed} of {past.accepted} accepted referrals")

        suggestion = Suggestion(
            partner_id=partner.id,
            name=partner.name,
            category=partner.category,
            score=round(score, 2),
            why=why,
            distance_km=distance,
        )
        far = distance if distance is not None else float("inf")
        scored.append((closed, -score, far, partner.name.lower(), suggestion))
    scored.sort(key=lambda item: item[:4])
    return [item[4] for item in scored[:limit]]


def _day(day: date) -> str:
    return f"{day:%B} {day.day}, {day:%Y}"


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{max(1, round(hours * 60))} min"
    if hours < 48:
        return f"{round(hours)} h"
    return f"{round(hours / 24)} days"
