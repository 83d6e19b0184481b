"""Referral rules that know no framework: statuses and the one state machine, urgency order,
consent coverage, the observation-note wording check, and the domain's own errors."""

from __future__ import annotations

import re
from typing import Literal

from shared.errors import Conflict, InvalidInput

# FHIR Task status codes (https://hl7.org/fhir/task.html#statemachine), as the brief asks.
Status = Literal[
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "in-progress",
    "on-hold",
    "completed",
    "cancelled",
    "failed",
]
Urgency = Literal["emergency", "urgent", "soon", "routine"]
OfferStatus = Literal["queued", "offered", "accepted", "declined", "expired", "withdrawn"]
ConsentScope = Literal["clinical", "non_clinical"]

URGENCY_ORDER: tuple[Urgency, ...] = ("emergency", "urgent", "soon", "routine")
OPEN_STATUSES: frozenset[str] = frozenset({"draft", "requested", "received", "accepted", "in-progress", "on-hold"})
# Statuses a therapist may still act on: a closed referral never needs attention.
CLOSED_STATUSES: frozenset[str] = frozenset({"completed", "cancelled"})

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"requested", "cancelled"}),
    "requested": frozenset({"received", "accepted", "rejected", "on-hold", "cancelled", "failed"}),
    # Back to requested when the partner who acknowledged it declines or is paused and the
    # referral is offered to the next partner.
    "received": frozenset({"requested", "accepted", "rejected", "on-hold", "cancelled", "failed"}),
    "accepted": frozenset({"in-progress", "completed", "on-hold", "cancelled", "failed"}),
    # A rejected or failed referral can be forwarded to another partner.
    "rejected": frozenset({"requested", "cancelled", "failed"}),
    "in-progress": frozenset({"completed", "on-hold", "cancelled", "failed"}),
    "on-hold": frozenset({"requested", "received", "accepted", "in-progress", "cancelled", "failed"}),
    "failed": frozenset({"requested"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}

DECLINE_REASONS = {
    "no_capacity": "No capacity right now",
    "outside_scope": "Outside my scope of practice",
    "not_accepting": "Not accepting new clients",
    "other": "Other",
}


class InvalidTransition(Conflict):
    """The referral's current status does not allow the requested change."""


class EmergencyStop(InvalidInput):
    """An emergency reason: no referral; the therapist must act now (call 911 / 988)."""


class ScopeViolation(InvalidInput):
    """A chosen partner's category is not allowed for the referral's reasons."""


class LinkRefused(Exception):
    """A partner link that cannot be used: ``why`` is invalid, expired or used."""

    def __init__(self, why: Literal["invalid", "expired", "used"]) -> None:
        super().__init__(why)
        self.why = why


def check_transition(current: str, target: str) -> None:
    """Raise :class:`InvalidTransition` unless ``current → target`` is allowed."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(
            f"a referral that is {current} cannot become {target}", field="status", extra={"status": current}
        )


def most_urgent(urgencies: list[Urgency]) -> Urgency:
    return min(urgencies, key=URGENCY_ORDER.index)


def check_consent(*, given: bool, scope: list[str], kinds_needed: set[str]) -> None:
    """No referral leaves without the client's consent covering every kind of partner it goes to."""
    if not given:
        raise InvalidInput("the client's consent is required before a referral is sent", field="consent.given")
    missing = sorted(kinds_needed - set(scope))
    if missing:
        readable = " and ".join(k.replace("_", "-") for k in missing)
        raise InvalidInput(
            f"the client's consent does not cover {readable} partners",
            field="consent.scope",
            extra={"missing": missing},
        )


# Therapists record observations, not diagnoses (scope of practice for massage therapy).
_DIAGNOSTIC = re.compile(r"\b(you have|diagnos\w*|fracture of|suffers? from|confirmed)\b", re.IGNORECASE)


def diagnostic_wording(note: str) -> list[str]:
    """The phrases in ``note`` that read as a diagnosis, for the form to warn about."""
    return sorted({m.group(0).lower() for m in _DIAGNOSTIC.finditer(note or "")})
