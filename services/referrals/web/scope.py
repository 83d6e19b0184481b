"""``GET /api/v1/scope/reasons``: the scope-of-practice rules a therapist chooses from."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec
from litestar import Request, get

from services.referrals.domain import Urgency
from services.referrals.rules import ReviewStatus
from services.referrals.web.guards import staff
from shared.openapi import STAFF, errors


class ClientAdviceOut(msgspec.Struct, kw_only=True):
    en: str
    es: str


class ReasonOut(msgspec.Struct, kw_only=True):
    code: str
    label: str
    group: str
    urgency: Annotated[
        Urgency,
        msgspec.Meta(
            description="emergency: no referral, call now; advice: no partner, the therapist shares the instruction "
            "(an emergency among the reasons still wins, a referral for the others goes ahead); urgent: same day; "
            "soon: within a week; routine"
        ),
    ]
    categories: list[str]
    guidance: str
    instruction: str = ""
    lay_wording: str = ""
    client_advice: ClientAdviceOut | None = None
    printed_handout: Annotated[
        bool, msgspec.Meta(description="false where a printed handout could endanger the client")
    ] = True
    sources: Annotated[list[str], msgspec.Meta(description="URLs the rule rests on")]
    review_status: Annotated[
        ReviewStatus,
        msgspec.Meta(description="proposed: not yet signed off by a licensed clinician; reviewed: signed off"),
    ]
    reviewed_by: str | None = None
    reviewed_on: date | None = None


class ReasonsOut(msgspec.Struct, kw_only=True):
    version: str
    reasons: list[ReasonOut]


@get(
    "/api/v1/scope/reasons",
    guards=[staff()],
    summary="Referral reasons with urgency, allowed categories and review status",
    responses=errors(401, 503),
    security=STAFF,
)
async def list_reasons(request: Request) -> ReasonsOut:
    rules = request.app.state.runtime.rules
    return ReasonsOut(
        version=rules.version,
        reasons=[
            ReasonOut(
                code=r.code,
                label=r.label,
                group=r.group,
                urgency=r.urgency,
                categories=list(r.categories),
                guidance=r.guidance,
                instruction=r.instruction,
                lay_wording=r.lay_wording,
                client_advice=r.client_advice and ClientAdviceOut(en=r.client_advice.en, es=r.client_advice.es),
                printed_handout=r.printed_handout,
                sources=list(r.sources),
                review_status=r.review_status or "proposed",
                reviewed_by=r.reviewed_by or None,
                reviewed_on=r.reviewed_on,
            )
            for r in rules.reasons.values()
        ],
    )
