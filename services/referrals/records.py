"""What the service answers with: referrals with their offers and timeline, suggestions."""

from __future__ import annotations

from datetime import datetime

import msgspec


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


class TimelineEntry(msgspec.Struct, kw_only=True):
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    why: str


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
