"""Referrals as HL7 FHIR R4 resources (plain dicts, ready to encode as ``application/fhir+json``),
for the staff-only ``/fhir/r4`` API of the referrals service.

A referral is a ``ServiceRequest`` (what the clinic asks for, for whom, how urgently, why) and a
``Task`` that follows it (the lifecycle's status, which is already FHIR's Task status, with the
BSeR business status beside it, the decline's reason, and the partner's outcome and massage
clearance in ``output``); the client is a ``Patient``. The partner who accepted is referenced by its
``PractitionerRole`` on the directory's public FHIR API, whose ids are the partner ids. The
mapping, element by element, is in docs/standards.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from services.referrals.outcomes import CLEARANCES, OUTCOMES
from services.referrals.records import ClientRecord, OfferRecord, ReferralRecord
from shared.fhir import Json

SNOMED = "http://snomed.info/sct"
BSER_BUSINESS_STATUS = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"

# FHIR's request priority for each urgency. FHIR orders routine < urgent < asap < stat: Handoff's
# "urgent" means seen today, which is FHIR's asap; "soon" (within days) is FHIR's urgent.
PRIORITY = {"urgent": "asap", "soon": "urgent", "routine": "routine"}

# ServiceRequest.status for each referral status. A failed or declined referral is still an
# active request (the therapist may forward it); its Task says what happened.
_REQUEST_STATUS = {
    "draft": "draft",
    "on-hold": "on-hold",
    "completed": "completed",
    "cancelled": "revoked",
}

# BSeR's Task business status (STU2 codes) for each referral status; a booked appointment (an
# outcome report with a date) moves an accepted or in-progress referral to "event scheduled".
_BUSINESS_STATUS = {
    "draft": ("2.0", "Service Request Created"),
    "requested": ("2.0", "Service Request Created"),
    "received": ("2.0", "Service Request Created"),
    "on-hold": ("2.0", "Service Request Created"),
    "accepted": ("3.0", "Service Request Accepted"),
    "in-progress": ("3.0", "Service Request Accepted"),
    "rejected": ("4.0", "Service Request Declined"),
    "failed": ("4.0", "Service Request Declined"),
    "cancelled": ("6.0", "Service Request Fulfillment Cancelled"),
    "completed": ("7.0", "Service Request Fulfillment Completed"),
}
_SCHEDULED = ("5.1.1", "Service Request Event Scheduled")


def service_request(
    referral: ReferralRecord, *, reason_labels: Mapping[str, str], systems: Systems, clinic_name: str
) -> Json:
    """What the clinic asked for: the referral's urgency, reasons and note, for its client."""
    found: Json = {
        "resourceType": "ServiceRequest",
        "id": referral.id,
        "meta": {"lastUpdated": _instant(referral.updated_at)},
        "identifier": [{"system": systems.reference, "value": referral.reference}],
        "status": _REQUEST_STATUS.get(referral.status, "active"),
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}],
        "priority": PRIORITY.get(referral.urgency, "routine"),
        "code": {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]},
        "subject": _patient_reference(referral),
        "authoredOn": _instant(referral.created_at),
        "requester": {"display": clinic_name},
        "reasonCode": [
            {
                "coding": [{"system": systems.reasons, "code": code, "display": reason_labels.get(code, code)}],
                "text": reason_labels.get(code, code),
            }
            for code in referral.reasons
        ],
    }
    if (taker := _accepted(referral)) is not None:
        found["performer"] = [_partner_reference(taker, systems)]
    if referral.note:
        found["note"] = [{"text": referral.note}]
    return found


def task(referral: ReferralRecord, *, decline_labels: Mapping[str, str], systems: Systems, clinic_name: str) -> Json:
    """How the referral is going: its status, who owns it now, and what the partner reported."""
    code, display = _business_status(referral)
    found: Json = {
        "resourceType": "Task",
        "id": referral.id,
        "meta": {"lastUpdated": _instant(referral.updated_at)},
        "identifier": [{"system": systems.reference, "value": referral.reference}],
        "basedOn": [{"reference": f"ServiceRequest/{referral.id}"}],
        "status": referral.status,
        "businessStatus": {"coding": [{"system": BSER_BUSINESS_STATUS, "code": code, "display": display}]},
        "intent": "order",
        "priority": PRIORITY.get(referral.urgency, "routine"),
        "focus": {"reference": f"ServiceRequest/{referral.id}"},
        "for": _patient_reference(referral),
        "authoredOn": _instant(referral.created_at),
        "lastModified": _instant(referral.updated_at),
        "requester": {"display": clinic_name},
    }
    if (taker := _accepted(referral)) is not None:
        found["owner"] = _partner_reference(taker, systems)
    if referral.status in ("rejected", "failed"):
        found["statusReason"] = _status_reason(referral, decline_labels, systems)
    if output := _output(referral, systems):
        found["output"] = output
    return found


