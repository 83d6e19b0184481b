"""The public directory as HL7 FHIR R4 resources (plain dicts, ready to encode as
``application/fhir+json``).

A listed, active partner is a ``Practitioner`` (who), a ``PractitionerRole`` (what they do, where,
and whether they take new clients), a ``HealthcareService`` (what they offer to referred clients)
and, when it has a place, a ``Location``; its practice is an ``Organization``. Ids are those of the
HSDS API (:mod:`services.directory.hsds`): the partner's id for the first three and the service,
the location's and practice's own ids for the others. Accepting new clients is the Da Vinci
Plan-Net ``newpatients`` extension, specialties are NUCC codes where one fits. Nothing here reads a
partner's referral email or its internal fields. docs/standards.md maps each element.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.directory.catalogue import Practice, has_location, practice_of
from services.directory.domain import Partner
from services.directory.identifiers import twin_id
from shared.categories import Category
from shared.fhir import Json

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net"
NEW_PATIENTS = f"{PLAN_NET}/StructureDefinition/newpatients"
ACCEPTING_PATIENTS = f"{PLAN_NET}/CodeSystem/AcceptingPatientsCS"
DELIVERY_METHOD = f"{PLAN_NET}/StructureDefinition/delivery-method"
DELIVERY_METHODS = f"{PLAN_NET}/CodeSystem/DeliveryMethodCS"
ACCESSIBILITY = f"{PLAN_NET}/StructureDefinition/accessibility"
LOCATION_DISTANCE = "http://hl7.org/fhir/StructureDefinition/location-distance"
UCUM = "http://unitsofmeasure.org"

# Handoff's "accepting new clients" as Plan-Net's AcceptingPatientsCS code (with its display) and,
# for a waiting list, which Plan-Net has no code for, a characteristic of the new clients taken.
_ACCEPTING: dict[str, tuple[str, str, str | None]] = {
    "yes": ("newpt", "Accepting", None),
    "waitlist": ("newpt", "Accepting", "New clients join a waiting list"),
    "no": ("nopt", "Not Accepting", None),
}


def practitioner(partner: Partner) -> Json:
    """Who the partner is: name, NPI, credentials, languages."""
    d = partner.details
    found: Json = {"resourceType": "Practitioner", "id": partner.id, "meta": _meta(partner)}
    if d.npi:
        found["identifier"] = [{"use": "official", "system": NPI_SYSTEM, "value": d.npi}]
    found["active"] = True
    found["name"] = [{"text": d.name}]
    if d.credentials:
        found["qualification"] = [{"code": {"text": d.credentials}}]
    if d.languages:
        found["communication"] = [{"text": language} for language in d.languages]
    return found


def practitioner_role(partner: Partner, categories: Mapping[str, Category]) -> Json:
    """What the partner does, for which practice, where, and whether it takes new clients."""
    d = partner.details
    found: Json = {
        "resourceType": "PractitionerRole",
        "id": partner.id,
        "meta": _meta(partner),
        "extension": [new_patients(d.accepting_new_clients)],
        "active": True,
        "practitioner": {"reference": f"Practitioner/{partner.id}", "display": d.name},
        "organization": _organization_reference(partner),
        "specialty": [specialty(categories[d.category])],
    }
    if has_location(partner):
        found["location"] = [{"reference": f"Location/{twin_id(partner.id, 'location')}"}]
    found["healthcareService"] = [{"reference": f"HealthcareService/{partner.id}"}]
    if telecom := _telecom(partner):
        found["telecom"] = telecom
    return found


def healthcare_service(partner: Partner, categories: Mapping[str, Category]) -> Json:
    """What the partner offers to referred clients: specialty, how it is delivered, languages."""
    d = partner.details
    category = categories[d.category]
    methods = (["physical"] if has_location(partner) else []) + (["virtual"] if d.telehealth else [])
    found: Json = {
        "resourceType": "HealthcareService",
        "id": partner.id,
        "meta": _meta(partner),
        "extension": [
            new_patients(d.accepting_new_clients),
            *(
                {
                    "url": DELIVERY_METHOD,
                    "extension": [{"url": "type", "valueCodeableConcept": _coded(DELIVERY_METHODS, method)}],
                }
                for method in methods
            ),
        ],
        "active": True,
        "providedBy": _organization_reference(partner),
        "specialty": [specialty(category)],
        "name": f"{category.label}: {d.name}",
    }
    if has_location(partner):
        found["location"] = [{"reference": f"Location/{twin_id(partner.id, 'location')}"}]
    if d.bio:
        found["comment"] = d.bio
    if telecom := _telecom(partner):
        found["telecom"] = telecom
    if d.languages:
        found["communication"] = [{"text": language} for language in d.languages]
    return found


def location(partner: Partner) -> Json:
    """The partner's place: address, position, accessibility notes."""
    d = partner.details
    found: Json = {"resourceType": "Location", "id": twin_id(partner.id, "location"), "meta": _meta(partner)}
    if d.accessibility_notes:
        found["extension"] = [{"url": ACCESSIBILITY, "valueCodeableConcept": {"text": d.accessibility_notes}}]
    found.update(status="active", name=d.practice or d.name, mode="instance")
    if d.phone:
        found["telecom"] = [{"system": "phone", "value": d.phone, "use": "work"}]
    a = d.address
    if a is not None:
        address: Json = {"use": "work", "type": "physical", "country": "US"}
        if lines := [line for line in (a.line1, a.line2) if line]:
            address["line"] = lines
        address.update(
            {
                key: value
                for key, value in (("city", a.city), ("state", a.state), ("postalCode", a.postal_code))
                if value
            }
        )
        found["address"] = address
    if d.location is not None:
        found["position"] = {"latitude": d.location.lat, "longitude": d.location.lon}
    found["managingOrganization"] = _organization_reference(partner)
    return found


