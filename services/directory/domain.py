"""Partners and the rules they obey. Plain Python: no web framework, no SQL, no Redis.

A :class:`Partner` is an identity (id, slug), the details an admin edits (:class:`PartnerDetails`),
a status and a version that grows with every committed change. Rules raise the domain's own
errors, each naming the field at fault; the web layer maps them to HTTP.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import phonenumbers

from shared.errors import Conflict, InvalidInput, NotFound

Status = Literal["pending", "active", "paused", "archived"]
Accepting = Literal["yes", "no", "waitlist"]

STATUSES: tuple[Status, ...] = get_args(Status)
ACCEPTING: tuple[Accepting, ...] = get_args(Accepting)

# pending → active → paused → archived, as the brief draws it; a paused partner may come back.
# Archived is final: a partner that left is re-created, so its old URL never silently revives.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    "pending": frozenset({"active", "archived"}),
    "active": frozenset({"paused", "archived"}),
    "paused": frozenset({"active", "archived"}),
    "archived": frozenset(),
}
# A new partner may start anywhere but archived.
INITIAL_STATUSES: tuple[Status, ...] = ("pending", "active", "paused")

# Upper bounds match the column sizes in storage.py, so PostgreSQL never has to refuse a value.
MAX_LENGTHS = {
    "name": 200,
    "credentials": 120,
    "practice": 200,
    "email": 254,
    "website": 500,
    "line1": 200,
    "line2": 200,
    "city": 100,
    "state": 50,
    "postal_code": 20,
    "language": 40,
    "specialty": 80,
    "profession": 80,
    "bio": 2000,
    "hours": 500,
    "insurance_notes": 1000,
    "accessibility_notes": 1000,
    "license_number": 40,
    "license_state": 20,
}
MAX_LANGUAGES = 20
MAX_LIST_ITEMS = 30
MAX_RESPONSE_WINDOW_DAYS = 90
SLUG_MAX_LENGTH = 80
# Numbers without a "+" are read as this region's: the clinic and its partners are local.
DEFAULT_PHONE_REGION = "US"
# The NPI check digit is a Luhn digit over the number prefixed with the US health card issuer
# prefix 80840 (CMS, "Requirements for NPI check digit").
NPI_LUHN_PREFIX = "80840"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


class InvalidPartner(InvalidInput):
    """A partner's details break a rule; ``field`` names the one at fault."""


class PartnerNotFound(NotFound):
    """No such partner, or not one the caller may see."""

    def __init__(self, partner: str) -> None:
        super().__init__(f"no partner {partner!r}", field="id")


class StaleVersion(Conflict):
    """The caller edited an older version than the one stored; ``extra`` carries the current one
    so the caller can reload and retry."""

    def __init__(self, *, expected: int, current: int) -> None:
        super().__init__(
            f"partner is at version {current}, not {expected}: reload it and apply the change again",
            field="version",
            extra={"current_version": current},
        )
        self.current_version = current


class StatusChangeNotAllowed(Conflict):
    """The partner's status cannot move from where it is to where the caller asked."""

    def __init__(self, *, current: Status, target: Status) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is final)"
        super().__init__(
            f"a {current} partner cannot become {target}; it may become {allowed}",
            field="status",
            extra={"current_status": current},
        )


@dataclass(frozen=True, kw_only=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""

    def is_empty(self) -> bool:
        return not any((self.line1, self.line2, self.city, self.state, self.postal_code))


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, kw_only=True)
class PartnerDetails:
    """What an admin states about a partner. Build it freely, then call :meth:`validated`."""

    name: str
    category: str
    email: str
    accepting_new_clients: str = "yes"
    phone: str | None = None
    credentials: str = ""
    practice: str = ""
    website: str | None = None
    address: Address | None = None
    location: Location | None = None
    languages: tuple[str, ...] = ()
    telehealth: bool = False
    listed: bool = True
    specialties: tuple[str, ...] = ()
    bio: str = ""
    hours: str = ""
    insurance_notes: str = ""
    accessibility_notes: str = ""
    npi: str | None = None
    license_number: str = ""
    license_state: str = ""
    # Professions (free text, e.g. "massage therapist") whose referrals this partner takes.
    accepts_referrals_from: tuple[str, ...] = ()
    response_window_days: int | None = None

    def with_changes(self, changes: Mapping[str, Any]) -> PartnerDetails:
        """These details with some fields replaced (not yet validated)."""
        for name in changes:
            if name not in EDITABLE_FIELDS:
                raise InvalidPartner(f"{name!r} is not a partner detail", field=name)
        return replace(self, **changes)

    def validated(
        self, *, categories: Collection[str], geocode: Callable[[str], Location | None] | None = None
    ) -> PartnerDetails:
        """A normalised copy (trimmed text, E.164 phone, ``https://`` website…), or
        :class:`InvalidPartner` for the first rule broken. ``categories`` are the known slugs;
        ``geocode`` (postal code → centre, or None) fills in a missing location."""
        address = validate_address(self.address)
        location = validate_location(self.location)
        if location is None and address is not None and address.postal_code and geocode is not None:
            location = geocode(address.postal_code)
        return replace(
            self,
            name=validate_name(self.name),
            category=validate_category(self.category, categories=categories),
            email=validate_email(self.email),
            accepting_new_clients=validate_accepting(self.accepting_new_clients),
            phone=normalise_phone(self.phone),
            credentials=_bounded_text(self.credentials, "credentials"),
            practice=_bounded_text(self.practice, "practice"),
            website=normalise_website(self.website),
            address=address,
            location=location,
            languages=validate_languages(self.languages),
            telehealth=_boolean(self.telehealth, "telehealth"),
            listed=_boolean(self.listed, "listed"),
            specialties=_text_list(self.specialties, "specialty", field="specialties"),
            bio=_bounded_text(self.bio, "bio"),
            hours=_bounded_text(self.hours, "hours"),
            insurance_notes=_bounded_text(self.insurance_notes, "insurance_notes"),
            accessibility_notes=_bounded_text(self.accessibility_notes, "accessibility_notes"),
            npi=validate_npi(self.npi),
            license_number=_bounded_text(self.license_number, "license_number"),
            license_state=_bounded_text(self.license_state, "license_state").upper(),
            accepts_referrals_from=_text_list(
                self.accepts_referrals_from, "profession", field="accepts_referrals_from"
            ),
            response_window_days=validate_response_window(self.response_window_days),
        )


