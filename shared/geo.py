"""US ZIP centroids (offline, from the ``zipcodes`` package's bundled data) and distances."""

from __future__ import annotations

import math
import re
from functools import lru_cache

import zipcodes

from shared.messages import Location

EARTH_RADIUS_KM = 6371.0088
_ZIP = re.compile(r"^\d{5}(-\d{4})?$")


def is_zip(value: str) -> bool:
    return bool(_ZIP.match(value.strip()))


def centroid(postal_code: str) -> Location | None:
    """The centre of a US ZIP code, or None when it is not a known ZIP. No network is used."""
    code = postal_code.strip()[:5]
    if not _ZIP.match(code):
        return None
    return _centroids().get(code)


def known_zips() -> frozenset[str]:
    """Every US ZIP code with a known centre."""
    return frozenset(_centroids())


def warm() -> None:
    """Load the ZIP centres now (about half a second), so that a web process's first search
    or referral does not pay for it."""
    _centroids()


@lru_cache(maxsize=1)
def _centroids() -> dict[str, Location]:
    # One dictionary of every ZIP with a centre, built on first use: ``zipcodes.matching`` scans
    # all 42,000 ZIPs on each call (about 1 ms), which a referral's create paid every time.
    return {
        entry["zip_code"]: Location(lat=float(entry["lat"]), lon=float(entry["long"]))
        for entry in zipcodes.list_all()
        if entry.get("lat")
    }


def distance_km(a: Location, b: Location) -> float:
    """Great-circle (haversine) distance between two points."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
