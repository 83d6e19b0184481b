"""The public directory as Open Referral HSDS 3.0 objects (plain dicts, ready to encode as JSON).

A listed, active partner is a *service* (what it offers to referred clients) of an
*organization* (its practice, see :mod:`services.directory.identifiers`) at a *location* (its
address and position), joined by a *service_at_location*. The category vocabulary is two
*taxonomies*: the NUCC Health Care Provider Taxonomy for the categories one NUCC code fits, and
Handoff's own categories for the rest. Nothing here reads a partner's referral email or its
internal fields (status, version, response window, accepted referrers). docs/standards.md maps
each field and says what is left out and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from services.directory.catalogue import Practice, has_location, practice_of
from services.directory.domain import Partner
from services.directory.identifiers import derived_id, twin_id
from shared.categories import Category

HSDS_VERSION = "3.0"
# Where the specification's own OpenAPI document lives, for the API's "/" answer.
HSDS_OPENAPI = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/openapi.json"
NUCC_URI = "http://nucc.org/provider-taxonomy"
NUCC_TAXONOMY = "NUCC Health Care Provider Taxonomy"
LOCAL_TAXONOMY = "Handoff partner categories"
COUNTRY = "US"  # Handoff's partners are local to a US clinic (US phones, ZIP codes).

Json = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Context:
    """What the mappings need besides partners: the vocabulary, the clinic and where it is."""

    categories: Mapping[str, Category]
    clinic_name: str
    # The clinic's contact, published as every service's assurer; None when not configured.
    assurer_email: str | None
    timezone: ZoneInfo
    # The directory's public base URL (links to its own category list).
    base_url: str


def page(contents: Sequence[Json], *, total: int, number: int, size: int) -> Json:
    """HSDS's paged list envelope around ``contents``, page ``number`` (from 1) of ``size`` a page.
    A page past the end (or before the first) is simply empty."""
    pages = math.ceil(total / size) if total else 0
    return {
        "total_items": total,
        "total_pages": pages,
        "page_number": number,
        "size": len(contents),
        "first_page": number == 1,
        "last_page": number >= pages,
        "empty": not contents,
        "contents": list(contents),
    }


def service(partner: Partner, context: Context, *, full: bool = True, with_organization: bool = True) -> Json:
    """The partner's service. ``full`` adds what hangs off it (phones, schedules, languages,
    service_at_locations, its category); ``with_organization`` nests its organization."""
    d = partner.details
    category = context.categories[d.category]
    name = f"{d.name}, {d.credentials}" if d.credentials else d.name
    found: Json = {
        "id": partner.id,
        "organization_id": practice_of(partner),
        "name": f"{category.label}: {name}",
        "description": d.bio or category.label,
        "status": "active",  # only active, listed partners are published
        "last_modified": partner.updated_at.isoformat(),
    }
    if d.website:
        found["url"] = d.website
    if d.insurance_notes:
        found["fees_description"] = d.insurance_notes
    if d.accepting_new_clients == "waitlist":
        found["wait_time"] = "New clients join a waiting list."
    elif d.accepting_new_clients == "no":
        found["alert"] = "Not accepting new clients at present."
    if d.license_number:
        found["licenses"] = f"{d.license_state} licence {d.license_number}".strip()
    if partner.last_confirmed_at is not None:
        found["assured_date"] = partner.last_confirmed_at.astimezone(context.timezone).date().isoformat()
    if context.assurer_email:
        found["assurer_email"] = context.assurer_email
    if with_organization:
        found["organization"] = organization(Practice(practice_of(partner), (partner,)), context, full=False)
    if not full:
        return found
    found["languages"] = [
        {
            "id": derived_id("language", f"{partner.id}:{language.casefold()}"),
            "service_id": partner.id,
            "name": language,
        }
        for language in d.languages
    ]
    found["phones"] = [] if d.phone is None else [_phone(partner)]
    if d.hours:
        # Hours are free text as the partner states them: HSDS's schedule description, not a
        # recurrence rule that would claim more precision than the partner gave.
        found["schedules"] = [
            {"id": derived_id("schedule", partner.id), "service_id": partner.id, "description": d.hours}
        ]
    found["service_at_locations"] = [service_at_location(partner, context)] if has_location(partner) else []
    found["attributes"] = [
        {
            "id": derived_id("attribute", partner.id),
            "link_id": partner.id,
            "link_entity": "service",
            "taxonomy_term_id": term_id(category),
            "taxonomy_term": taxonomy_term(category, context),
        }
    ]
    return found


def organization(practice: Practice, context: Context, *, full: bool = True) -> Json:
    """The practice. ``full`` adds its services and locations."""
    found: Json = {
        "id": practice.id,
        "name": practice.name,
        "description": f"A practice listed in {context.clinic_name}'s Partners in Health directory.",
    }
    if full:
        found["services"] = [service(p, context, full=False, with_organization=False) for p in practice.partners]
        found["locations"] = [location(p) for p in practice.partners if has_location(p)]
    return found


def location(partner: Partner) -> Json:
    """The partner's place: its position, its address when complete, its accessibility notes."""
    d = partner.details
    location_id = twin_id(partner.id, "location")
    found: Json = {
        "id": location_id,
        "location_type": "physical",
        "organization_id": practice_of(partner),
        "name": d.practice or d.name,
    }
    if d.location is not None:
        found["latitude"], found["longitude"] = d.location.lat, d.location.lon
    a = d.address
    if a is not None and a.line1 and a.city and a.state and a.postal_code:
        address: Json = {
            "id": derived_id("address", partner.id),
            "location_id": location_id,
            "address_1": a.line1,
            "city": a.city,
            "state_province": a.state,
            "postal_code": a.postal_code,
            "country": COUNTRY,
            "address_type": "physical",
        }
        if a.line2:
            address["address_2"] = a.line2
        found["addresses"] = [address]
    if d.accessibility_notes:
        found["accessibility"] = [
            {
                "id": derived_id("accessibility", partner.id),
                "location_id": location_id,
                "description": d.accessibility_notes,
            }
        ]
    return found


