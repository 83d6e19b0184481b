"""``GET /api/v1/scope/reasons``: the scope-of-practice rules a therapist chooses from."""

from __future__ import annotations

import msgspec
from litestar import Request, get

from services.referrals.web.guards import staff
from shared.openapi import STAFF, errors


class ReasonOut(msgspec.Struct, kw_only=True):
    code: str
    label: str
    group: str
    urgency: str
    categories: list[str]
    guidance: str
    instruction: str = ""


class ReasonsOut(msgspec.Struct, kw_only=True):
    version: str
    reasons: list[ReasonOut]


@get(
    "/api/v1/scope/reasons",
    guards=[staff()],
    summary="Referral reasons with urgency and allowed categories",
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
            )
            for r in rules.reasons.values()
        ],
    )
