"""schema.org JSON-LD for partners, safe to embed in a ``<script>`` element."""

from __future__ import annotations

import json
from typing import Any

from services.directory.domain import Partner

# schema.org types and medical specialties by category; anything else is a MedicalBusiness.
_PHYSICIAN_SPECIALTY = {
    "primary_care": "PrimaryCare",
    "orthopedics": "Musculoskeletal",
    "neurology": "Neurologic",
    "obgyn_midwife": "Obstetric",
    "oncology_lymphedema": "Oncologic",
    "dermatology": "Dermatology",
}
_TYPES = {"physical_therapy": "Physiotherapy", "personal_training": "HealthClub", "podiatry": "MedicalBusiness"}


def partner_jsonld(partner: Partner, *, url: str, category_label: str) -> dict[str, Any]:
    """The partner as a schema.org Physician / MedicalBusiness. Public fields only."""
    d = partner.details
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Physician" if d.category in _PHYSICIAN_SPECIALTY else _TYPES.get(d.category, "MedicalBusiness"),
        "@id": url,
        "url": url,
        "name": d.name,
        "description": d.bio or category_label,
    }
    if d.category in _PHYSICIAN_SPECIALTY:
        data["medicalSpecialty"] = f"https://schema.org/{_PHYSICIAN_SPECIALTY[d.category]}"
    if d.practice:
        data["parentOrganization"] = {"@type": "Organization", "name": d.practice}
    if d.phone:
        data["telephone"] = d.phone
    if d.website:
        data["sameAs"] = d.website
    if d.address:
        data["address"] = {
            "@type": "PostalAddress",
            "streetAddress": ", ".join(part for part in (d.address.line1, d.address.line2) if part),
            "addressLocality": d.address.city,
            "addressRegion": d.address.state,
            "postalCode": d.address.postal_code,
            "addressCountry": "US",
        }
    if d.location:
        data["geo"] = {"@type": "GeoCoordinates", "latitude": d.location.lat, "longitude": d.location.lon}
    if d.languages:
        data["knowsLanguage"] = list(d.languages)
    if d.hours:
        data["openingHours"] = d.hours
    if d.npi:
        data["identifier"] = {"@type": "PropertyValue", "propertyID": "NPI", "value": d.npi}
    data["isAcceptingNewPatients"] = d.accepting_new_clients == "yes"
    return data


def item_list(items: list[tuple[str, str]]) -> dict[str, Any]:
    """A schema.org ItemList of (name, url)."""
    return {
        "@context": "https://schema.org",
        "@type": "ItemList",
        "itemListElement": [
            {"@type": "ListItem", "position": n, "name": name, "url": url} for n, (name, url) in enumerate(items, 1)
        ],
    }


def script_json(data: dict[str, Any]) -> str:
    """JSON that cannot end its ``<script>`` element early: ``<``, ``>`` and ``&`` are escaped
    (a bio holding ``</script>`` stays inside the data)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
