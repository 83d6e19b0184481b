"""What the service answers with: referrals with their offers and timeline, suggestions, the
dashboard's figures, what a partner sees behind a link, the client's handout, a sweep's report."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from shared.messages import PartnerSnapshot


class OfferRecord(msgspec.Struct, kw_only=True):
    id: str
    partner_id: str
    partner_name: str
    position: int
    status: str
    offered_at: datetime | None
    expires_at: datetime | None
    responded_at: datetime | None = None
    decline_reason: str | None = None
    decline_note: str | None = None  # the partner's own words when declining, for the therapist
    # When the sweep reminded the partner: the offer is past half its deadline, unanswered.
    reminded_at: datetime | None = None
    # The partner's phone (E.164) from the directory, "" when none: urgent offers are phoned.
    partner_phone: str = ""


# The actor of the timeline's lines noting the notifier's delivery reports (services.referrals.inbox).
DELIVERY_ACTOR = "notifier"


class EmailNote(msgspec.Struct, kw_only=True):
    """An email a timeline step sent, and what became of it."""

    kind: str  # a shared.messages.EmailKind
    to: str
    staged_at: datetime
    # waiting (not reported on yet), sent, deferred (to be retried) or failed (for good).
    delivery: str = "waiting"
    delivered_at: datetime | None = None
    detail: str = ""


class TimelineEntry(msgspec.Struct, kw_only=True):
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    why: str
    id: int | None = None
    # The emails this step sent (the notifier's reports on them are also lines of their own,
    # by DELIVERY_ACTOR).
    emails: list[EmailNote] = []


class OutcomeRecord(msgspec.Struct, kw_only=True):
    """One outcome report from the partner who accepted."""

    outcome: str
    reported_at: datetime
    partner_id: str
    booked_for: date | None = None
    clearance: str | None = None
    areas_to_avoid: str = ""
    pressure_limit: str = ""
    note: str = ""


class ClientRecord(msgspec.Struct, kw_only=True):
    """A client as staff see them: who, how to reach them, in which language."""

    # "" only in answers stored before clients were records of their own (Idempotency-Key replays).
    id: str = ""
    name: str
    date_of_birth: date | None = None
    phone: str | None = None
    email: str | None = None
    # phone | text | email (services.referrals.contact.PREFERRED_CONTACT).
    preferred_contact: str | None = None
    language: str = "en"
    postal_code: str | None = None
    # The client agreed to be emailed.
    email_consent: bool = False
    created_at: datetime | None = None


class ClearanceRecord(msgspec.Struct, kw_only=True):
    """The newest massage clearance a partner gave for this client, and where it came from."""

    clearance: str
    label: str
    reference: str
    reported_at: datetime
    areas_to_avoid: str = ""
    pressure_limit: str = ""
    note: str = ""
    # True when it was given on another of this client's referrals (the same client record).
    from_earlier_referral: bool = False


class LinkedReferral(msgspec.Struct, kw_only=True):
    """A referral sent together with another one (for another group of the same reasons)."""

    id: str
    reference: str
    urgency: str
    status: str
    reasons: list[str]


class ReferralRecord(msgspec.Struct, kw_only=True):
    id: str
    reference: str
    status: str
    urgency: str
    reasons: list[str]
    note: str
    client: ClientRecord
    consent: dict
    created_by: str
    created_at: datetime
    updated_at: datetime
    offers: list[OfferRecord]
    timeline: list[TimelineEntry] = []
    warnings: list[str] = []
    # Why a therapist must act on it (an undeliverable email, no partner left); empty when fine.
    attention: list[str] = []
    needs_attention: bool = False
    outcomes: list[OutcomeRecord] = []
    # Shown prominently: the newest clearance for this client record (this referral's or another's).
    clearance: ClearanceRecord | None = None
    # Who makes the next call once a partner accepts (services.referrals.contact.NEXT_STEPS).
    next_step: str = "partner_contacts_client"
    # The referrals sent together with this one under the same consent, most urgent first.
    sent_with: list[LinkedReferral] = []


class ReferralSummary(msgspec.Struct, kw_only=True):
    """One of a client's referrals, as their page lists it."""

    id: str
    reference: str
    status: str
    urgency: str
    reasons: list[str]
    created_at: datetime


class ClientDetail(ClientRecord, kw_only=True):
    """A client with the referrals the staff member may see and their current clearance."""

    referrals: list[ReferralSummary] = []
    clearance: ClearanceRecord | None = None


class Suggestion(msgspec.Struct, kw_only=True):
    partner_id: str
    name: str
    category: str
    score: float
    why: list[str]
    distance_km: float | None = None


class EmergencyAdvice(msgspec.Struct, kw_only=True):
    urgency: str
    instruction: str
    reasons: list[str]


