"""What the FHIR directory API lets a caller search by, in one table (:data:`PARAMETERS`) that the
CapabilityStatement declares and the controllers obey, and how those parameters become a
:class:`PartnerQuery`. A malformed value raises :class:`InvalidSearch` naming the parameter.

Unknown parameters are ignored and left out of the Bundle's ``self`` link (FHIR's lenient
handling), unless the caller sends ``Prefer: handling=strict``, which answers them with a 400.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, get_args

from services.directory.fhir import NUCC_SYSTEM
from services.directory.fields import Accepting, Location
from services.directory.search import DEFAULT_RADIUS_KM, MAX_RADIUS_KM, InvalidSearch, Near, PartnerQuery
from services.directory.service import MAX_PAGE_SIZE
from shared.categories import Category
from shared.fhir import FHIR_VERSION, MEDIA_TYPE
from shared.geo import centroid, is_zip

DEFAULT_COUNT = 20
# Search result parameters every search takes besides its own: the page size and the opaque
# position of the next page (the ``next`` link carries it).
PAGING = ("_count", "cursor")
# When this CapabilityStatement last changed.
STATEMENT_DATE = date(2026, 11, 30)

_KM_PER_UNIT = {"km": 1.0, "m": 0.001, "mi": 1.609344, "[mi_i]": 1.609344}
_R4 = "http://hl7.org/fhir/SearchParameter"


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    documentation: str
    # The FHIR-defined parameter this one is, where it behaves as that definition says.
    definition: str | None = None

    def declared(self) -> dict[str, Any]:
        found = {"name": self.name, "type": self.type, "documentation": self.documentation}
        return found if self.definition is None else {**found, "definition": self.definition}


_NAME = Parameter(
    "name",
    "string",
    "Words that all appear in the partner's name, credentials, practice, specialties or city "
    "(case-insensitive, anywhere in a word's text).",
)
_NEAR = Parameter(
    "near",
    "special",
    "[latitude]|[longitude]|[distance]|[units]: within the distance (km unless units is m, mi or [mi_i]; "
    f"{DEFAULT_RADIUS_KM:g} km if left out; at most {MAX_RADIUS_KM:g} km), nearest first, each entry with its "
    "location-distance.",
    f"{_R4}/Location-near",
)
_NEAR_ZIP = Parameter(
    "near-zip", "special", "[US ZIP code]|[distance]|[units]: as near, from the centre of the ZIP code."
)
_ORGANIZATION = Parameter("organization", "reference", "The practice: Organization/[id] or [id].")
_SPECIALTY = Parameter(
    "specialty",
    "token",
    f"A NUCC Health Care Provider Taxonomy code, alone or as {NUCC_SYSTEM}|[code]. Categories without one are "
    "found with specialty:text.",
)
_SPECIALTY_TEXT = Parameter(
    "specialty:text", "token", "A category's label, as in specialty.text (case-insensitive), e.g. Personal training."
)

PARAMETERS: dict[str, tuple[Parameter, ...]] = {
    "PractitionerRole": (
        _SPECIALTY,
        _SPECIALTY_TEXT,
        _NAME,
        _NEAR,
        _NEAR_ZIP,
        Parameter("accepting", "token", "Accepting new clients: yes, waitlist or no (the newpatients extension)."),
        _ORGANIZATION,
    ),
    "Practitioner": (
        _NAME,
        Parameter(
            "communication", "token", "A language the practitioner speaks, as in communication.text (e.g. Spanish)."
        ),
    ),
    "Organization": (
        Parameter("name", "string", "Practices with a partner the words match (as name on PractitionerRole)."),
    ),
    "Location": (_NAME, _NEAR, _NEAR_ZIP, _ORGANIZATION),
    "HealthcareService": (_SPECIALTY, _SPECIALTY_TEXT, _NAME, _ORGANIZATION),
}


def known(resource: str) -> tuple[str, ...]:
    """Every query parameter a search of ``resource`` reads."""
    return (*(p.name for p in PARAMETERS[resource]), *PAGING)


def unknown(resource: str, given: Iterable[str]) -> list[str]:
    names = known(resource)
    return [name for name in given if name not in names]


def partner_query(
    *,
    categories: Mapping[str, Category],
    specialty: str | None = None,
    specialty_text: str | None = None,
    name: str | None = None,
    near: str | None = None,
    near_zip: str | None = None,
    accepting: str | None = None,
    communication: str | None = None,
    organization: str | None = None,
    located: bool = False,
) -> PartnerQuery | None:
    """The partners these search parameters ask for; None when none can match (a specialty code
    no category has)."""
    category = None
    if specialty is not None and specialty_text is not None:
        raise InvalidSearch("give specialty or specialty:text, not both", field="specialty")
    if specialty is not None:
        system, bar, code = specialty.rpartition("|")
        if bar and system not in ("", NUCC_SYSTEM):
            raise InvalidSearch(f"specialty codes are from {NUCC_SYSTEM}", field="specialty")
        category = next((slug for slug, c in categories.items() if c.nucc == code), None)
        if category is None:
            return None
    if specialty_text is not None:
        wanted = " ".join(specialty_text.split()).casefold()
        category = next((slug for slug, c in categories.items() if c.label.casefold() == wanted), None)
        if category is None:
            return None
    if accepting is not None and accepting not in get_args(Accepting):
        raise InvalidSearch("accepting must be yes, waitlist or no", field="accepting")
    if near is not None and near_zip is not None:
        raise InvalidSearch("give near or near-zip, not both", field="near-zip")
    practice = None if organization is None else organization.removeprefix("Organization/")
    return PartnerQuery(
        category=category,
        q=" ".join((name or "").split()) or None,
        near=_near(near, field="near") if near is not None else _near(near_zip, field="near-zip") if near_zip else None,
        accepting=accepting,  # type: ignore[arg-type]  # checked against Accepting above
        language=" ".join((communication or "").split()) or None,
        practices=None if practice is None else (practice,),
        located=located,
    )


def count(value: int | None) -> int:
    """The page size: ``_count`` up to the largest page this server gives (FHIR lets a server give
    fewer than asked), :data:`DEFAULT_COUNT` when not given."""
    return DEFAULT_COUNT if value is None else min(value, MAX_PAGE_SIZE)


_REST_DOCUMENTATION = (
    "Public and read-only: listed, active partners of the clinic's directory. Every search takes _count (page size, "
    f"default {DEFAULT_COUNT}, at most {MAX_PAGE_SIZE}; 0 answers the total alone) and follows Bundle.link next (its "
    "cursor parameter is opaque). Unknown search parameters are ignored and left out of Bundle.link self, unless the "
    "request says Prefer: handling=strict, which answers them with 400 and an OperationOutcome. An unknown id "
    "answers 404 with an OperationOutcome."
)


def capability_statement(*, base: str, publisher: str) -> dict[str, Any]:
    """The CapabilityStatement of exactly what this API implements."""
    return {
        "resourceType": "CapabilityStatement",
        "id": "handoff-directory",
        "status": "active",
        "date": STATEMENT_DATE.isoformat(),
        "publisher": publisher,
        "kind": "instance",
        "software": {"name": "Handoff directory"},
        "implementation": {"description": f"{publisher}: Partners in Health directory", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": [MEDIA_TYPE, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": _REST_DOCUMENTATION,
                "resource": [
                    {
                        "type": resource,
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [parameter.declared() for parameter in parameters],
                    }
                    for resource, parameters in PARAMETERS.items()
                ],
            }
        ],
    }


def _near(value: str, *, field: str) -> Near:
    """``near`` (``lat|lon|distance|units``) or ``near-zip`` (``zip|distance|units``)."""
    parts = value.split("|")
    where = 2 if field == "near" else 1  # the parts that name the point
    if not where <= len(parts) <= where + 2:
        raise InvalidSearch(f"{field} must be {_syntax(field)}", field=field)
    origin = _origin(parts[:where], field=field)
    distance, unit = [*parts[where:], "", ""][:2]
    if unit and unit not in _KM_PER_UNIT:
        raise InvalidSearch(f"{field} units must be one of {', '.join(_KM_PER_UNIT)}", field=field)
    if not distance:
        return Near(origin, DEFAULT_RADIUS_KM)
    try:
        km = float(distance) * _KM_PER_UNIT[unit or "km"]
    except ValueError:
        raise InvalidSearch(f"{field} distance must be a number, not {distance!r}", field=field) from None
    if not (math.isfinite(km) and 0 < km <= MAX_RADIUS_KM):
        raise InvalidSearch(f"{field} distance must be more than 0 and at most {MAX_RADIUS_KM:g} km", field=field)
    return Near(origin, km)


def _origin(parts: list[str], *, field: str) -> Location:
    if field == "near-zip":
        found = centroid(parts[0].strip()) if is_zip(parts[0]) else None
        if found is None:
            raise InvalidSearch(f"no known place has ZIP code {parts[0]!r}", field=field)
        return Location(found.lat, found.lon)
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise InvalidSearch(f"near must be {_syntax(field)}", field=field) from None
    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
        raise InvalidSearch("near is outside -90..90 latitude or -180..180 longitude", field=field)
    return Location(lat, lon)


def _syntax(field: str) -> str:
    return "latitude|longitude[|distance[|units]]" if field == "near" else "ZIP[|distance[|units]]"