def service_at_location(partner: Partner, context: Context, *, full: bool = False) -> Json:
    """The partner's service at its location (the location nested; ``full`` nests the service too)."""
    found: Json = {
        "id": twin_id(partner.id, "service_at_location"),
        "service_id": partner.id,
        "location_id": twin_id(partner.id, "location"),
        "location": location(partner),
    }
    if full:
        found["service"] = service(partner, context, full=False)
        if partner.details.phone is not None:
            found["phones"] = [_phone(partner)]
    return found


def taxonomies(context: Context) -> list[Json]:
    """The two taxonomies the category vocabulary is drawn from."""
    return [
        {
            "id": taxonomy_id(nucc=True),
            "name": NUCC_TAXONOMY,
            "description": "The National Uniform Claim Committee's code set of health care provider types "
            "and specialties, used for every category that one of its codes fits.",
            "uri": NUCC_URI,
        },
        {
            "id": taxonomy_id(nucc=False),
            "name": LOCAL_TAXONOMY,
            "description": f"The categories of {context.clinic_name}'s directory that no single NUCC code fits.",
            "uri": f"{context.base_url}/api/v1/categories",
        },
    ]


def taxonomy_terms(context: Context) -> list[Json]:
    """One term per category, in the vocabulary's order."""
    return [taxonomy_term(category, context) for category in context.categories.values()]


def taxonomy_term(category: Category, context: Context) -> Json:
    """The category as a term: its NUCC code and name where it has one, else its own slug and label."""
    nucc = category.nucc is not None
    return {
        "id": term_id(category),
        "code": category.nucc if nucc else category.slug,
        "name": category.nucc_display if nucc else category.label,
        "description": f"Partners of the category “{category.label}”.",
        "taxonomy": NUCC_TAXONOMY if nucc else LOCAL_TAXONOMY,
        "taxonomy_id": taxonomy_id(nucc=nucc),
        "language": "en",
    }


def term_id(category: Category) -> str:
    return derived_id("taxonomy_term", category.slug)


def taxonomy_id(*, nucc: bool) -> str:
    return derived_id("taxonomy", "nucc" if nucc else "handoff")


def _phone(partner: Partner) -> Json:
    return {
        "id": derived_id("phone", partner.id),
        "service_id": partner.id,
        "number": partner.details.phone,
        "type": "voice",
    }
