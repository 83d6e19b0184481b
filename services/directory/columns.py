"""The flat form of a partner, one string per column: the columns of a CSV file and the fields
of the admin's HTML form. :func:`details_from_record` and :func:`record_from_partner` are exact
inverses, so an exported file imports back unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from services.directory.domain import STATUSES, Partner, PartnerDetails, Status
from services.directory.fields import Address, InvalidPartner, Location

COLUMNS: tuple[str, ...] = (
    "name",
    "credentials",
    "category",
    "practice",
    "specialties",
    "email",
    "phone",
    "website",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "lat",
    "lon",
    "languages",
    "accepting_new_clients",
    "telehealth",
    "hours",
    "insurance_notes",
    "accessibility_notes",
    "bio",
    "npi",
    "license_number",
    "license_state",
    "accepts_referrals_from",
    "response_window_days",
    "listed",
    "status",
    "accepting_until",
    "licence_expires_on",
)
REQUIRED: tuple[str, ...] = ("name", "category", "email")
# Columns holding a day (YYYY-MM-DD): pages show them as the day reads ("March 1, 2027").
DAY_COLUMNS: tuple[str, ...] = ("accepting_until", "licence_expires_on")
# Columns holding several values, separated by this.
LIST_SEPARATOR = ";"
_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0"}


def details_from_record(record: Mapping[str, str]) -> tuple[PartnerDetails, Status | None]:
    """The (not yet validated) details and status a record states. A value that cannot even be
    read (``lat=north``) raises :class:`InvalidPartner` naming its column."""

    def text(column: str) -> str:
        return (record.get(column) or "").strip()

    address = Address(
        line1=text("address_line1"),
        line2=text("address_line2"),
        city=text("city"),
        state=text("state"),
        postal_code=text("postal_code"),
    )
    details = PartnerDetails(
        name=text("name"),
        category=text("category"),
        email=text("email"),
        accepting_new_clients=text("accepting_new_clients") or "yes",
        phone=text("phone") or None,
        credentials=text("credentials"),
        practice=text("practice"),
        website=text("website") or None,
        address=None if address.is_empty() else address,
        location=_location(text("lat"), text("lon")),
        languages=_list(text("languages")),
        telehealth=_boolean(text("telehealth"), "telehealth", default=False),
        listed=_boolean(text("listed"), "listed", default=True),
        specialties=_list(text("specialties")),
        bio=text("bio"),
        hours=text("hours"),
        insurance_notes=text("insurance_notes"),
        accessibility_notes=text("accessibility_notes"),
        npi=text("npi") or None,
        license_number=text("license_number"),
        license_state=text("license_state"),
        accepts_referrals_from=_list(text("accepts_referrals_from")),
        response_window_days=_whole_number(text("response_window_days"), "response_window_days"),
        accepting_until=_day(text("accepting_until"), "accepting_until"),
        licence_expires_on=_day(text("licence_expires_on"), "licence_expires_on"),
    )
    status = text("status").lower() or None
    if status is not None and status not in STATUSES:
        raise InvalidPartner(f"status must be one of {', '.join(STATUSES)}", field="status")
    return details, status


def record_from_partner(partner: Partner) -> dict[str, str]:
    d = partner.details
    address = d.address or Address()
    return {
        "name": d.name,
        "credentials": d.credentials,
        "category": d.category,
        "practice": d.practice,
        "specialties": _joined(d.specialties),
        "email": d.email,
        "phone": d.phone or "",
        "website": d.website or "",
        "address_line1": address.line1,
        "address_line2": address.line2,
        "city": address.city,
        "state": address.state,
        "postal_code": address.postal_code,
        "lat": "" if d.location is None else repr(d.location.lat),
        "lon": "" if d.location is None else repr(d.location.lon),
        "languages": _joined(d.languages),
        "accepting_new_clients": d.accepting_new_clients,
        "telehealth": "yes" if d.telehealth else "no",
        "hours": d.hours,
        "insurance_notes": d.insurance_notes,
        "accessibility_notes": d.accessibility_notes,
        "bio": d.bio,
        "npi": d.npi or "",
        "license_number": d.license_number,
        "license_state": d.license_state,
        "accepts_referrals_from": _joined(d.accepts_referrals_from),
        "response_window_days": "" if d.response_window_days is None else str(d.response_window_days),
        "listed": "yes" if d.listed else "no",
        "status": partner.status,
        "accepting_until": "" if d.accepting_until is None else d.accepting_until.isoformat(),
        "licence_expires_on": "" if d.licence_expires_on is None else d.licence_expires_on.isoformat(),
    }


def _joined(values: tuple[str, ...]) -> str:
    return f"{LIST_SEPARATOR} ".join(values)


def _list(value: str) -> tuple[str, ...]:
    if not value:  # the usual empty column, read without building a list
        return ()
    return tuple(item.strip() for item in value.split(LIST_SEPARATOR) if item.strip())


def _boolean(value: str, column: str, *, default: bool) -> bool:
    if not value:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidPartner(f"{column} must be yes or no, not {value!r}", field=column)


def _whole_number(value: str, column: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidPartner(f"{column} must be a whole number, not {value!r}", field=column) from None


def _day(value: str, column: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidPartner(f"{column} must be a date (YYYY-MM-DD), not {value!r}", field=column) from None


def _location(lat: str, lon: str) -> Location | None:
    if not lat and not lon:
        return None
    if not lat or not lon:
        raise InvalidPartner("give both lat and lon, or neither", field="lat" if not lat else "lon")
    values = []
    for column, value in (("lat", lat), ("lon", lon)):
        try:
            values.append(float(value))
        except ValueError:
            raise InvalidPartner(f"{column} must be a number of degrees, not {value!r}", field=column) from None
    return Location(values[0], values[1])