class AdviceGiven(msgspec.Struct, kw_only=True):
    """Advice reasons alone (abuse disclosure): what the therapist shares now, no referral."""

    urgency: str
    instruction: str
    reasons: list[str]
    # The clinic's reminder of the state's mandated-reporting duties (HANDOFF_CLINIC_REPORTING_DUTIES).
    reporting_duties: str


class Dashboard(msgspec.Struct, kw_only=True):
    """Figures for the dashboard's charts over one period of whole clinic days (referrals
    created on them)."""

    first_day: date
    last_day: date  # the clinic's today
    # The period as instants: from the first day's start in the clinic's time zone to now.
    since: datetime
    until: datetime
    # (stage, count): sent, accepted, booked, completed.
    funnel: list[tuple[str, int]]
    # (partner name, median hours from offer to acceptance, acceptances), fastest first.
    time_to_accept: list[tuple[str, float, int]]
    # (month "YYYY-MM", {category label: count}), oldest first.
    by_category: list[tuple[str, dict[str, int]]]
    # Emergency stops in the period (no referral made; see EmergencyStopRecord): for admins only.
    emergency_stops: int | None = None


class EmergencyStopRecord(msgspec.Struct, kw_only=True):
    """A referral stopped for an emergency: when, by which staff member, for which reasons, and
    the instruction they were given. Nothing of the client is kept."""

    at: datetime
    staff_email: str
    reasons: str  # the reasons' labels, "; "-separated
    instruction: str


class ClientContact(msgspec.Struct, kw_only=True):
    """The client as the partner who accepted sees them: who, how to reach them, and who calls."""

    name: str
    phone: str = ""  # as people write it, e.g. (727) 555-0199
    phone_link: str = ""  # E.164, for a tel: link
    email: str = ""
    preferred_contact: str = ""  # in words: "Phone call", "Text message", "Email"
    language: str = ""  # in words: "Spanish"
    # What the partner is asked to do, in words: "Please call the client to book."
    next_step: str = ""


class OfferPage(msgspec.Struct, kw_only=True):
    """What a partner sees behind a link. Before accepting: the urgency, the reasons, the note,
    the client's ZIP and language, never who they are. Once this partner has accepted: the
    client's name and contact (``client``), and who makes the next call."""

    offer_id: str
    partner_name: str
    reference: str
    urgency: str
    reasons: list[str]
    guidance: list[str]
    note: str
    expires_at: datetime
    # This partner has said they have seen it (the referral is ``received``).
    acknowledged: bool = False
    postal_code: str = ""
    language: str = ""
    # Set only for the partner who accepted.
    accepted: bool = False
    client: ClientContact | None = None


class ReportPage(msgspec.Struct, kw_only=True):
    """What a partner sees behind an outcome-report link."""

    partner_name: str
    reference: str
    urgency: str
    reasons: list[str]
    status: str
    booked_for: date | None = None
    # The partner who accepted keeps the client's contact details at hand while reporting.
    client: ClientContact | None = None


class Handout(msgspec.Struct, kw_only=True):
    """The client's printable handout: why, in plain words, and whom to contact. No diagnosis."""

    referral_id: str
    reference: str
    client_name: str
    urgency: str
    why: list[str]
    partners: list[PartnerSnapshot]
    # True when a partner has accepted: the handout then names only them.
    accepted: bool = False
    # True when no partner accepted in time: the client is to contact one themselves (an urgent
    # one is told to be seen today, by their own doctor or urgent care).
    failed: bool = False
    # The language of the client advice (``en``, ``es``), and the advice itself: for each reason,
    # what the client does today and if it gets worse, in plain words.
    language: str = "en"
    advice: list[str] = []


class SweepReport(msgspec.Struct, kw_only=True, frozen=True):
    """What one deadline sweep did (another sweep running at once may have done the rest)."""

    reminded: int = 0
    expired: int = 0


class InboxReport(msgspec.Struct, kw_only=True):
    """A referral this partner accepted, awaiting their outcome report (the report page's view)."""

    offer_id: str
    page: ReportPage


class InboxPast(msgspec.Struct, kw_only=True):
    """An offer of the last 90 days that is no longer this partner's to act on: what it was and
    what became of it, never who the client is."""

    reference: str
    partner_name: str
    urgency: str
    offered_at: datetime
    what: str  # in words: "You declined", "Not answered in time", ...


class InboxPage(msgspec.Struct, kw_only=True):
    """The partner inbox: everything offered to the partners of one referral address. Open
    offers show what their offer pages show (no client identity); accepted referrals awaiting an
    outcome what their report pages show; past ones only their reference and what happened."""

    email: str
    partner_names: list[str]
    offers: list[OfferPage]
    awaiting: list[InboxReport]
    past: list[InboxPast]
