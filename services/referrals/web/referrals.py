"""Staff JSON API for referrals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from services.referrals.domain import TRANSITIONS
from services.referrals.intake import CancelRequest, ForwardRequest, HoldRequest, ReferralDraft, SuggestionQuery
from services.referrals.records import ReferralRecord, Suggestion
from services.referrals.service import Referrals
from services.referrals.web.guards import staff
from shared.errors import InvalidInput
from shared.openapi import STAFF, errors


class ReferralController(Controller):
    path = "/api/v1/referrals"
    guards = [staff("admin", "therapist")]
    security = STAFF
    tags = ["referrals"]

    @post(
        "/suggestions",
        status_code=200,
        summary="Ranked partners for a set of reasons",
        description="Reasons that need different kinds of partner answer 422 with `extra.groups`, as "
        "`POST /api/v1/referrals` does: ask for each group's partners on its own. For an urgent set, "
        "partners with a waitlist are left out.",
        responses=errors(400, 401, 403, 422, 503),
    )
    async def suggestions(
        self, referrals: NamedDependency[Referrals], data: JSONBody[SuggestionQuery]
    ) -> list[Suggestion]:
        return await referrals.suggest(query=data)

    @post(
        "/",
        status_code=201,
        summary="Issue a referral (honours Idempotency-Key)",
        description="The same Idempotency-Key with the same body answers with the referral it made; "
        "with another body, 422. The reasons must suit one kind of partner; otherwise 422 with "
        '`extra.key = "reasons"`: an emergency reason gives `extra.urgency = "emergency"` and the '
        'instruction; advice reasons alone (abuse disclosure) give `extra.urgency = "advice"`, the '
        "instruction and `extra.reporting_duties` (both create nothing but the audit record); reasons "
        "that need different kinds of partner give `extra.groups`, one `{reasons, urgency, categories}` "
        "per referral to send, most urgent first. Advice beside other reasons is recorded and never "
        "reaches the partner. Waitlisted partners cannot take an urgent referral.",
        responses=errors(400, 401, 403, 422, 503),
    )
    async def create(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        data: JSONBody[ReferralDraft],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)] = None,
    ) -> ReferralRecord:
        return await referrals.create(staff=request.user, draft=data, idempotency_key=idempotency_key)

    @get("/", summary="Referrals, newest first", responses=errors(400, 401, 403, 422, 503))
    async def list_referrals(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        status: FromQuery[str | None] = None,
        partner: FromQuery[str | None] = None,
        # Taken as text and read strictly: Litestar's own datetime parameters also take a number
        # as a Unix time, which the document (and a reader of it) would not expect.
        since: Annotated[
            str | None,
            QueryParameter(
                description="only referrals created at or after this date-time (RFC 3339)",
                schema_extra={"format": "date-time"},
            ),
        ] = None,
        needs_attention: Annotated[
            bool | None,
            QueryParameter(
                description="true: only referrals a therapist must act on (an email that could not be delivered, "
                "or no partner left); false: only the others"
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[ReferralRecord]:
        if status is not None and status not in TRANSITIONS:
            raise InvalidInput(f"unknown status {status!r}", field="status")
        try:
            after = None if since is None else msgspec.convert(since, datetime)
        except msgspec.ValidationError:
            raise ValidationException(
                "Validation failed for GET /api/v1/referrals",
                extra=[
                    {
                        "message": "Expected a date-time such as 2025-01-31T09:00:00Z",
                        "key": "since",
                        "source": "query",
                    }
                ],
            ) from None
        return await referrals.list(
            staff=request.user,
            status=status,
            partner_id=partner,
            since=after,
            needs_attention=needs_attention,
            limit=limit,
        )

    @get(
        "/{referral_id:str}",
        summary="One referral with its offers and timeline",
        responses=errors(400, 401, 403, 404, 503),
    )
    async def get_referral(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> ReferralRecord:
        return await referrals.get(staff=request.user, referral_id=referral_id)

    @post(
        "/{referral_id:str}/cancel",
        status_code=200,
        summary="Cancel a referral; its partner is told",
        responses=errors(400, 401, 403, 404, 409, 422, 503),
    )
    async def cancel(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        referral_id: FromPath[str],
        data: JSONBody[CancelRequest | None] = None,
    ) -> ReferralRecord:
        reason = data.reason if data else ""
        return await referrals.cancel(staff=request.user, referral_id=referral_id, reason=reason)

    @post(
        "/{referral_id:str}/hold",
        status_code=200,
        summary="Put a referral on hold; a waiting offer is withdrawn",
        responses=errors(400, 401, 403, 404, 409, 422, 503),
    )
    async def hold(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        referral_id: FromPath[str],
        data: JSONBody[HoldRequest | None] = None,
    ) -> ReferralRecord:
        return await referrals.hold(staff=request.user, referral_id=referral_id, reason=data.reason if data else "")

    @post(
        "/{referral_id:str}/resume",
        status_code=200,
        summary="Take a referral off hold",
        responses=errors(400, 401, 403, 404, 409, 503),
    )
    async def resume(
        self, request: Request, referrals: NamedDependency[Referrals], referral_id: FromPath[str]
    ) -> ReferralRecord:
        return await referrals.resume(staff=request.user, referral_id=referral_id)

    @post(
        "/{referral_id:str}/offers/{offer_id:str}/accepted-by-phone",
        status_code=200,
        summary="Record that a partner accepted the referral by phone",
        description="Accepts on the partner's behalf (audited): the other partners still deciding are withdrawn "
        "and told, and the partner is emailed the link to report the outcome.",
        responses=errors(400, 401, 403, 404, 409, 503),
    )
    async def accepted_by_phone(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        referral_id: FromPath[str],
        offer_id: FromPath[str],
    ) -> ReferralRecord:
        return await referrals.accept_by_phone(staff=request.user, referral_id=referral_id, offer_id=offer_id)

    @post(
        "/{referral_id:str}/forward",
        status_code=200,
        summary="Offer a declined, failed or held referral to a partner of the therapist's choice",
        responses=errors(400, 401, 403, 404, 409, 422, 503),
    )
    async def forward(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        referral_id: FromPath[str],
        data: JSONBody[ForwardRequest],
    ) -> ReferralRecord:
        return await referrals.forward(staff=request.user, referral_id=referral_id, partner_id=data.partner_id)
