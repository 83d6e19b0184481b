"""The rules for each field of a partner's details: length limits, normal forms (E.164 phones,
``https://`` websites, slugs) and the checks that refuse a bad value, each naming the field at
fault. Plain Python, like :mod:`services.directory.domain`, which builds on them."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args
from urllib.parse import urlsplit

import phonenumbers

from shared import geo
from shared.emails import InvalidEmail, normalised_email
from shared.errors import InvalidInput
from shared.text import has_control_character

Accepting = Literal["yes", "no", "waitlist"]
ACCEPTING: tuple[Accepting, ...] = get_args(Accepting)

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
# Text that may span lines (TAB, LF and CR kept); every other field is one line.
MULTI_LINE = frozenset({"bio", "hours", "insurance_notes", "accessibility_notes"})
MAX_LANGUAGES = 20
MAX_LIST_ITEMS = 30
MAX_RESPONSE_WINDOW_DAYS = 90
SLUG_MAX_LENGTH = 80
# Numbers without a "+" are read as this region's: the clinic and its partners are local.
DEFAULT_PHONE_REGION = "US"
# The NPI check digit is a Luhn digit over the number prefixed with the US health card issuer
# prefix 80840 (CMS, "Requirements for NPI check digit").
NPI_LUHN_PREFIX = "80840"


class InvalidPartner(InvalidInput):
    """A partner's details break a rule; ``field`` names the one at fault."""


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
    """The referral address, as every Handoff service reads addresses (:mod:`shared.emails`)."""
    email = str(email or "").strip()
    if not email:
        raise InvalidPartner("email is required (referrals are sent to it)", field="email")
    try:
        return normalised_email(email)
    except InvalidEmail as exc:
        raise InvalidPartner(f"{email!r} is not an email address: {exc}", field="email") from None


def validate_accepting(value: str) -> Accepting:
    if value not in ACCEPTING:
        raise InvalidPartner(
            f"accepting_new_clients must be one of {', '.join(ACCEPTING)}", field="accepting_new_clients"
        )
    return value


def validate_date(value: object, name: str) -> date | None:
    """A calendar date (or None); an ISO string (``2026-12-31``) is read as one."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidPartner(f"{name} must be a date (YYYY-MM-DD), not {value!r}", field=name) from None
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    raise InvalidPartner(f"{name} must be a date (YYYY-MM-DD)", field=name)


# Pure and costly (the numbering plan's patterns): the same number often comes back (a practice's
# partners, an edit that keeps it).
@functools.lru_cache(maxsize=4096)
def normalise_phone(phone: str | None) -> str | None:
    """E.164 (``+17275550100``), checked against the numbering plan of its country. A number
    without ``+`` is read as North American, since the clinic and its partners are local."""
    if phone is None or not str(phone).strip():
        return None
    return _north_american(str(phone)) or _checked_phone(str(phone))


def _checked_phone(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidPartner(f"{phone!r} is not a valid phone number (use +<country><number>)", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# A North American number in the forms files use most: "+1" and ten digits, or ten digits alone or
# grouped as (727) 555-0100, 727-555-0100, 727.555.0100 or 727 555 0100.
_NORTH_AMERICAN = re.compile(
    r"\+1[2-9][0-9]{9}|[2-9][0-9]{9}|\([2-9][0-9]{2}\) ?[0-9]{3}-[0-9]{4}|[2-9][0-9]{2}([-. ])[0-9]{3}\1[0-9]{4}"
)
_NOT_DIGITS = re.compile(r"[^0-9]")
# The first region of calling code 1, the one phonenumbers asks first which region a number is
# from. It has no leading-digit pattern, so a number valid there is from there, and valid.
_NORTH_AMERICAN_MAIN_REGION = phonenumbers.region_code_for_country_code(1)


def _north_american(phone: str) -> str | None:
    """What :func:`_checked_phone` makes of ``phone``, for a North American number in a common
    form that is valid in the main region (phonenumbers' parse, then its validity check twice,
    was a third of checking an import's row); None for anything else, which is left to it."""
    if _NORTH_AMERICAN.fullmatch(phone) is None:
        return None
    digits = _NOT_DIGITS.sub("", phone)[-10:]
    number = phonenumbers.PhoneNumber(country_code=1, national_number=int(digits))
    if not phonenumbers.is_valid_number_for_region(number, _NORTH_AMERICAN_MAIN_REGION):
        return None
    return "+1" + digits


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


# The two-letter codes of the US states, DC and the territories with ZIP codes (USPS).
US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
    "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU AS MP".split()
)
_ZIP_PLUS_FOUR = re.compile(r"^[0-9]{5}(-[0-9]{4})?$")


def validate_address(address: Address | None) -> Address | None:
    """Trimmed parts; a state must be a US state's two-letter code (upper-cased) and a ZIP code
    a known 5-digit US ZIP (ZIP+4 accepted), as the directory places and searches by them."""
    if address is None:
        return None
    parts = {
        name: _bounded_text(" ".join(str(getattr(address, name) or "").split()), name, field=f"address.{name}")
        for name in ("line1", "line2", "city", "state", "postal_code")
    }
    if parts["state"]:
        if parts["state"].upper() not in US_STATES:
            raise InvalidPartner(
                f"state must be a US state's two-letter code, such as FL, not {parts['state']!r}",
                field="address.state",
            )
        parts["state"] = parts["state"].upper()
    code = parts["postal_code"]
    if code and not (_ZIP_PLUS_FOUR.match(code) and geo.centroid(code[:5]) is not None):
        raise InvalidPartner(
            f"postal_code must be a known 5-digit US ZIP code, not {code!r}", field="address.postal_code"
        )
    trimmed = Address(**parts)
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


# Latin letters that Unicode does not decompose into a base letter and a mark, so NFKD alone
# would drop them ("Ø" of "Østergaard"). Unicode's decomposition covers the rest (é, ñ, ü…); a
# transliteration library (Unidecode, text-unidecode) would also cover other scripts, but slugs
# of names in other scripts fall back to "partner" on purpose, and this table is all that
# Latin names need, without a dependency.
_LATIN_LETTERS = str.maketrans(
    {
        "Ø": "O", "ø": "o", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "ß": "ss", "ẞ": "SS",
        "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Þ": "Th", "þ": "th",
        "Ħ": "H", "ħ": "h", "\u0131": "i", "Ŀ": "L", "ŀ": "l", "Ŧ": "T", "ŧ": "t", "Ŋ": "N", "ŋ": "n",
    }
)  # fmt: skip


def slugify(text: str, *, max_length: int = SLUG_MAX_LENGTH) -> str:
    """``"Dr. José O'Neil, DPT"`` → ``"dr-jose-o-neil-dpt"``: ASCII, lower case, hyphens, at most
    ``max_length`` characters, cut at a word boundary. May be empty (e.g. a name in a non-Latin
    script); :func:`slug_base` then falls back to ``partner``."""
    ascii_text = unicodedata.normalize("NFKD", text.translate(_LATIN_LETTERS)).encode("ascii", "ignore").decode()
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
    if not value:  # most optional fields, which no rule below can refuse
        return value
    limit = MAX_LENGTHS[name]
    if len(value) > limit:
        raise InvalidPartner(f"{name} is longer than {limit} characters", field=field or name)
    if has_control_character(value, line_breaks_allowed=name in MULTI_LINE):
        raise InvalidPartner(f"{name} holds a control character (such as NUL); remove it", field=field or name)
    return value


def _boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidPartner(f"{name} must be true or false", field=name)
    return value