def organization(practice: Practice) -> Json:
    """The practice (a partner without one is a practice of its own)."""
    return {
        "resourceType": "Organization",
        "id": practice.id,
        "meta": {"lastUpdated": max(p.updated_at for p in practice.partners).isoformat()},
        "active": True,
        "name": practice.name,
    }


def new_patients(accepting: str) -> Json:
    """The Da Vinci Plan-Net ``newpatients`` extension for Handoff's accepting-new-clients value."""
    code, display, characteristic = _ACCEPTING[accepting]
    parts: list[Json] = [
        {"url": "acceptingPatients", "valueCodeableConcept": _coded(ACCEPTING_PATIENTS, code, display)}
    ]
    if characteristic:
        parts.append({"url": "characteristics", "valueString": characteristic})
    return {"url": NEW_PATIENTS, "extension": parts}


def specialty(category: Category) -> Json:
    """The category as a specialty: its NUCC code where one fits, its label as text always."""
    if category.nucc is None:
        return {"text": category.label}
    return {
        "coding": [{"system": NUCC_SYSTEM, "code": category.nucc, "display": category.nucc_display}],
        "text": category.label,
    }


def distance(km: float) -> Json:
    """The ``search`` extension giving a match's distance from a ``near`` point."""
    return {"url": LOCATION_DISTANCE, "valueDistance": {"value": km, "unit": "km", "system": UCUM, "code": "km"}}


def _meta(partner: Partner) -> Json:
    return {"lastUpdated": partner.updated_at.isoformat()}


def _organization_reference(partner: Partner) -> Json:
    d = partner.details
    return {"reference": f"Organization/{practice_of(partner)}", "display": d.practice or d.name}


def _telecom(partner: Partner) -> list[Json]:
    d = partner.details
    found = []
    if d.phone:
        found.append({"system": "phone", "value": d.phone, "use": "work"})
    if d.website:
        found.append({"system": "url", "value": d.website, "use": "work"})
    return found


def _coded(system: str, code: str, display: str | None = None) -> Json:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}
