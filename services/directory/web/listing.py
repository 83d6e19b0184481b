"""How the public page words a partner for clients: distances in the clinic's unit, measured to
the partner (or "in 33701" when only the ZIP is known), hours in 12-hour form, the address
without empty parts, a directions link, languages by name. Plain functions the templates call."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from services.directory.domain import Partner
from services.directory.service import zip_centroid
from shared import languages

KM_PER_MILE = 1.609344
# A partner whose position is its ZIP code's centre (it was placed by ZIP, not by address) is
# "in 33701" to someone searching that ZIP, rather than "0.0 mi away".
_SAME_POINT_DEGREES = 1e-6
_CLOCK = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")


def to_unit(km: float, unit: str) -> float:
    return km / KM_PER_MILE if unit == "mi" else km


def to_km(value: float, unit: str) -> float:
    return value * KM_PER_MILE if unit == "mi" else value


def distance_text(partner: Partner, km: float | None, *, unit: str, searched_zip: str = "") -> str:
    """ "2.3 mi away"; "About 4 mi away" when the partner is placed by its ZIP code only; "In
    33701" when that is also the ZIP searched. Empty without a distance."""
    if km is None:
        return ""
    details = partner.details
    postal = details.address.postal_code if details.address else ""
    by_zip = False
    if postal and details.location is not None:
        centre = zip_centroid(postal)
        by_zip = centre is not None and (
            abs(centre.lat - details.location.lat) < _SAME_POINT_DEGREES
            and abs(centre.lon - details.location.lon) < _SAME_POINT_DEGREES
        )
    if by_zip and postal == searched_zip:
        return f"In {postal}"
    value = to_unit(km, unit)
    if by_zip:
        return f"About {max(1, round(value))} {unit} away"
    if value < 0.1:
        return f"Less than 0.1 {unit} away"
    return f"{value:.1f} {unit} away"


def twelve_hour(hours: str) -> str:
    """ "Mon–Fri 8:00–17:00" → "Mon–Fri 8:00 AM–5:00 PM"."""

    def clock(match: re.Match[str]) -> str:
        hour, minute = int(match.group(1)), match.group(2)
        return f"{hour % 12 or 12}:{minute} {'AM' if hour < 12 else 'PM'}"

    return _CLOCK.sub(clock, hours)


def address_lines(partner: Partner) -> list[str]:
    """The address's non-empty lines: "100 Main St", "St. Petersburg, FL 33701" (never ", FL")."""
    address = partner.details.address
    if address is None:
        return []
    place = ", ".join(
        part for part in (address.city, " ".join(p for p in (address.state, address.postal_code) if p)) if part
    )
    return [line for line in (address.line1, address.line2, place) if line]


def directions_url(partner: Partner) -> str:
    """A maps link to the partner's address (or position); empty when there is neither."""
    lines = address_lines(partner)
    location = partner.details.location
    if lines and partner.details.address and partner.details.address.line1:
        destination = ", ".join(lines)
    elif location is not None:
        destination = f"{location.lat},{location.lon}"
    else:
        return ""
    return "https://www.google.com/maps/dir/?" + urlencode({"api": "1", "destination": destination})


def language_names(partner: Partner) -> str:
    """ "English, Spanish (Español)"."""
    return ", ".join(languages.label(language) for language in partner.details.languages)
