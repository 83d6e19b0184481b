"""What a therapist submits to refer a client (the HTTP body of ``POST /api/v1/referrals``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec

from services.referrals.contact import NextStep, PreferredContact
from services.referrals.domain import ConsentScope

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(max_length=320)]
Phone = Annotated[str, msgspec.Meta(max_length=40)]
PostalCode = Annotated[str, msgspec.Meta(max_length=20)]
Language = Annotated[str, msgspec.Meta(max_length=40, description="a code such as en or es (or its English name)")]


class NewClient(msgspec.Struct, kw_only=True, frozen=True):
    """A new client record (the body of ``POST /api/v1/clients``)."""

    name: NonEmpty
    date_of_birth: date | None = None
    email: Email | None = None
    phone: Phone | None = None
    preferred_contact: PreferredContact | None = None
    language: Language | None = None
    postal_code: PostalCode | None = None
    # The client agreed to be emailed (a partner's details, when they are to make the call).
    email_consent: bool = False


class Client(msgspec.Struct, kw_only=True, frozen=True):
    """A referral's client: ``{"id"}`` of an existing client record, or the details of a new
    one (the first edition's inline object), which makes a new record. Never matched by name."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=36)] | None = None
    name: NonEmpty | None = None
    date_of_birth: date | None = None
    email: Email | None = None
    phone: Phone | None = None
    preferred_contact: PreferredContact | None = None
    language: Language | None = None
    postal_code: PostalCode | None = None
    email_consent: bool = False


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
    # Who makes the next call once a partner accepts.
    next_step: NextStep = "partner_contacts_client"


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
