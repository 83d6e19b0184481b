"""Ranking partners for a set of reasons: allowed categories first, then what makes a partner a
good fit for this client. Every suggestion says why it ranks where it does."""

from __future__ import annotations

from services.referrals.records import Suggestion
from services.referrals.rules import Assessment
from shared.messages import PartnerSnapshot


def rank(
    partners: list[PartnerSnapshot],
    assessment: Assessment,
    *,
    language: str | None = None,
    telehealth: bool | None = None,
    limit: int = 5,
) -> list[Suggestion]:
    """The best ``limit`` partners in scope for ``assessment``, best first."""
    preference = {category: index for index, category in enumerate(assessment.categories)}
    scored: list[tuple[float, str, Suggestion]] = []
    for partner in partners:
        if partner.status != "active" or partner.category not in preference:
            continue
        if partner.accepting_new_clients == "no":
            continue
        why = []
        rank_in_scope = preference[partner.category]
        score = 100.0 - 10 * rank_in_scope
        why.append("first choice for these reasons" if rank_in_scope == 0 else f"in scope ({partner.category})")
        if partner.accepting_new_clients == "yes":
            score += 5
            why.append("accepting new clients")
        else:
            why.append("waitlist for new clients")
        if language and language.lower() in (lang.lower() for lang in partner.languages):
            score += 4
            why.append(f"speaks {language}")
        if telehealth and partner.telehealth:
            score += 3
            why.append("offers telehealth")
        suggestion = Suggestion(partner_id=partner.id, name=partner.name, category=partner.category, score=score, why=why)
        scored.append((-score, partner.name.lower(), suggestion))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [suggestion for *_, suggestion in scored[:limit]]
