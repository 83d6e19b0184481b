"""What a therapist submits to refer a client (the HTTP body of ``POST /api/v1/referrals``)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from services.referrals.domain import ConsentScope

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Client(msgspec.Struct, kw_only=True, frozen=True):
    name: NonEmpty
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    postal_code: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    language: Annotated[str, msgspec.Meta(max_length=40)] | None = None


class Consent(msgspec.Struct, kw_only=True, frozen=True):
    given: bool
    method: Literal["verbal", "written", "electronic"]
    scope: Annotated[list[ConsentScope], msgspec.Meta(min_length=1)]
    # Who gave it, when it was recorded: defaults to the client, now.
    given_by: str = "client"


class ReferralDraft(msgspec.Struct, kw_only=True, frozen=True):
    client: Client
    consent: Consent
    reasons: Annotated[list[Annotated[str, msgspec.Meta(max_length=80)]], msgspec.Meta(min_length=1, max_length=20)]
    note: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    partner_ids: Annotated[list[str], msgspec.Meta(max_length=20)] | None = None


class SuggestionQuery(msgspec.Struct, kw_only=True, frozen=True):
    reasons: Annotated[list[str], msgspec.Meta(min_length=1, max_length=20)]
    postal_code: str | None = None
    language: str | None = None
    telehealth: bool | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5


class CancelRequest(msgspec.Struct, kw_only=True, frozen=True):
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class HoldRequest(msgspec.Struct, kw_only=True, frozen=True):
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class ForwardRequest(msgspec.Struct, kw_only=True, frozen=True):
    partner_id: Annotated[str, msgspec.Meta(min_length=1, max_length=36)]