EDITABLE_FIELDS: frozenset[str] = frozenset(f.name for f in fields(PartnerDetails))


@dataclass(frozen=True, kw_only=True)
class Partner:
    id: str
    slug: str
    details: PartnerDetails
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime = field(compare=False)
    # When the practice last confirmed the listing as correct; None until it first does.
    last_confirmed_at: datetime | None = None

    @property
    def is_public(self) -> bool:
        """Shown to the public (pages and anonymous API): active and listed."""
        return self.status == "active" and self.details.listed

    def revise(
        self,
        *,
        details: PartnerDetails | None = None,
        status: Status | None = None,
        categories: Collection[str],
        now: datetime,
        geocode: Callable[[str], Location | None] | None = None,
    ) -> Partner:
        """This partner with new details and/or status at the next version; itself unchanged
        when nothing differs (so a no-op edit publishes nothing)."""
        new_details = self.details if details is None else details.validated(categories=categories, geocode=geocode)
        new_status = self.status if status is None else status
        if new_status != self.status:
            check_transition(self.status, new_status)
        if new_details == self.details and new_status == self.status:
            return self
        return replace(self, details=new_details, status=new_status, version=self.version + 1, updated_at=now)


def new_partner(
    *,
    id: str,
    slug: str,
    details: PartnerDetails,
    status: Status,
    categories: Collection[str],
    now: datetime,
    geocode: Callable[[str], Location | None] | None = None,
) -> Partner:
    """A partner at version 1, its details validated."""
    if status not in INITIAL_STATUSES:
        raise InvalidPartner(f"a new partner's status must be one of {', '.join(INITIAL_STATUSES)}", field="status")
    return Partner(
        id=id,
        slug=slug,
        details=details.validated(categories=categories, geocode=geocode),
        status=status,
        version=1,
        created_at=now,
        updated_at=now,
    )


def check_transition(current: Status, target: Status) -> None:
    if target not in STATUSES:
        raise InvalidPartner(f"status must be one of {', '.join(STATUSES)}", field="status")
    if target not in TRANSITIONS[current]:
        raise StatusChangeNotAllowed(current=current, target=target)


def validate_name(name: str) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise InvalidPartner("name is required", field="name")
    return _bounded_text(name, "name")


def validate_category(category: str, *, categories: Collection[str]) -> str:
    category = str(category or "").strip()
    if not category:
        raise InvalidPartner("category is required", field="category")
    if category not in categories:
        raise InvalidPartner(f"unknown category {category!r}; known: {', '.join(categories)}", field="category")
    return category


def validate_email(email: str) -> str:
    email = str(email or "").strip()
    if not email:
        raise InvalidPartner("email is required (referrals are sent to it)", field="email")
    if len(email) > MAX_LENGTHS["email"] or not _EMAIL.match(email):
        raise InvalidPartner(f"{email!r} is not an email address", field="email")
    local, _, domain = email.rpartition("@")
    # The domain part is case-insensitive; the local part is the mailbox owner's business.
    return f"{local}@{domain.lower()}"


def validate_accepting(value: str) -> Accepting:
    if value not in ACCEPTING:
        raise InvalidPartner(
            f"accepting_new_clients must be one of {', '.join(ACCEPTING)}", field="accepting_new_clients"
        )
    return value


