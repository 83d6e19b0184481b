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


class TimelineEntry(msgspec.Struct, kw_only=True):
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    why: str


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


class ClearanceRecord(msgspec.Struct, kw_only=True):
    """The newest massage clearance a partner gave for this client, and where it came from."""

    clearance: str
    label: str
    reference: str
    reported_at: datetime
    areas_to_avoid: str = ""
    pressure_limit: str = ""
    note: str = ""
    # True when it was given on an earlier referral of the same client.
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
    client: dict
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
    # Shown prominently: the newest clearance for this client (this referral's or an earlier one's).
    clearance: ClearanceRecord | None = None
    # The referrals sent together with this one under the same consent, most urgent first.
    sent_with: list[LinkedReferral] = []


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
    """Figures for the dashboard's charts over one period (referrals created in it)."""

    since: datetime
    until: datetime
    # (stage, count): sent, accepted, booked, completed.
    funnel: list[tuple[str, int]]
    # (partner name, median hours from offer to acceptance, acceptances), fastest first.
    time_to_accept: list[tuple[str, float, int]]
    # (month "YYYY-MM", {category label: count}), oldest first.
    by_category: list[tuple[str, dict[str, int]]]


class OfferPage(msgspec.Struct, kw_only=True):
    """What a partner sees behind a link: no client name, only what they need to decide."""

    offer_id: str
    partner_name: str
    reference: str
    urgency: str
    reasons: list[str]
    guidance: list[str]
    note: str
    expires_at: datetime
    # The partner has said they have seen it (the referral is ``received``).
    acknowledged: bool = False


class ReportPage(msgspec.Struct, kw_only=True):
    """What a partner sees behind an outcome-report link."""

    partner_name: str
    reference: str
    urgency: str
    reasons: list[str]
    status: str
    booked_for: date | None = None


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
    # The language of the client advice (``en``, ``es``), and the advice itself: for each reason,
    # what the client does today and if it gets worse, in plain words.
    language: str = "en"
    advice: list[str] = []


class SweepReport(msgspec.Struct, kw_only=True, frozen=True):
    """What one deadline sweep did (another sweep running at once may have done the rest)."""

    reminded: int = 0
    expired: int = 0
