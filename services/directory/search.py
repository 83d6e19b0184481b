"""What a partner search asks for and how its pages are cut. Plain Python: the filters, the
``near`` geometry (a bounding box the database can use its lat/lon index for, then the exact
great-circle distance) and the opaque keyset cursor that makes paging stable."""

from __future__ import annotations

import base64
import binascii
import json
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from services.directory.domain import Partner, Status
from services.directory.fields import Accepting, InvalidPartner, Location
from shared import messages
from shared.geo import EARTH_RADIUS_KM, distance_km

DEFAULT_RADIUS_KM = 50.0
MAX_RADIUS_KM = 500.0


class InvalidSearch(InvalidPartner):
    """A search parameter is malformed; ``field`` names it (the web layer answers 400)."""


@dataclass(frozen=True)
class Near:
    """Partners within ``radius_km`` of ``origin``, nearest first."""

    origin: Location
    radius_km: float = DEFAULT_RADIUS_KM

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius_km) and 0 < self.radius_km <= MAX_RADIUS_KM):
            raise InvalidSearch(f"radius_km must be more than 0 and at most {MAX_RADIUS_KM:g}", field="radius_km")

    def bounding_box(self) -> tuple[float, float, float, float]:
        """(min lat, max lat, min lon, max lon) holding every point within the radius. Near the
        poles or the antimeridian the longitude span is simply the whole range."""
        lat, lon = self.origin.lat, self.origin.lon
        dlat = math.degrees(self.radius_km / EARTH_RADIUS_KM)
        cos_lat = math.cos(math.radians(lat))
        if cos_lat < 1e-6 or abs(lat) + dlat >= 90:
            return max(lat - dlat, -90.0), min(lat + dlat, 90.0), -180.0, 180.0
        dlon = math.degrees(self.radius_km / (EARTH_RADIUS_KM * cos_lat))
        if lon - dlon < -180 or lon + dlon > 180:
            return lat - dlat, lat + dlat, -180.0, 180.0
        return lat - dlat, lat + dlat, lon - dlon, lon + dlon

    def distance_km(self, point: Location) -> float:
        """The great-circle distance, as reported to callers."""
        return distance_km(_point(self.origin), _point(point))

    def km_per_degree(self) -> tuple[float, float]:
        """Kilometres per degree of latitude and of longitude at the origin."""
        ky = math.pi * EARTH_RADIUS_KM / 180
        return ky, ky * math.cos(math.radians(self.origin.lat))

    def squared_km(self, point: Location) -> float:
        """The ranking key: squared distance on a plane tangent at the origin (equirectangular).
        Within the 500 km a search may span it orders partners as the great circle does but
        for near-ties, and unlike the haversine it is plain arithmetic a database can index
        its way through; results carry the great-circle distance."""
        ky, kx = self.km_per_degree()
        dlat, dlon = point.lat - self.origin.lat, point.lon - self.origin.lon
        return dlat * dlat * (ky * ky) + dlon * dlon * (kx * kx)


def _point(location: Location) -> messages.Location:
    return messages.Location(lat=location.lat, lon=location.lon)


def parse_near(value: str) -> Location:
    """``"27.77,-82.64"`` → a location; :class:`InvalidSearch` naming ``near`` otherwise."""
    lat_text, comma, lon_text = value.partition(",")
    try:
        if not comma:
            raise ValueError
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise InvalidSearch(f"near must be 'lat,lon' in degrees, not {value!r}", field="near") from None
    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
        raise InvalidSearch("near is outside -90..90 latitude or -180..180 longitude", field="near")
    return Location(lat, lon)


@dataclass(frozen=True, kw_only=True)
class PartnerQuery:
    """Filters of a search. ``public_only`` limits it to active, listed partners (the public
    page and anonymous API); admins may instead filter by ``status``."""

    public_only: bool = True
    category: str | None = None
    q: str | None = None
    near: Near | None = None
    accepting: Accepting | None = None
    language: str | None = None
    telehealth: bool | None = None
    status: Status | None = None
    # Partners of these practices (ids from services.directory.identifiers.practice_id).
    practices: tuple[str, ...] | None = None
    # Only partners with a position or a street address (those that have a location to publish).
    located: bool = False
    # Only partners whose listing went unconfirmed past its grace period (admin filter).
    needs_review: bool = False

    @property
    def is_filtered(self) -> bool:
        return any(
            value is not None
            for value in (self.category, self.q, self.near, self.accepting, self.language, self.telehealth)
        )


@dataclass(frozen=True)
class After:
    """Where the previous page ended: by name (``key`` = name) or, for ``near``, by distance."""

    kind: str  # "name" | "distance"
    key: str | float
    id: str


def encode_cursor(after: After) -> str:
    raw = json.dumps([after.kind, after.key, after.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, near: bool) -> After | None:
    """The position a cursor names; :class:`InvalidSearch` for one this service did not hand
    out, or one from a search ordered differently (by name vs by distance). Decoded into its
    exact shape, so a forged cursor (``[[[[…``) is refused at its first wrong character."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, key, partner_id = msgspec.json.decode(raw, type=_Cursor)
        expected = "distance" if near else "name"
        valid = kind == expected and isinstance(key, str if kind == "name" else float)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        valid = False
    if not valid:
        raise InvalidSearch("cursor is not one this search handed out", field="cursor")
    return After(kind, key, partner_id)


# What encode_cursor writes: [kind, key (a name, or a distance's ranking key), partner id].
_Cursor = tuple[str, str | float, str]


def search_text(*parts: str) -> str:
    """What ``q`` is matched against, and how ``q`` itself is read: the given text in Unicode's
    compatibility form (NFKC: a fullwidth ``chiro`` is the plain one, the ligature ``fi`` two letters),
    lower-cased and space-joined."""
    text = " ".join(" ".join(part.split()) for part in parts if part)
    return unicodedata.normalize("NFKC", text).casefold()


def language_keys(languages: tuple[str, ...]) -> str:
    """``("English", "Spanish")`` → ``"|english|spanish|"``, so one language matches exactly."""
    return "|" + "".join(f"{search_text(language)}|" for language in languages)


@dataclass(frozen=True)
class Term:
    """One part of ``q``: a word (or a known phrase) that a partner's text must hold, or, when it
    names categories (:func:`shared.categories.search_words`), a partner of one of them."""

    text: str
    categories: frozenset[str] = frozenset()


def query_terms(q: str, words: Mapping[str, frozenset[str]]) -> list[Term]:
    """``q`` cut into terms, the longest known phrase first: "physical therapist spanish" →
    [Term("physical therapist", {physical_therapy}), Term("spanish")]. Every term must match."""
    tokens = search_text(q).split()
    longest = max((len(word.split()) for word in words), default=1)
    terms: list[Term] = []
    i = 0
    while i < len(tokens):
        for size in range(min(longest, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + size])
            if size == 1 or phrase in words:
                terms.append(Term(phrase, words.get(phrase, frozenset())))
                i += size
                break
    return terms


@dataclass(frozen=True)
class Hit:
    partner: Partner
    # Kilometres from the search's ``near`` point; None when the search had none.
    distance_km: float | None = None


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    # Pass back as ``cursor`` for the next page; None on the last page.
    next_cursor: str | None

    @property
    def partners(self) -> list[Partner]:
        return [hit.partner for hit in self.hits]
