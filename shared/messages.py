"""The messages Handoff's services exchange, defined once.

Events are past tense (``PartnerChanged``, ``EmailDelivery``), commands imperative
(``SendEmail``). They evolve by msgspec's schema-evolution rules: a new field always gets a
default, no field ever changes type, and a tag is never reused. Emails carry no client data by
construction: ``EmailContext`` has no field that could hold a client's name or health.

Every kind of email is named once, in :data:`EmailKind`: the referrals service sends only these,
and the notifier has a subject and templates for each (a unit test holds the two to this list).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

import msgspec


class Address(msgspec.Struct, kw_only=True, frozen=True):
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""


class Location(msgspec.Struct, kw_only=True, frozen=True):
    lat: float
    lon: float


class PartnerSnapshot(msgspec.Struct, kw_only=True, frozen=True):
    """Everything the referrals service may know about a partner: enough to match, offer and
    print a handout. Never the directory's private notes."""

    id: str
    slug: str
    name: str
    category: str
    email: str
    status: Literal["pending", "active", "paused", "archived"]
    accepting_new_clients: Literal["yes", "no", "waitlist"] = "yes"
    credentials: str = ""
    practice: str = ""
    phone: str | None = None
    website: str | None = None
    address: Address | None = None
    location: Location | None = None
    languages: list[str] = []
    telehealth: bool = False
    accepts_referrals_from: list[str] = []
    response_window_days: int | None = None
    specialties: list[str] = []
    hours: str = ""
    # Not accepting (or waitlist) until this day; None when open-ended or accepting.
    accepting_until: date | None = None
    # The day the partner's licence expires: from the next day it is offered no referral.
    licence_expires_on: date | None = None


class PartnerChanged(msgspec.Struct, kw_only=True, frozen=True, tag="partner_changed"):
    """Directory committed a change to a partner. ``version`` grows with every change of that
    partner, so a consumer keeps the newest snapshot and ignores older or repeated ones."""

    partner: PartnerSnapshot
    version: int
    changed_at: datetime


class PartnersChanged(msgspec.Struct, kw_only=True, frozen=True, tag="partners_changed"):
    """Directory committed changes to many partners at once (an import, a republish): their
    :class:`PartnerChanged` messages, carried together so that a consumer applies them in one
    transaction rather than one job each."""

    changes: list[PartnerChanged]


class PartnerContact(msgspec.Struct, kw_only=True, frozen=True):
    """How a client reaches one partner, as an email to the client lists it: the partner's own
    public details, nothing about the client or the referral. ``phone`` is written for people
    (``(727) 555-0199``), ``phone_link`` the same number for a ``tel:`` link (E.164, or "")."""

    name: str
    credentials: str = ""
    practice: str = ""
    phone: str = ""
    phone_link: str = ""
    address: Address | None = None
    hours: str = ""
    website: str = ""
    telehealth: bool = False


class EmailContext(msgspec.Struct, kw_only=True, frozen=True):
    """What an email may say. Deliberately no client fields: see the module docstring."""

    recipient_name: str = ""
    partner_name: str = ""
    reference: str = ""
    urgency: str = ""
    action_url: str = ""
    expires_at: datetime | None = None
    # Who makes the next call once a partner accepts: a choice of the therapist's, never anything
    # about the client (a Literal, so no free text can ride on it). "" when it does not apply.
    next_step: Literal["", "partner_contacts_client", "client_contacts_partner"] = ""
    # The recipient partner's own manage link (directory's /manage/{token}): every email to a
    # partner carries it, so that "we're full" is one click from any of them. "" otherwise.
    manage_url: str = ""
    # The recipient partner's inbox (referrals' /inbox/{token}): every offer it has from the clinic,
    # answered in one place. "" otherwise.
    inbox_url: str = ""
    # An email to a client (the client_* kinds): the partners they may contact, partner data only
    # (their public listing), and the language the email is written in (``en``, ``es``; "" is
    # English). Still nothing about the client: not their name, not the reasons, not the note.
    partners: list[PartnerContact] = []
    language: str = ""


EmailKind = Literal[
    "offer",
    "offer_reminder",
    "offer_withdrawn",
    # An urgent referral offered to several partners at once: another one accepted it first.
    "offer_taken",
    "offer_expired",
    "referral_accepted",
    "referral_declined",
    "referral_cancelled",
    "no_partner_left",
    "report_outcome",
    "outcome_reported",
    # From the directory to a partner: its manage link, asked for on the public page.
    "listing_manage_link",
    # The confirmation cycle: please confirm the listing, and the one reminder.
    "listing_confirm_request",
    "listing_confirm_reminder",
    # The "not accepting until" day came: are you taking new clients again?
    "listing_reopen",
    # The admin decided on changes the partner asked for (the note is on the manage page).
    "listing_change_approved",
    "listing_change_rejected",
    # To the clinic: a partner's licence expires within 30 days.
    "licence_expiring",
    # To the client, who agreed to be emailed, in their language: the partner who accepted and
    # expects their call (next step client_contacts_partner) ...
    "client_partner_details",
    # ... or, the referral having failed, the partners they may contact themselves (never one who
    # declined or let the offer expire) and, for an urgent one, to be seen today.
    "client_referral_failed",
]

# An email's kind is an EmailKind wherever code builds or reads one, and a plain string on the
# wire: the field was a string before the kinds were listed (no field ever changes type), and a
# notifier older than a new kind must still decode the email, so that it can report it failed
# ("unknown email kind") to the referral's timeline instead of dropping it undecoded.
if TYPE_CHECKING:
    _WireEmailKind = EmailKind
else:
    _WireEmailKind = str


class SendEmail(msgspec.Struct, kw_only=True, frozen=True, tag="send_email"):
    """Send one email. ``notification_id`` is unique per email and makes sending idempotent."""

    notification_id: str
    kind: _WireEmailKind
    to: str
    context: EmailContext
    referral_id: str | None = None


class EmailDelivery(msgspec.Struct, kw_only=True, frozen=True, tag="email_delivery"):
    """The notifier's report on one email: sent, deferred (will retry) or failed for good."""

    notification_id: str
    outcome: Literal["sent", "deferred", "failed"]
    at: datetime
    referral_id: str | None = None
    detail: str = ""
    # The email's kind, as its SendEmail said. None in reports from before it was carried.
    kind: _WireEmailKind | None = None


Message = PartnerChanged | PartnersChanged | SendEmail | EmailDelivery