def normalise_phone(phone: str | None) -> str | None:
    """E.164 (``+17275550100``), checked against the numbering plan of its country. A number
    without ``+`` is read as North American, since the clinic and its partners are local."""
    if phone is None or not str(phone).strip():
        return None
    try:
        number = phonenumbers.parse(str(phone), DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidPartner(f"{phone!r} is not a valid phone number (use +<country><number>)", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(phone: str) -> str:
    """How a stored E.164 number reads to a local client: ``(727) 555-0100`` at home, the
    international form (``+44 20 7946 0000``) otherwise."""
    try:
        number = phonenumbers.parse(phone, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return phone
    local = phonenumbers.region_code_for_number(number) == DEFAULT_PHONE_REGION
    style = phonenumbers.PhoneNumberFormat.NATIONAL if local else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, style)


def validate_npi(npi: str | None) -> str | None:
    """A National Provider Identifier: 10 digits whose last is the Luhn check digit of
    ``80840`` + the first nine. Spaces and hyphens are dropped."""
    if npi is None or not str(npi).strip():
        return None
    digits = re.sub(r"[\s-]", "", str(npi))
    if not (digits.isdigit() and len(digits) == 10):
        raise InvalidPartner(f"NPI {npi!r} must be 10 digits", field="npi")
    if not luhn_valid(NPI_LUHN_PREFIX + digits):
        raise InvalidPartner(f"NPI {npi!r} fails its check digit (a typo?)", field="npi")
    return digits


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def validate_response_window(days: int | None) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RESPONSE_WINDOW_DAYS:
        raise InvalidPartner(
            f"response_window_days must be a whole number of days from 1 to {MAX_RESPONSE_WINDOW_DAYS}",
            field="response_window_days",
        )
    return days


def normalise_website(website: str | None) -> str | None:
    """An ``http(s)`` URL; ``example.org`` becomes ``https://example.org``. Other schemes are
    refused because the public page links to it."""
    if website is None or not str(website).strip():
        return None
    website = str(website).strip()
    if "://" not in website:
        website = "https://" + website
    try:
        parts = urlsplit(website)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    if parts is None or parts.scheme.lower() not in ("http", "https") or "." not in host or " " in website:
        raise InvalidPartner(f"{website!r} is not a web address", field="website")
    return _bounded_text(website, "website")


def validate_address(address: Address | None) -> Address | None:
    if address is None:
        return None
    trimmed = Address(
        **{
            name: _bounded_text(" ".join(str(getattr(address, name) or "").split()), name, field=f"address.{name}")
            for name in ("line1", "line2", "city", "state", "postal_code")
        }
    )
    return None if trimmed.is_empty() else trimmed


def validate_location(location: Location | None) -> Location | None:
    if location is None:
        return None
    lat, lon = location.lat, location.lon
    if not (isinstance(lat, int | float) and math.isfinite(lat) and -90 <= lat <= 90):
        raise InvalidPartner("latitude must be between -90 and 90", field="location.lat")
    if not (isinstance(lon, int | float) and math.isfinite(lon) and -180 <= lon <= 180):
        raise InvalidPartner("longitude must be between -180 and 180", field="location.lon")
    return Location(float(lat), float(lon))


def validate_languages(languages: Collection[str]) -> tuple[str, ...]:
    return _text_list(languages, "language", field="languages", most=MAX_LANGUAGES)


def _text_list(values: Collection[str], name: str, *, field: str, most: int = MAX_LIST_ITEMS) -> tuple[str, ...]:
    """Trimmed, non-empty, without case-insensitive repeats, in the order given."""
    if isinstance(values, str):
        raise InvalidPartner(f"{field} must be a list", field=field)
    kept: list[str] = []
    seen: set[str] = set()
    for value in values:
        value = " ".join(str(value or "").split())
        if not value or value.casefold() in seen:
            continue
        kept.append(_bounded_text(value, name, field=field))
        seen.add(value.casefold())
    if len(kept) > most:
        raise InvalidPartner(f"at most {most} {field}", field=field)
    return tuple(kept)


def slugify(text: str, *, max_length: int = SLUG_MAX_LENGTH) -> str:
    """``"Dr. José O'Neil, DPT"`` → ``"dr-jose-o-neil-dpt"``: ASCII, lower case, hyphens, at most
    ``max_length`` characters, cut at a word boundary. May be empty (e.g. a name in a non-Latin
    script); :func:`slug_base` then falls back to ``partner``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_length:
        cut = slug[: max_length + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else slug[:max_length]
    return slug.strip("-")


def slug_base(name: str) -> str:
    """The slug a partner called ``name`` gets if no other partner has it yet; room is left for
    the ``-2``, ``-3``… that :func:`unique_slug` appends."""
    return slugify(name, max_length=SLUG_MAX_LENGTH - 4) or "partner"


def unique_slug(base: str, *, taken: Collection[str]) -> str:
    """``base``, or ``base-2``, ``base-3``… when a partner already has it."""
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _bounded_text(value: str, name: str, *, field: str | None = None) -> str:
    value = str(value or "").strip()
    limit = MAX_LENGTHS[name]
    if len(value) > limit:
        raise InvalidPartner(f"{name} is longer than {limit} characters", field=field or name)
    return value


def _boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidPartner(f"{name} must be true or false", field=name)
    return value