def patient(client: ClientRecord) -> Json:
    """The client, as much as the clinic holds: name, birth date, phone and email (the preferred
    way first), the preferred language and the postal code."""
    found: Json = {"resourceType": "Patient", "id": client.id}
    if client.created_at is not None:
        found["meta"] = {"lastUpdated": _instant(client.created_at)}
    found["name"] = [{"text": client.name}]
    preferred = client.preferred_contact
    telecom = [
        {"system": system, "value": value} | ({"rank": 1} if preferred_here else {})
        for system, value, preferred_here in (
            ("phone", client.phone, preferred in ("phone", "text")),
            ("email", client.email, preferred == "email"),
        )
        if value
    ]
    if telecom:
        found["telecom"] = telecom
    if client.date_of_birth is not None:
        found["birthDate"] = client.date_of_birth.isoformat()
    if client.postal_code:
        found["address"] = [{"postalCode": client.postal_code}]
    if client.language:
        found["communication"] = [
            {"language": {"coding": [{"system": LANGUAGE_SYSTEM, "code": client.language}]}, "preferred": True}
        ]
    return found


class Systems:
    """The identifier and code-system URIs of one installation, under its own public URLs."""

    def __init__(self, *, referrals_url: str, directory_url: str) -> None:
        self.reference = f"{referrals_url}/referrals"
        self.reasons = f"{referrals_url}/api/v1/scope/reasons"
        self.decline_reasons = f"{referrals_url}/fhir/r4/CodeSystem/decline-reasons"
        self.outcomes = f"{referrals_url}/fhir/r4/CodeSystem/outcomes"
        self.clearances = f"{referrals_url}/fhir/r4/CodeSystem/massage-clearances"
        self.directory = f"{directory_url}/fhir/r4"


def _output(referral: ReferralRecord, systems: Systems) -> list[Json]:
    """Each outcome report the partner sent (and its appointment date), then the client's massage
    clearance."""
    found: list[Json] = []
    for report in referral.outcomes:
        found.append(
            {
                "type": {"text": "Outcome"},
                "valueCodeableConcept": {
                    "coding": [
                        {"system": systems.outcomes, "code": report.outcome, "display": OUTCOMES.get(report.outcome)}
                    ]
                },
            }
        )
        if report.booked_for is not None:
            found.append({"type": {"text": "Appointment date"}, "valueDate": report.booked_for.isoformat()})
    if (clearance := referral.clearance) is not None:
        text = "; ".join(
            part
            for part in (
                CLEARANCES.get(clearance.clearance, clearance.label),
                f"avoid: {clearance.areas_to_avoid}" if clearance.areas_to_avoid else "",
                f"pressure: {clearance.pressure_limit}" if clearance.pressure_limit else "",
                clearance.note,
            )
            if part
        )
        found.append(
            {
                "type": {"text": "Massage clearance"},
                "valueCodeableConcept": {
                    "coding": [{"system": systems.clearances, "code": clearance.clearance, "display": clearance.label}],
                    "text": text,
                },
            }
        )
    return found


def _status_reason(referral: ReferralRecord, decline_labels: Mapping[str, str], systems: Systems) -> Json:
    """Why no partner has it: the last decline (its reason, and the partner's own words), or
    offers that ran out unanswered."""
    declined = _last_declined(referral)
    if declined is None:
        return {"text": "No partner accepted before the offers expired"}
    reason = declined.decline_reason or "other"
    label = decline_labels.get(reason, reason)
    return {
        "coding": [{"system": systems.decline_reasons, "code": reason, "display": label}],
        "text": declined.decline_note or label,
    }


def _business_status(referral: ReferralRecord) -> tuple[str, str]:
    booked = any(report.outcome == "booked" for report in referral.outcomes)
    if booked and referral.status in ("accepted", "in-progress"):
        return _SCHEDULED
    return _BUSINESS_STATUS.get(referral.status, _BUSINESS_STATUS["requested"])


def _accepted(referral: ReferralRecord) -> OfferRecord | None:
    return next((offer for offer in referral.offers if offer.status == "accepted"), None)


def _last_declined(referral: ReferralRecord) -> OfferRecord | None:
    # Offers are made one after another, so the last declined is the one with the highest position.
    declined = [offer for offer in referral.offers if offer.status == "declined"]
    return max(declined, key=lambda offer: offer.position, default=None)


def _partner_reference(offer: OfferRecord, systems: Systems) -> Json:
    return {"reference": f"{systems.directory}/PractitionerRole/{offer.partner_id}", "display": offer.partner_name}


def _patient_reference(referral: ReferralRecord) -> Json:
    return {"reference": f"Patient/{referral.client.id}", "display": referral.client.name}


def _instant(moment: datetime) -> str:
    return moment.isoformat()
